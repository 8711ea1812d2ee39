#!/bin/bash
# The timeline build on the card (cmake -DLC_TIMELINE=ON into build/, which it leaves so: rebuild without it
# before measuring anything else), then scripts/device/timeline.py on GPT-2 124M and LLaMA 1.1B random bf16
# checkpoints: the median decode step's PDL launches with their ready / run / early / late times. Output under
# $OUT/timeline.txt. TL_MODELS: the folders (default "/tmp/g2 /tmp/ll").
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
T0=$(date +%s)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLC_TIMELINE=ON -DPython3_EXECUTABLE=$(which python3) > "$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
cmake --build build -j16 > "$OUT/build.log" 2>&1 || { grep -E "error" "$OUT/build.log" | head -30; exit 1; }
echo "timeline build $(( $(date +%s) - T0 )) s"
export PYTHONPATH=$PWD/python
[ -d /tmp/g2 ] || python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1
[ -d /tmp/ll ] || python3 -m lightning_core.models.make_random --arch llama --size 1b --dtype bfloat16 /tmp/ll > /dev/null 2>&1
for d in ${TL_MODELS:-/tmp/g2 /tmp/ll}; do timeout 120 python3 scripts/device/timeline.py $d 2>&1 | grep -v Warn; done | tee "$OUT/timeline.txt"
rm -f "$OUT/configure.log" "$OUT/build.log"
