#!/usr/bin/env bash
# setup_env.sh — creates .venv (with access to already-installed system packages) and installs only
# what is missing: numpy, ml_dtypes (NumPy's bfloat16), pytest, scikit-build-core, the scipy-openblas32 BLAS wheel, and cmake if the
# machine has none. Works offline when those are already installed (then nothing is downloaded); a
# missing optional piece (the BLAS wheel) is reported, not fatal. Used by `make test` / `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
# The base interpreter: never our own .venv (the Makefile puts .venv/bin first on PATH).
PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v -x -F "$(pwd)/$VENV/bin" | paste -sd: -)
PY=$(command -v "${PYTHON:-python3}" || true)

have_root_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_install() {
    if have_root_apt; then
        echo "setup: installing Debian packages: $*"
        (apt-get install -y -q "$@" >/dev/null 2>&1) || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$@" >/dev/null; }
    else
        echo "setup: please install: $* (not root or no apt-get)" >&2
        return 1
    fi
}

command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || apt_install gcc make
if [ -z "$PY" ]; then apt_install python3 python3-venv python3-dev && PY=$(command -v python3); fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV"
    "$PY" -m venv --system-site-packages "$VENV" 2>/dev/null || { apt_install python3-venv && "$PY" -m venv --system-site-packages "$VENV"; }
fi
VPY="$VENV/bin/python"

# When python3 is itself a virtual environment (as on the GPU machines), --system-site-packages reaches
# only its base interpreter: expose the parent environment's packages to .venv through a .pth file.
PARENT_SITE=$("$PY" -c 'import site, sys; print("\n".join(site.getsitepackages()) if sys.prefix != sys.base_prefix else "")')
if [ -n "$PARENT_SITE" ]; then
    SITE=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    printf '%s\n' "$PARENT_SITE" > "$SITE/lightning_core_parent_env.pth"
fi

# Python headers for the extension.
if ! "$VPY" -c 'import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)'; then
    apt_install python3-dev
fi

pip_need() { # module-name pip-spec
    if ! "$VPY" -c "import $1" >/dev/null 2>&1; then
        echo "setup: installing $2"
        "$VPY" -m pip install -q --disable-pip-version-check --retries 1 --timeout 15 "$2"
    fi
}
pip_need numpy "numpy>=1.23"
pip_need pytest pytest
pip_need ml_dtypes ml_dtypes
pip_need scikit_build_core "scikit-build-core>=0.8"
if ! "$VPY" -c "import scipy_openblas32" >/dev/null 2>&1; then
    "$VPY" -m pip install -q --disable-pip-version-check --retries 0 --timeout 10 scipy-openblas32 ||
        echo "setup: note: scipy-openblas32 unavailable (offline?); large CPU matmul uses the built-in kernel"
fi
if ! command -v cmake >/dev/null 2>&1; then
    pip_need cmake cmake
fi

# Make the in-tree package importable from the venv (the extension is built into python/lightning_core/).
SITE=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$(pwd)/python" > "$SITE/lightning_core_dev.pth"
touch "$VENV/.lc-ready"
