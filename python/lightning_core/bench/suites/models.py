"""The models suite (issue 16's benchmark targets): the model runner (lc.models) in tokens/s against its peers.

Models: random-weight Hugging Face folders written once per process by models.make_random into a temporary
directory (removed at exit): GPT-2 124M (float32 checkpoint) and the LLaMA-architecture 1.1B (bfloat16
checkpoint); --quick uses the tiny configs of both. CUDA: both models in bfloat16 (mode "graph": our decode
step is one CUDA-graph replay). CPU: GPT-2 in float32 and bfloat16 (mode "resident").
Our side: lc.models.load(dir, device, dtype) and CausalLM.generate (greedy):
  prefill  a prompt of 1024 tokens (--quick 64), batch 1: generate(prompt, 1)'s timings["prefill_ms"]
           (the prompt through every layer into the KV caches and the first token on the host);
  decode   batches 1 and 32 of prompts of 32 tokens (--quick 8), N new tokens (CUDA 64, CPU 32, --quick 8):
           ours_ms = timings["decode_ms"] / decode_steps, the time of one step of the batch (tokens/s =
           batch / that); on CUDA (GRAPH_STEPS = 8 steps a graph replay, tokens read back once a replay) this
           includes the host's turnaround between replays, and the note also gives the steady state (from the
           last token of the first replay to the last token, from stream() timestamps).
Peers, each only where importable (else a suite note and no row):
  transformers  AutoModelForCausalLM.from_pretrained(dir, dtype, attn_implementation="sdpa"), eager: generate
                (greedy, min_new_tokens = max_new_tokens), synchronised host clock around the whole call; the
                prefill measured separately as one forward of the prompt (logits of the last position only
                where the version takes logits_to_keep); decode per step = (generate - prefill of the same
                prompt) / (N - 1). On the CPU with torch.set_num_threads(lc.num_threads()).
  torch_graph   (CUDA) models_torch.TorchLM: the same architecture in plain torch, static KV cache, the decode
                step captured once as a CUDA graph (the gpt-fast design), from the same safetensors arrays;
                prefill = its eager forward of the prompt into the cache. On the CPU the same code runs the
                step eagerly as peer torch_static (informational).
  weight_bw     the weight-bandwidth limit: the bytes of the weights one decode step reads (all but the
                embedding tables that are only gathered) / the memory bandwidth measured in the run (CUDA: a
                torch device copy of 1 GiB; CPU: a single-thread NumPy copy), 2 bytes moved per byte copied;
                ratio = our fraction of that limit.
Correctness (every row): the logits of the first 16 tokens (--quick 8) of the first prompt, ours and each
torch peer's, against the float64 reference forward (testing.ref_models) from the same checkpoint: max |diff|
/ max |ref| within 1e-3 (float32) or 0.1 (bfloat16, the tests' bound); float32 rows also need our greedy
tokens of the first prompt (batch 1 and batch 32) equal to transformers' (or, without it, to the float64
reference's first 8). A miss makes the row FAILED. Notes: tokens/s, the peer's tokens/s, the ratio, the
weight-bandwidth limit and our fraction of it, and the issue's targets with the shortfall of each miss
(evaluated at the full sizes only).
Not in the default run (a full run takes minutes); `--suite models` runs it.
Tested by tests/python/test_bench_suites.py (CPU, --quick, without torch: our rows and weight_bw only).
"""
from __future__ import annotations

import atexit
import gc
import math
import shutil
import tempfile
import time

import numpy as np

from .. import harness as H
from ..timer import time_call
from . import Ctx, SuiteUnavailable
from .common import torch_mod
from .lowp import _events, _target

SUITE = "models"
TOL = {"float32": 1e-3, "bfloat16": 0.1}
REF_TOKENS = 8  # greedy tokens checked against the float64 reference when transformers is missing
_FOLDERS: dict = {}  # (arch, size) -> (dir, config, tensors): written once per process, all repeats
_REFS: dict = {}  # (arch, size, ids) -> float64 reference logits / tokens


