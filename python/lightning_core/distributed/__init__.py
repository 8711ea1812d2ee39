"""lightning_core.distributed: process groups for tensor parallelism; here the one-process simulation
(``ThreadGroup``, ``run_threads``: ranks as threads, docs/python_api.md "Tensor parallelism")."""
from .threads import ThreadGroup, run_threads
