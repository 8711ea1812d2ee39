"""python -m lightning_core.generate: text generation from a Hugging Face folder with the model runner.

  python -m lightning_core.generate --model DIR (--prompt TEXT | --ids 1,2,3) [--max-new-tokens N]
      [--device cpu|cuda] [--dtype float32|bfloat16|float16] [--temperature T --top-k K --top-p P --seed S]
      [--batch B] [--stop ID,...] [--bench R] [--graph-steps G] [--weight-layout in_out|out_in] [--quiet]
      [--progress auto|on|off] [--tp N | --tp-sim N]

Prints the generated text (through the `tokenizers` package and DIR/tokenizer.json when both are there; else
token ids), streaming tokens as they come for one prompt, then prefill ms, per-token ms and tokens/s (batch x
tokens / decode time). --bench R repeats the whole generation R times after one warm-up and prints the
medians. Runs that do not stream (a batch, --bench, --quiet) show a progress line on stderr when it is a
terminal (--progress on: also into a pipe or log, a line about once a second; off: never). A random checkpoint for offline runs: python -m lightning_core.models.make_random.
Tensor parallelism (models/tp.py): --tp N on CUDA runs one process per GPU in an NCCL group
(lightning_core.distributed.init() from RANK / WORLD_SIZE; started without them, the command re-runs itself
under python -m lightning_core.launch --nproc N); --tp-sim N, or --tp N with --device cpu, runs the N ranks
as threads of this process (lightning_core.distributed.run_threads). Rank 0 prints.
Tests: tests/python/test_generate_cli.py.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def _tokenizer(model_dir):
    path = os.path.join(model_dir, "tokenizer.json")
    if not os.path.exists(path):
        return None
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    return Tokenizer.from_file(path)


def _ints(text, what):
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"generate: {what}: expected comma-separated integers, got {text!r}") from None
    if not vals:
        raise SystemExit(f"generate: {what}: expected at least one integer")
    return vals


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lightning_core.generate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a Hugging Face folder (config.json + safetensors)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="text (needs tokenizers and DIR/tokenizer.json)")
    src.add_argument("--ids", help="comma-separated token ids")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--dtype", default=None, choices=(None, "float32", "bfloat16", "float16"))
    ap.add_argument("--temperature", type=float, default=0.0, help="0: greedy")
    ap.add_argument("--top-k", type=int, default=0)
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1, help="run the prompt as a batch of B copies")
    ap.add_argument("--stop", default="", help="comma-separated stop ids")
    ap.add_argument("--bench", type=int, default=0, help="repeat R times after a warm-up; print medians")
    ap.add_argument("--graph-steps", type=int, default=None,
                    help="CUDA: decode steps a graph replay (1..64, default 8; tokens stream in bursts of that many)")
    ap.add_argument("--weight-layout", default=None, choices=("in_out", "out_in"),
                    help="how the linears' weights are stored (models.load's weight_layout; default per model and device)")
    ap.add_argument("--quiet", action="store_true", help="no streaming output")
    ap.add_argument("--progress", default="auto", choices=("auto", "on", "off"),
                    help="a progress line on stderr while tokens are not streamed (--batch > 1, --bench, --quiet): "
                         "auto on a terminal, on: also into pipes (a plain line about once a second)")
    ap.add_argument("--tp", type=int, default=1, help="tensor-parallel ranks (CUDA: one process per GPU)")
    ap.add_argument("--tp-sim", type=int, default=0, help="tensor-parallel ranks as threads of this process")
    args = ap.parse_args(argv)

    if args.batch < 1 or args.max_new_tokens < 0 or args.bench < 0:
        raise SystemExit("generate: --batch >= 1, --max-new-tokens >= 0 and --bench >= 0 expected")
    from .models.engine import MAX_GRAPH_STEPS
    if args.graph_steps is not None and not 1 <= args.graph_steps <= MAX_GRAPH_STEPS:
        raise SystemExit(f"generate: --graph-steps: expected 1..{MAX_GRAPH_STEPS}, got {args.graph_steps}")
    if args.tp < 1 or args.tp_sim < 0 or (args.tp_sim and args.tp > 1):
        raise SystemExit("generate: --tp N (N >= 1) or --tp-sim N (N >= 1) expected, not both")
    tok = _tokenizer(args.model)
    if args.prompt is not None:
        if tok is None:
            raise SystemExit("generate: --prompt needs the tokenizers package and DIR/tokenizer.json; use --ids")
        ids = tok.encode(args.prompt).ids
    else:
        ids = _ints(args.ids, "--ids")
    stop = _ints(args.stop, "--stop") if args.stop else []
    sim = args.tp_sim or (args.tp if args.tp > 1 and args.device == "cpu" else 0)
    if sim:
        from .distributed import run_threads
        run_threads(sim, lambda g: _run(args, ids, stop, tok, g, f"tp {sim} (threads)"), device=args.device)
        return 0
    if args.tp > 1:
        return _run_nccl(args, argv, ids, stop, tok)
    _run(args, ids, stop, tok, None, "")
    return 0


def _run_nccl(args, argv, ids, stop, tok):
    """--tp N on CUDA: inside the launcher (WORLD_SIZE set) this process is one rank of the NCCL group; else
    the command re-runs itself under python -m lightning_core.launch --nproc N."""
    import importlib.util
    import subprocess
    if "WORLD_SIZE" not in os.environ:
        if importlib.util.find_spec("lightning_core.launch") is None:
            raise SystemExit("generate: --tp N on CUDA needs the launcher (lightning_core.launch), which this build "
                             "does not have; use --tp-sim N to run the ranks as threads")
        cmd = [sys.executable, "-m", "lightning_core.launch", "--nproc", str(args.tp), "-m", "lightning_core.generate"]
        return subprocess.call(cmd + list(sys.argv[1:] if argv is None else argv))
    try:
        from .distributed import init
    except ImportError:
        raise SystemExit("generate: --tp N on CUDA needs lightning_core.distributed.init (the NCCL process group), "
                         "which this build does not have; use --tp-sim N to run the ranks as threads") from None
    group = init()
    if group.world_size != args.tp:
        raise SystemExit(f"generate: --tp {args.tp}: the launcher started {group.world_size} ranks")
    _run(args, ids, stop, tok, group, f"tp {args.tp} (NCCL)")
    return 0


class _Progress:
    """The progress line of runs whose tokens are not streamed: run r of R (the first a warm-up with --bench),
    tokens so far of N, the batch's decode tokens/s in this run (from its first token, after the prefill). On a terminal one line redrawn in place (at most ~10
    times a second) and erased at the end; with --progress on elsewhere a plain line about once a second."""

    def __init__(self, out, mode, runs, new_tokens, batch):
        self.out, self.runs, self.n, self.batch = out, runs, new_tokens, batch
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.active = mode == "on" or (mode == "auto" and self.tty)
        self.last, self.drawn = 0.0, False

    def hook(self, run):
        first = []  # the time of the first token (after the prefill): the rate counts decode steps from it

        def on_token(step, toks):
            now = time.perf_counter()
            if not first:
                first.append(now)
            done = step + 1 == self.n
            if now - self.last < (0.1 if self.tty else 1.0) and not done:
                return
            self.last = now
            rate = f", {self.batch * step / (now - first[0]):.1f} tokens/s" if step and now > first[0] else ""
            label = "warm-up" if run == 0 and self.runs > 1 else f"run {run}/{self.runs - 1}" if self.runs > 1 else "run"
            line = f"generate: {label}, token {step + 1}/{self.n}{rate}"
            if self.tty:
                self.out.write("\r" + line + "\033[K")
                self.drawn = True
            else:
                self.out.write(line + "\n")
            self.out.flush()
        return on_token

    def close(self):
        if self.tty and self.drawn:
            self.out.write("\r\033[K")
            self.out.flush()


def _run(args, ids, stop, tok, group, tp_label):
    """Loads the model (rank group.rank's shard under a group), generates and, on rank 0, prints."""
    from .models import load
    lead = group is None or group.rank == 0
    try:
        model = load(args.model, device=args.device, dtype=args.dtype, group=group, weight_layout=args.weight_layout)
    except (ValueError, OSError) as e:
        raise SystemExit(f"generate: --model: {e}") from None
    if max(ids) >= model.vocab or min(ids) < 0:
        raise SystemExit(f"generate: prompt ids must be in 0..{model.vocab - 1}")
    prompts = [ids] * args.batch
    kw = dict(stop_ids=stop, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed,
              graph_steps=args.graph_steps)

    def show(tokens):
        return tok.decode(tokens) if tok is not None else " ".join(map(str, tokens))

    stream = None
    if lead and not args.quiet and not args.bench and args.batch == 1:
        def stream(step, toks):
            if step == 0:
                sys.stdout.write(show(ids))
            sys.stdout.write(tok.decode([toks[0]]) if tok is not None else f" {toks[0]}")
            sys.stdout.flush()
    total = args.bench + 1 if args.bench else 1
    bar = _Progress(sys.stderr, args.progress, total, args.max_new_tokens, args.batch) if lead and stream is None else None
    if bar is not None and not bar.active:  # --progress off, or auto where stderr is not a terminal
        bar = None
    runs = []
    for r in range(total):
        t = {}
        hook = stream if r == 0 and stream is not None else (bar.hook(r) if bar is not None else None)
        out = model.generate(prompts, args.max_new_tokens, stream=hook, timings=t, **kw)
        if args.bench and r == 0:
            continue  # warm-up
        runs.append(t)
    if bar is not None:
        bar.close()
    if not lead:
        return
    if stream is not None:
        sys.stdout.write("\n")
    elif not args.quiet:
        for o in out[: min(len(out), 4)]:
            print(show(o))
    prefill = statistics.median(t["prefill_ms"] for t in runs)
    decode = statistics.median(t["decode_ms"] for t in runs)
    steps = statistics.median(t["decode_steps"] for t in runs)
    per_tok = decode / steps if steps else float("nan")
    tps = args.batch * steps / (decode / 1e3) if steps and decode > 0 else float("nan")
    label = f"median of {args.bench}" if args.bench else "one run"
    tp = f", {tp_label}" if tp_label else ""
    print(f"[{label}] device {args.device}, dtype {model.dtype}{tp}, batch {args.batch}, prompt {len(ids)} tokens: "
          f"prefill {prefill:.2f} ms, decode {per_tok:.3f} ms/token, {tps:.1f} tokens/s")


if __name__ == "__main__":
    sys.exit(main())
