#!/bin/bash
# Sourced by the session scripts here (s22*.sh, s23.sh, s24*.sh): build.sh (OUT, the GPU named, the tree built, PYTHONPATH),
# then S (the summary file), log (echo and append to it), left (seconds left of the plan: LIMIT, default 560, from
# the build's start; the call's limit is 600), the GPU and build time logged, and GPT-2 124M / LLaMA 1.1B random
# checkpoints written to /tmp/g2 and /tmp/ll in the background (the caller waits before using them).
. scripts/device/build.sh
S=$OUT/summary.txt; log() { echo "$*" | tee -a $S; }
left() { echo $(( ${LIMIT:-560} - $(date +%s) + T0 )); }
log "gpu: $(cat $OUT/gpu.txt); build $(( $(date +%s) - T0 )) s"
(python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1;
 python3 -m lightning_core.models.make_random --arch llama --size 1b --dtype bfloat16 /tmp/ll > /dev/null 2>&1) &