class _Spec:
    """One model of the run: arch, size, run dtype, label, and the sizes of its cases."""

    def __init__(self, ctx, arch, dtype):
        self.arch, self.dtype, self.quick, self.device = arch, dtype, ctx.quick, ctx.device
        self.size = "tiny" if ctx.quick else ("124m" if arch == "gpt2" else "1b")
        self.label = {"gpt2": "GPT-2", "llama": "LLaMA"}[arch] + " " + \
            {"tiny": "tiny", "124m": "124M", "1b": "1.1B"}[self.size]
        self.prefill = 64 if ctx.quick else 1024
        self.prompt = 8 if ctx.quick else 32
        self.new = 8 if ctx.quick else (64 if ctx.device == "cuda" else 32)
        self.batches = (1, 32)
        self.check = 8 if ctx.quick else 16
        self.ckpt_dtype = "bfloat16" if self.size == "1b" else "float32"


def _folder(spec):
    """(dir, config, tensors) of the spec's random checkpoint, written on first use."""
    from ...models import load_checkpoint
    from ...models.make_random import make_random
    key = (spec.arch, spec.size)
    if key not in _FOLDERS:
        d = tempfile.mkdtemp(prefix=f"lc_bench_{spec.arch}_{spec.size}_")
        atexit.register(shutil.rmtree, d, True)
        make_random(d, spec.arch, spec.size, seed=0, dtype=spec.ckpt_dtype)
        cfg, tensors = load_checkpoint(d)
        _FOLDERS[key] = (d, cfg, tensors)
    return _FOLDERS[key]


def _ref_logits(spec, cfg, tensors, ids):
    from ...testing.ref_models import ref_forward
    key = (spec.arch, spec.size, "logits", tuple(ids))
    if key not in _REFS:
        _REFS[key] = ref_forward(cfg, tensors, np.asarray(ids, np.int64))
    return _REFS[key]


def _ref_tokens(spec, cfg, tensors, prompt, n):
    from ...testing.ref_models import ref_generate
    key = (spec.arch, spec.size, "tokens", tuple(prompt), n)
    if key not in _REFS:
        _REFS[key] = ref_generate(cfg, tensors, list(prompt), n)[len(prompt):]
    return _REFS[key]


def _max_rel(got, ref) -> float:
    """max |got - ref| / max |ref| (inf when got is not finite or the shapes differ)."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    if got.shape != ref.shape or not np.all(np.isfinite(got)):
        return float("inf")
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-30))


def _weight_bytes(cfg, dtype) -> float:
    """Bytes of the weights one decode step reads: every tensor but the embedding tables that are only
    gathered (GPT-2's wpe; LLaMA's embed_tokens when the head is untied)."""
    from ...models import GPT2Config, expected_tensors
    skip = {"wpe.weight"} if isinstance(cfg, GPT2Config) else (
        set() if cfg.tie_word_embeddings else {"model.embed_tokens.weight"})
    n = sum(math.prod(s) for k, s in expected_tensors(cfg).items() if k not in skip)
    return float(n) * (4 if dtype == "float32" else 2)


def _tkw(ctx, warmup=2):
    """time_call keywords for whole generate calls: a fixed number of samples, one call per sample."""
    return dict(warmup=warmup, samples=3 if ctx.quick else 5, min_samples=3, inner=1, max_s=None,
                settle_s=0.05 if ctx.quick else 0.1)


def _bandwidth(ctx, torch) -> tuple[float, str]:
    """(bytes/s, how) of the memory the weights are read from, measured now."""
    if ctx.device == "cuda":
        n = (256 << 20) if ctx.quick else (1 << 30)
        src = torch.ones(n // 2, device="cuda", dtype=torch.bfloat16)
        dst = torch.empty_like(src)
        t = time_call(lambda: dst.copy_(src), sample_ms=_events(torch), warmup=3, samples=9, settle_s=0.05)
        del src, dst
        return 2.0 * n / t["median_s"], f"torch device copy of {n >> 20} MiB"
    n = (64 << 20) if ctx.quick else (256 << 20)
    src = np.ones(n // 4, np.float32)
    dst = np.empty_like(src)
    t = time_call(lambda: np.copyto(dst, src), warmup=2, samples=7, settle_s=0.05)
    return 2.0 * n / t["median_s"], f"NumPy copy of {n >> 20} MiB"


# ---- the three sides ------------------------------------------------------------------------------------
def _ours(ctx, spec, d, prompts, pre_ids, check_ids) -> dict:
    """Our prefill and decode timings, the check logits, the first prompt's greedy tokens per batch."""
    import lightning_core as lc
    model = lc.models.load(d, device=spec.device, dtype=spec.dtype)
    res = {"decode": {}}
    try:
        logits = model(np.asarray([check_ids], np.int64))
        res["check"] = np.asarray(logits.numpy() if hasattr(logits, "numpy") else logits).astype(np.float32)[0]
        last: dict = {}

        def prefill():
            last.clear()
            model.generate(list(pre_ids), 1, timings=last)

        ctx.case(f"{spec.label} {spec.dtype} prefill S={spec.prefill}: ours")
        res["prefill"] = time_call(prefill, sample_ms=lambda run: (run(), last["prefill_ms"])[1], **_tkw(ctx))
        # CUDA: tokens arrive in bursts of GRAPH_STEPS (one graph replay each); the steady state runs from the
        # last token of the first burst to the last token
        from ...models.engine import GRAPH_STEPS
        skip = GRAPH_STEPS if spec.device == "cuda" else 0
        for b in spec.batches:
            ctx.case(f"{spec.label} {spec.dtype} decode B={b}: ours")
            steady: list = []
            got: dict = {}

            def gen():
                stamps: list = []
                tm: dict = {}
                out = model.generate(prompts[:b].tolist(), spec.new, timings=tm,
                                     stream=lambda step, toks: stamps.append(time.perf_counter()))
                got.update(tm, tokens=out[0][spec.prompt:])
                if len(stamps) > skip + 1:
                    steady.append((stamps[-1] - stamps[skip]) / (len(stamps) - 1 - skip) * 1e3)

            tkw = _tkw(ctx)
            t = time_call(gen, sample_ms=lambda run: (run(), got["decode_ms"] / max(1, got["decode_steps"]))[1],
                          **tkw)
            steady = steady[tkw["warmup"]:]  # the sampled calls only
            res["decode"][b] = {"t": t, "tokens": list(got["tokens"]),
                                "steady_ms": float(np.median(steady)) if steady else float("nan")}
    finally:
        model = None  # noqa: F841  (the caller collects; the weights go with the last reference)
    return res


