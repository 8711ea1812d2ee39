#!/bin/bash
# Build, then scripts/device/decode_graph.py (decode attention device time, graph-replayed). Logs under $OUT.
set -u
. scripts/device/build.sh
timeout 100 python3 scripts/device/decode_graph.py 2>&1 | tee "$OUT/decode_graph.txt"
