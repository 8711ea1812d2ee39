#!/usr/bin/env bash
# wheel_check.sh — proves `pip install .` works: builds the wheel through scikit-build-core (same CMake),
# installs it into a scratch folder and imports it from outside the source tree.
set -euo pipefail
cd "$(dirname "$0")/.."
VPY=$(pwd)/.venv/bin/python
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$VPY" -m pip wheel -q --no-build-isolation --no-deps -w "$tmp/wheel" .
"$VPY" -m pip install -q --no-deps --target "$tmp/site" "$tmp"/wheel/*.whl
cd "$tmp"
PYTHONPATH="$tmp/site" "$VPY" - <<'PY'
import numpy as np, lightning_core as lc, os
assert lc.__file__.startswith(os.environ["PYTHONPATH"]), lc.__file__
a = np.random.rand(64, 48).astype(np.float32); b = np.random.rand(48, 32).astype(np.float32)
err = np.abs(lc.matmul2d(a, b, "cpu") - a.astype(np.float64) @ b).max()
assert err < 1e-4, err
import lightning_core_integrated_api as lc_api
assert lc_api.__file__.startswith(os.environ["PYTHONPATH"]), lc_api.__file__
lin = lc_api.Linear(4, 3, seed=1)
assert lin(np.ones((2, 4), np.float32)).shape == (2, 3)
print("wheel-check: installed wheel imports and computes; blas =", lc.blas_name())
PY
# the benchmark package runs from the wheel alone (nothing read from the source tree)
PYTHONPATH="$tmp/site" "$VPY" -m lightning_core.bench --quick --suite kernel --repeats 1 --device cpu \
    --out "$tmp/bench" > "$tmp/bench.log" 2>&1 || { cat "$tmp/bench.log"; exit 1; }
grep -q "^  kernel  *ok" "$tmp/bench.log" || { cat "$tmp/bench.log"; exit 1; }
echo "wheel-check: python -m lightning_core.bench --quick --suite kernel ran from the installed wheel"
# the model runner from the wheel alone: a random tiny checkpoint, then the generate CLI over it
PYTHONPATH="$tmp/site" "$VPY" -m lightning_core.models.make_random --arch llama --size tiny "$tmp/tiny" > /dev/null
PYTHONPATH="$tmp/site" "$VPY" -m lightning_core.generate --model "$tmp/tiny" --ids 1,2,3 --max-new-tokens 4 --quiet \
    > "$tmp/gen.log" 2>&1 || { cat "$tmp/gen.log"; exit 1; }
grep -q "tokens/s" "$tmp/gen.log" || { cat "$tmp/gen.log"; exit 1; }
echo "wheel-check: python -m lightning_core.generate ran from the installed wheel"