def _hf_kwargs(transformers, tdt):
    ver = tuple(int(x) for x in transformers.__version__.split(".")[:2] if x.isdigit())
    return {"dtype": tdt} if ver >= (4, 56) else {"torch_dtype": tdt}


def _transformers(ctx, spec, d, prompts, pre_ids, check_ids) -> dict:
    """transformers eager (SDPA): prefill forward, generate per batch, check logits, first prompt's tokens."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM
    tdt = getattr(torch, spec.dtype)
    dev = spec.device
    m = AutoModelForCausalLM.from_pretrained(d, attn_implementation="sdpa", **_hf_kwargs(transformers, tdt))
    m = m.to(dev).eval()
    eos = m.config.eos_token_id if m.config.eos_token_id is not None else 0
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    res = {"decode": {}, "version": f"transformers {transformers.__version__}, torch {torch.__version__}"}
    try:
        with torch.inference_mode():
            res["check"] = m(torch.as_tensor([check_ids], device=dev)).logits[0].float().cpu().numpy()
            keep = {}
            for k in ("logits_to_keep", "num_logits_to_keep"):
                try:
                    m(torch.as_tensor([check_ids[:2]], device=dev), **{k: 1})
                    keep = {k: 1}
                    break
                except (TypeError, ValueError):
                    continue

            def forward_timing(ids_t):
                return time_call(lambda: (m(input_ids=ids_t, use_cache=True, **keep), sync()), **_tkw(ctx, 1))

            ctx.case(f"{spec.label} {spec.dtype} prefill S={spec.prefill}: transformers")
            res["prefill"] = forward_timing(torch.as_tensor([list(pre_ids)], device=dev))
            for b in spec.batches:
                ctx.case(f"{spec.label} {spec.dtype} decode B={b}: transformers")
                ids_t = torch.as_tensor(prompts[:b], device=dev)
                att = torch.ones_like(ids_t)
                out: dict = {}

                def gen():
                    out["ids"] = m.generate(input_ids=ids_t, attention_mask=att, max_new_tokens=spec.new,
                                            min_new_tokens=spec.new, do_sample=False, num_beams=1,
                                            pad_token_id=eos)
                    sync()

                whole = time_call(gen, **_tkw(ctx, 1))
                pre = forward_timing(ids_t)
                step_ms = (whole["median_ms"] - pre["median_ms"]) / max(1, spec.new - 1)
                res["decode"][b] = {"ms": step_ms, "whole_ms": whole["median_ms"], "cv": whole["cv"],
                                    "tokens": out["ids"][0, spec.prompt:].tolist()}
    finally:
        m = None  # noqa: F841
    return res


def _torch_peer(ctx, spec, cfg, tensors, prompts, pre_ids, check_ids) -> dict:
    """models_torch.TorchLM: prefill into its static cache, graph-replayed (CUDA) or eager (CPU) decode."""
    from .models_torch import TorchLM
    torch, F = torch_mod()
    dev = spec.device
    lm = TorchLM(torch, F, cfg, tensors, device=dev, dtype=spec.dtype)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    res = {"decode": {}, "version": f"torch {torch.__version__}", "check": lm.logits([check_ids])[0]}
    try:
        dec = lm.decoder(1, -(-(spec.prefill + 1) // 16) * 16, graph=False)
        ids_t = torch.as_tensor([list(pre_ids)], device=dev)

        def prefill():
            with torch.inference_mode():
                dec.prefill(ids_t)
            sync()

        ctx.case(f"{spec.label} {spec.dtype} prefill S={spec.prefill}: torch")
        res["prefill"] = time_call(prefill, **_tkw(ctx))
        for b in spec.batches:
            ctx.case(f"{spec.label} {spec.dtype} decode B={b}: torch")
            dec = lm.decoder(b, -(-(spec.prompt + spec.new) // 16) * 16)
            got: dict = {}

            def gen():
                got["tokens"] = dec.generate(prompts[:b], spec.new, got)

            t = time_call(gen, sample_ms=lambda run: (run(), got["decode_ms"] / max(1, got["decode_steps"]))[1],
                          **_tkw(ctx))
            res["decode"][b] = {"t": t, "tokens": got["tokens"][0].tolist()}
            dec = None
    finally:
        lm = dec = None  # noqa: F841
    return res


# ---- rows -------------------------------------------------------------------------------------------------
def _tps(b, ms):
    return b * 1e3 / ms if ms and np.isfinite(ms) and ms > 0 else float("nan")


def _targets(spec, family, b, peer, ratio, tps, frac) -> str:
    """The issue's targets that apply to this row, each PASS or MISS by N%."""
    if spec.quick:
        return "targets apply at the full sizes (--quick runs the tiny configs)"
    t = []
    if spec.device == "cuda":
        if family == "prefill" and peer in ("torch_graph", "transformers"):
            t.append(_target(ratio, 1.0, f"prefill vs {peer}"))
        elif family == "decode":
            if spec.arch == "gpt2" and b == 1:
                t.append(_target(tps, 5000.0, "GPT-2 B=1 tokens/s"))
                if peer == "torch_graph":
                    t.append(_target(ratio, 1.2, "vs torch_graph (b)"))
            if spec.arch == "llama" and peer == "torch_graph":
                t.append(_target(ratio, 1.2, "vs torch_graph (b)"))
            if spec.arch == "llama" and b == 1 and peer == "weight_bw":
                t.append(_target(frac, 0.75, "fraction of the weight-bandwidth limit"))
    elif family == "decode" and spec.arch == "gpt2" and b == 1:
        if peer == "transformers":
            t.append(_target(ratio, 1.5, "vs transformers CPU"))
        if peer == "weight_bw":
            t.append(_target(frac, 0.6, "fraction of the memory-bandwidth limit"))
    return "; ".join(t) if t else "informational"


