#!/usr/bin/env bash
# timeline_check.sh — compile-check of the timeline build (cmake -DLC_TIMELINE=ON; pdl.cuh, timeline.c), run by
# .ci/run: the CUDA files named in timeline.c's LC_TL_FILES and timeline.c itself, compiled with LC_TIMELINE and
# warnings as errors (objects under a temporary folder, discarded). Skipped where nvcc is not found.
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
[ -n "$NVCC" ] || { echo "timeline-check: no nvcc, skipped"; exit 0; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
files=$(sed -n '/^#define LC_TL_FILES/,/^LC_TL_FILES/p' src/backend/cuda/timeline.c | grep -o 'X([a-z_0-9]*)' | sed 's/X(\(.*\))/\1/')
[ -n "$files" ] || { echo "timeline-check: no files found in timeline.c"; exit 1; }
gcc -std=c11 -O2 -Wall -Wextra -Werror -DLC_TIMELINE=1 -DLC_HAVE_CUDA=1 -I src -I include -c src/backend/cuda/timeline.c -o "$tmp/timeline.o"
printf '%s\n' $files | xargs -P "${JOBS:-2}" -I{} "$NVCC" -std=c++17 -O3 -arch=sm_90 -DLC_TIMELINE=1 -DLC_HAVE_CUDA=1 \
  -I src -I include -Werror all-warnings -Xcompiler=-Wall,-Wextra,-Wno-unused-parameter -c src/backend/cuda/{}.cu -o "$tmp/{}.o"
echo "timeline-check: $(echo $files | wc -w) CUDA files and timeline.c compile with LC_TIMELINE"
