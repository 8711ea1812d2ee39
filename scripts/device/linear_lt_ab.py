"""Prefill with the 16-bit linears' epilogue in our kernel (LC_LINEAR_LT=0: float32 sums in a workspace, then bias /
ReLU / residual and one rounding) against the default (cuBLASLt's own epilogue where backend_cuda.c's lc_cuda_linear_lt
takes it: one call, the residual as C with beta 1; "1" names the default here, "all" would widen it): GPT-2
124M / LLaMA 1.1B bf16 (make_random folders given as arguments), a 1024-token prompt, generate(prompt, 1)'s
prefill_ms, the two settings alternating call by call (one model; the knob is read at each call), 7 samples each
after a warm-up; prints the medians and the largest logit difference of the prompt's last position between them.
Usage: python scripts/device/linear_lt_ab.py DIR [DIR ...]"""
import os
import statistics
import sys

import numpy as np

from lightning_core.models import load

SETTINGS = {"workspace": "0", "default": "1"}


def main():
    for d in sys.argv[1:]:
        model = load(d, device=os.environ.get("LT_AB_DEVICE", "cuda"), dtype="bfloat16")
        vocab = model.vocab
        ids = [int(x) for x in np.random.default_rng(0).integers(0, vocab, 1024)]
        times = {k: [] for k in SETTINGS}
        logits = {}
        for rnd in range(8):
            for label, v in SETTINGS.items():
                os.environ["LC_LINEAR_LT"] = v
                tm = {}
                model.generate(ids, 1, timings=tm)
                if rnd:
                    times[label].append(tm["prefill_ms"])
                else:
                    out = model(np.asarray([ids], np.int64))
                    out = out.numpy() if hasattr(out, "numpy") else out
                    logits[label] = np.asarray(out, np.float32)[0, -1]
        os.environ.pop("LC_LINEAR_LT", None)
        med = {k: statistics.median(v) for k, v in times.items()}
        diff = float(np.max(np.abs(logits["workspace"] - logits["default"])))
        print(f"{d}: prefill 1024 ms " + " ".join(f"{k} {v:.3f}" for k, v in med.items()) +
              f" (default/workspace {med['default'] / med['workspace']:.3f}); last-position logits max diff {diff:.3g}", flush=True)


if __name__ == "__main__":
    main()