def _emit(ctx, rows, spec, ours, peers, errs, tok_check, wbytes, bw, bw_how):
    tol = TOL[spec.dtype]
    dev = spec.device
    mode = "graph" if dev == "cuda" else "resident"
    shape_p = f"B=1,S={spec.prefill}"
    ours_err = errs["ours"]
    o = ours["prefill"]
    ctx.note(f"{spec.label} {spec.dtype} on {dev}: ours prefill S={spec.prefill} {o['median_ms']:.2f} ms = "
             f"{_tps(spec.prefill, o['median_ms']):.0f} tokens/s; decode "
             + ", ".join(f"B={b} {_tps(b, ours['decode'][b]['t']['median_ms']):.0f}" for b in spec.batches)
             + " tokens/s" + (f" (repeat {ctx.repeat})" if ctx.repeats > 1 else ""))
    lim_ms = wbytes / bw * 1e3 if bw > 0 else float("nan")
    check = f"logits max rel diff vs float64 (tol {tol:g}): ours {ours_err:.1e}"
    # prefill
    case = f"{spec.label} {spec.dtype} prefill S={spec.prefill}"
    for name, p in peers.items():
        if name == "weight_bw":
            continue
        pt = p["prefill"]
        r = H.ratio(pt["median_ms"], o["median_ms"])
        err = max(ours_err, errs[name])
        note = (f"ours {o['median_ms']:.2f} ms = {_tps(spec.prefill, o['median_ms']):.0f} tokens/s; {name} "
                f"{pt['median_ms']:.2f} ms = {_tps(spec.prefill, pt['median_ms']):.0f} tokens/s; ratio {r:.2f}x; "
                f"{check}, {name} {errs[name]:.1e}; "
                + _targets(spec, "prefill", 1, name, r, float("nan"), float("nan")))
        ctx.case(f"{case} vs {name}")
        rows.append(H.make_row(SUITE, "prefill", case, "resident", o["median_ms"], name, pt["median_ms"],
                               shape=shape_p, dtype=spec.dtype, device=dev, peer_version=p["version"], cv=o["cv"],
                               peer_cv=pt["cv"], rel_err=err, status="ok" if err <= tol else "FAILED", notes=note,
                               flops=2.0 * wbytes / (4 if spec.dtype == "float32" else 2) * spec.prefill))
    # decode
    for b in spec.batches:
        od = ours["decode"][b]
        oms = od["t"]["median_ms"]
        tps = _tps(b, oms)
        case = f"{spec.label} {spec.dtype} decode B={b}"
        shape = f"B={b},prompt={spec.prompt},new={spec.new}"
        frac = lim_ms / oms if oms > 0 else float("nan")
        lim = (f"weight-bandwidth limit {_tps(b, lim_ms):.0f} tokens/s ({wbytes / 1e6:.3g} MB at {bw / 1e9:.0f} GB/s, "
               f"{bw_how}), ours {frac * 100:.0f}% of it") if np.isfinite(lim_ms) else "weight-bandwidth limit n/a"
        steady = f" (steady state after the capture {_tps(b, od['steady_ms']):.0f})" if dev == "cuda" else ""
        ok_tokens, tok_note = tok_check.get(b, (True, ""))
        for name, p in peers.items():
            if name == "weight_bw":
                pms, pcv, err, ptxt = lim_ms, float("nan"), ours_err, "(the limit below)"
            else:
                pd = p["decode"][b]
                pms = pd["t"]["median_ms"] if "t" in pd else pd["ms"]
                pcv = pd["t"]["cv"] if "t" in pd else pd["cv"]
                err = max(ours_err, errs[name])
                ptxt = f"{_tps(b, pms):.0f} tokens/s"
            r = H.ratio(pms, oms)
            note = (f"ours {tps:.0f} tokens/s{steady}, {oms:.3f} ms/step; {name} {ptxt}; ratio {r:.2f}x; {lim}; "
                    f"{check}" + (f", {name} {errs[name]:.1e}" if name in errs else "")
                    + (f"; {tok_note}" if tok_note else "")
                    + "; " + _targets(spec, "decode", b, name, r, tps, frac))
            ctx.case(f"{case} vs {name}")
            rows.append(H.make_row(SUITE, "decode", case, mode, oms, name, pms, shape=shape, dtype=spec.dtype,
                                   device=dev, peer_version=p["version"], cv=od["t"]["cv"], peer_cv=pcv, rel_err=err,
                                   status="ok" if err <= tol and ok_tokens else "FAILED", notes=note,
                                   flops=2.0 * wbytes / (4 if spec.dtype == "float32" else 2) * b, nbytes=wbytes))


