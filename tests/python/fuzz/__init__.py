"""Lightning Core fuzzer: seeded random and almost-valid arguments at every public callable.

Layout (docs/design.md, "Fuzzing"):
- ``values.py``  value pools, array/tensor makers and the argument mutations (valid / invalid / either);
- ``ops.py``     hand-written schemas of the core ops with float64 NumPy references;
- ``misc.py``    generic introspection cases (every public callable) and stateful scenarios: sessions,
                 Graph builder + plans, checkpoints on temp files, Tensor/TensorView/DLPack, nn modules;
- ``worker.py``  runs cases ``[start, start+count)`` of a seed in one process, one JSON line per case,
                 with the oracle (``oracle.py``) and a sanity op after every case;
- ``driver.py``  runs batches in subprocesses with a per-case timeout (crash, hang = finding), confirms a
                 finding alone, shrinks it to the fewest mutations and prints the reproducer;
- ``allow.py``   the one allow-list of known findings (each tied to an item of issue 12);
- ``run.py``     command line (``make fuzz``); tests/python/test_fuzz.py is the short run of ``make test``.

A case is identified by ``(seed, index, mask)``: everything is regenerated from those numbers, so
``python tests/python/fuzz/run.py --seed S --case I [--mask M]`` replays one case exactly.
"""
