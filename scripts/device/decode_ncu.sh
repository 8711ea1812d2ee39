#!/bin/bash
# ncu of the decode attention (ours: default and LC_SDPA_DECODE_FOLD=0; torch) at B=1 Skv 1k/4k: kernel
# durations (cold L2) and where the warps wait. Assumes the tree is built (build.sh). Logs under $OUT.
set -u
[ -d build ] && [ -n "$(ls python/lightning_core/*.so 2>/dev/null)" ] || . scripts/device/build.sh
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD/python
which nsys ncu
for skv in 1024 4096; do
  for who in ours nofold torch; do
    env=""; w=$who; [ $who = nofold ] && { env="LC_SDPA_DECODE_FOLD=0"; w=ours; }
    env $env ncu --cache-control all --clock-control none --launch-skip 3 --launch-count 12 \
      --section SpeedOfLight --section LaunchStats --section WarpStateStats --section Occupancy \
      python3 scripts/device/decode_one.py 1 $skv $w 6 > "$OUT/ncu_${who}_$skv.txt" 2>&1
    echo "== $who $skv"; grep -E "^  [a-zA-Z_].*\(|Duration|Grid Size|Registers Per|Achieved Occ|Warp Cycles Per Issued|DRAM Throughput" "$OUT/ncu_${who}_$skv.txt" | head -80
  done
done