def _token_check(spec, ours, hf, cfg, tensors, prompts):
    """{batch: (ok, note)}: float32 rows need our first prompt's greedy tokens equal to transformers' (or the
    float64 reference's first REF_TOKENS); bfloat16 rows report the agreement only."""
    out = {}
    for b in spec.batches:
        mine = ours["decode"][b]["tokens"]
        if hf is not None:
            theirs, who = hf["decode"][b]["tokens"], "transformers"
        elif spec.dtype == "float32":
            k = min(REF_TOKENS, spec.new)
            theirs, who = _ref_tokens(spec, cfg, tensors, prompts[0].tolist(), k), "the float64 reference"
            mine = mine[:k]
        else:
            out[b] = (True, "")
            continue
        same = next((i for i, (x, y) in enumerate(zip(mine, theirs)) if x != y), min(len(mine), len(theirs)))
        agree = same == len(theirs) == len(mine)
        if spec.dtype == "float32":
            out[b] = (agree, f"greedy tokens {'equal to' if agree else 'DIFFER from'} {who}'s"
                             + ("" if agree else f" from token {same}") + f" ({len(theirs)} tokens)")
        else:
            out[b] = (True, f"greedy tokens agree with {who} for {same} of {len(theirs)} (bf16: informational)")
    return out


