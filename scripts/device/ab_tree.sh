#!/bin/bash
# Sourced by the A/B scripts here: REV (default HEAD) archived into /tmp/p and built there in the background
# (log /tmp/p_build.log, its last line "rc N"; PYTHONPATH=/tmp/p/python runs it), then this tree built by
# build.sh (OUT, PYTHONPATH, T0 set). ROOT: this tree. `wait` before using /tmp/p.
ROOT=$PWD
rm -rf /tmp/p && mkdir -p /tmp/p && git archive ${REV:-HEAD} | tar -x -C /tmp/p
(cd /tmp/p && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=$(which python3) > /tmp/p_conf.log 2>&1 &&
  cmake --build build -j6 > /tmp/p_build.log 2>&1; echo "rc $?" >> /tmp/p_build.log) &
. scripts/device/build.sh
