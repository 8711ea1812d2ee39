"""Whether the short-path decode (LC_SDPA_DECODE_LEAN) moves a model's logits more than rounding: a make_random folder
(argv[1]) in bf16 on CUDA, a 32-token prompt prefilled, then 24 teacher-forced decode steps (the same token ids for
every setting) through model.forward(ids, cache=) eagerly, once with the tensor-core decode and once with the short
path (the knob is read at each launch); the same steps in float32 (tensor-core decode) are the reference. Prints, over
the steps, the largest |logit difference| from the float32 run for each bf16 setting, the logits' scale, how many
steps' argmax agree with float32's, and the smallest top-1/top-2 gap of the float32 logits (a tie under rounding
flips greedy tokens). Usage: python scripts/device/lean_logits.py DIR"""
import os
import sys

import numpy as np

from lightning_core.models import load


def host(t):
    return t.numpy() if hasattr(t, "numpy") else np.asarray(t)


def run(model, prompt, steps, lean):
    os.environ["LC_SDPA_DECODE_LEAN"] = "100000" if lean else "0"
    cache = model.new_cache(1, len(prompt) + len(steps) + 1)
    model.forward([prompt], cache=cache)
    out = [np.asarray(host(model.forward([[t]], cache=cache)), np.float64)[0, -1] for t in steps]
    os.environ.pop("LC_SDPA_DECODE_LEAN", None)
    return np.stack(out)


def main():
    d = sys.argv[1]
    rng = np.random.default_rng(11)
    m32 = load(d, device="cuda", dtype="float32")
    top_id = min(1000, m32.vocab)
    prompt, steps = rng.integers(1, top_id, 32).tolist(), rng.integers(1, top_id, 24).tolist()
    f32 = run(m32, prompt, steps, False)
    del m32
    m16 = load(d, device="cuda", dtype="bfloat16")
    top = np.sort(f32, -1)
    print(f"{d}: logits' std {f32.std():.3g}, smallest top-1/top-2 gap over the steps {np.min(top[:, -1] - top[:, -2]):.3g}")
    for label, lean in (("base", False), ("lean", True)):
        x = run(m16, prompt, steps, lean)
        agree = int(np.sum(x.argmax(-1) == f32.argmax(-1)))
        print(f"  {label}: max |logits - float32| {np.max(np.abs(x - f32)):.3g}, argmax equal {agree}/{len(steps)}"
              f"{', NaN!' if np.isnan(x).any() else ''}", flush=True)


if __name__ == "__main__":
    main()