def _release(torch, spec):
    """Frees the side just measured (its model, caches, graph) before the next one loads."""
    gc.collect()
    if torch is not None and spec.device == "cuda":
        torch.cuda.empty_cache()


def _model(ctx, rows, spec, torch, have_hf, bw, bw_how):
    d, cfg, tensors = _folder(spec)
    rng = np.random.default_rng(ctx.seed)
    vocab = cfg.vocab_size
    prompts = rng.integers(0, vocab, (max(spec.batches), spec.prompt)).astype(np.int64)
    pre_ids = rng.integers(0, vocab, spec.prefill).tolist()
    check_ids = prompts[0, :spec.check].tolist()
    ref = _ref_logits(spec, cfg, tensors, check_ids)
    ours = _ours(ctx, spec, d, prompts, pre_ids, check_ids)
    _release(torch, spec)
    errs = {"ours": _max_rel(ours["check"], ref)}
    peers, hf = {}, None
    if have_hf:
        try:
            hf = _transformers(ctx, spec, d, prompts, pre_ids, check_ids)
            peers["transformers"], errs["transformers"] = hf, _max_rel(hf["check"], ref)
        except Exception as e:  # noqa: BLE001  (a peer failing is reported, ours still runs)
            ctx.note(f"{spec.label} {spec.dtype}: transformers failed: {type(e).__name__}: {e}")
        _release(torch, spec)
    if torch is not None:
        name = "torch_graph" if spec.device == "cuda" else "torch_static"
        try:
            peers[name] = _torch_peer(ctx, spec, cfg, tensors, prompts, pre_ids, check_ids)
            errs[name] = _max_rel(peers[name]["check"], ref)
        except Exception as e:  # noqa: BLE001
            ctx.note(f"{spec.label} {spec.dtype}: {name} failed: {type(e).__name__}: {e}")
        _release(torch, spec)
    peers["weight_bw"] = {"version": ""}
    tok = _token_check(spec, ours, hf, cfg, tensors, prompts)
    _emit(ctx, rows, spec, ours, peers, errs, tok, _weight_bytes(cfg, spec.dtype), bw, bw_how)


def run(ctx: Ctx) -> list[dict]:
    import lightning_core as lc
    ctx.need_dtype("float32")  # the suite picks its own dtypes
    if not hasattr(lc, "models") or not hasattr(lc, "KVCache"):
        raise SuiteUnavailable("lc.models / lc.KVCache are not in this build")
    try:
        import ml_dtypes  # noqa: F401,PLC0415
    except ImportError:
        raise SuiteUnavailable("ml_dtypes is not installed") from None
    cuda = ctx.device == "cuda" and lc.cuda_available()
    if ctx.device == "cuda" and not cuda:
        raise SuiteUnavailable("--device cuda: lc.cuda_available() is False")
    torch, _ = torch_mod()
    if cuda and (torch is None or not torch.cuda.is_available()):
        torch = None
    try:
        import transformers  # noqa: F401
        have_hf = torch is not None
    except Exception:  # noqa: BLE001
        have_hf = False
    if torch is None:
        ctx.note("torch is not installed" + (" with CUDA" if cuda else "") + ": no transformers / torch peer rows")
    elif not have_hf:
        ctx.note("transformers is not installed: no transformers rows"
                 + ("" if cuda else "; float32 tokens checked against the float64 reference"))
    if torch is not None and not cuda:
        torch.set_num_threads(lc.num_threads())
    if cuda and torch is None:
        bw, bw_how = float("nan"), ""
        ctx.note("weight_bw rows: the CUDA bandwidth is measured with a torch device copy (no torch here)")
    else:
        bw, bw_how = _bandwidth(ctx, torch)
    specs = ([_Spec(ctx, "gpt2", "bfloat16"), _Spec(ctx, "llama", "bfloat16")] if cuda
             else [_Spec(ctx, "gpt2", "float32"), _Spec(ctx, "gpt2", "bfloat16")])
    rows: list[dict] = []
    for spec in specs:
        _model(ctx, rows, spec, torch, have_hf, bw, bw_how)
        if cuda:
            torch.cuda.empty_cache()
    return rows
