#!/bin/bash
# ncu of the float32 tensor-core attention (after tf32_check.sh built it): pipe utilisation and stall reasons
# of the second call of each configuration. Logs under $OUT.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD/python
for cfg in "4096 64" "4096 128"; do
  set -- $cfg
  ncu --cache-control none --clock-control none -k regex:sdpa_tf32 --launch-skip 1 --launch-count 1 \
      --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section Occupancy \
      --section InstructionStats --section MemoryWorkloadAnalysis \
      python3 scripts/device/ncu_one.py $1 $2 > "$OUT/ncu_s$1_d$2.txt" 2>&1
  grep -E "sdpa_tf32|Pipe|Issue|Stall|Warp Cycles|Eligible|Occupancy|Registers|Executed Ipc|Shared|Bank|Throughput" "$OUT/ncu_s$1_d$2.txt" | head -60
done
