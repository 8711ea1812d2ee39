"""lightning_core.bench: the one benchmark package (``make bench`` / ``make demo`` /
``python -m lightning_core.bench``).

Modules: timer (time_call: the one timer), harness (the row schema, ratio and summary arithmetic), suites/
(the registry and one module per suite, each yielding rows of the schema), child (runs one suite's repeats
in a child process), report (environment block, CSV/JSON per suite, report.md), charts (PNG speedup charts,
no plotting dependency), progress (the progress line), cli (the command line). The float64 references and
the relative error: lightning_core.testing.
Docs: docs/benchmarks.md. Tests: tests/python/test_bench_harness.py, test_bench_timer.py, test_bench_suites.py.
"""
from .harness import FIELDS, aggregate_repeats, check_row, group_summaries, make_row, summarize  # noqa: F401
from .suites import REGISTRY, Ctx, SuiteUnavailable, register, unregister  # noqa: F401
from .timer import time_call, time_pair  # noqa: F401


def main(argv=None) -> int:
    from .cli import main as _main
    return _main(argv)
