"""lightning_core.bench: the one benchmark harness (``make bench`` / ``python -m lightning_core.bench``).

Modules: harness (timing, the row schema, ratio and summary arithmetic), suites (the registry: name ->
runner), native (in-process suites), report (environment block, CSV/JSON per suite, report.md), charts (PNG
speedup charts, no plotting dependency), progress (the progress line), cli (the command line).
Docs: docs/benchmarks.md, "One-command suite". Tests: tests/python/test_bench_harness.py.
"""
from .harness import FIELDS, aggregate_repeats, group_summaries, make_row, summarize, time_call  # noqa: F401
from .suites import REGISTRY, Ctx, SuiteUnavailable, register, unregister  # noqa: F401


def main(argv=None) -> int:
    from .cli import main as _main
    return _main(argv)
