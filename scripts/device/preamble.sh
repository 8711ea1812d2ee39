#!/bin/bash
# Sourced by the session scripts here (sNN.sh; README.md): build.sh (OUT, the GPU named, the tree
# built, PYTHONPATH), then S (the summary file), log (echo and append to it), left (seconds left of the plan: LIMIT,
# default 560, from the build's start; the call's limit is 600), models_suite, kv_card_tests and ab (below), the GPU and build time
# logged, and GPT-2 124M / LLaMA 1.1B random checkpoints written to /tmp/g2 and /tmp/ll in the background (the
# caller waits before using them).
. scripts/device/build.sh
S=$OUT/summary.txt; log() { echo "$*" | tee -a $S; }
left() { echo $(( ${LIMIT:-560} - $(date +%s) + T0 )); }
log "gpu: $(cat $OUT/gpu.txt); build $(( $(date +%s) - T0 )) s"
# models_suite SECONDS: the models suite (one repeat) within SECONDS, its decode rows logged, the report under
# $OUT/models.
models_suite() {
    local t=$(date +%s)
    timeout $1 python3 -m lightning_core.bench --suite models --device cuda --repeats 1 --out /tmp/rep/models > /tmp/models.txt 2>&1
    log "suite models rc $? in $(( $(date +%s) - t )) s: $(tail -1 /tmp/models.txt)"
    grep -o "decode B=[0-9]* | graph | cuda | [0-9.]* | torch_graph | [0-9.]* | [0-9.]*x" /tmp/rep/models/report.md | tee -a $S
    mkdir -p $OUT/models; cp -r /tmp/rep/models/report.md /tmp/rep/models/summary.json $OUT/models/ 2>/dev/null
}
(python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1;
 python3 -m lightning_core.models.make_random --arch llama --size 1b --dtype bfloat16 /tmp/ll > /dev/null 2>&1) &
# kv_card_tests: the rope / KV-cache / engine tests (CUDA cases), test_sdpa_cuda and test_gemv_cuda, logged.
kv_card_tests() {
    timeout 100 python3 -m pytest -q tests/python/test_kv_cache_rope.py tests/python/test_kv_cache_fused.py tests/python/test_kv_cache.py tests/python/test_ops_llm.py tests/python/test_engine.py tests/python/test_tp.py tests/python/test_generate_cli.py -k "not cpu" > $OUT/pt_rope.txt 2>&1
    log "pytest rope/kv/engine (cuda) rc $?: $(tail -1 $OUT/pt_rope.txt)"; grep -E "^FAILED|^E " $OUT/pt_rope.txt | head -16 | tee -a $S
    timeout 60 build/test_sdpa_cuda > /tmp/sdpa.txt 2>&1; log "test_sdpa_cuda rc $?: $(tail -1 /tmp/sdpa.txt)"
    timeout 100 build/test_gemv_cuda > /tmp/gemv.txt 2>&1; log "test_gemv_cuda rc $?: $(tail -1 /tmp/gemv.txt)"
}
# ab SETTINGS SECONDS "DIRS": ring_ab.py over SETTINGS (its RING_AB_SETTINGS form) at B = 1 and 4 (AB_BATCHES)
# within SECONDS, on the checkpoint folders DIRS, logged.
ab() { (cd scripts/device && RING_AB_SETTINGS="$1" RING_AB_BATCHES=${AB_BATCHES:-1,4} timeout $2 python3 ring_ab.py $3 2>&1 | grep -v Warn | tee -a $S); }
# build_decode_probe: the tensor-core decode with its stage stamps (-DSDM_PROBE) linked against build/ into
# build/decode_probe (scripts/device/decode_probe.cu), failures logged.
build_decode_probe() {
    local blas=$(sed -n 's/^LC_BLAS_LIBRARY:FILEPATH=//p' build/CMakeCache.txt)
    nvcc -O3 -std=c++17 -arch=sm_90 -DSDM_PROBE -I src -I include -o build/decode_probe scripts/device/decode_probe.cu \
      src/backend/cuda/sdpa_decode_mma_cuda.cu build/liblightning_core_static.a \
      -Xlinker --allow-multiple-definition -lcublasLt -ldl -lpthread -lm ${blas:+$blas -Xlinker -rpath=$(dirname "$blas")} > /tmp/probe_build.log 2>&1 || tail -5 /tmp/probe_build.log | tee -a $S
}
# probe_shapes ENV...: build/decode_probe at the runner's shapes (GPT-2; LLaMA 1.1B with the fused rope) and issue 15's
# step shape, once per environment setting given ("" the default), into $OUT/probe.txt.
probe_shapes() {
    for cfg in "1 1024 12 12 64 48 1" "1 2048 32 4 64 64 1 1" "1 1024 32 8 128 1000 1"; do
        for env in "$@"; do echo "== ${env:-default}"; timeout 20 env $env build/decode_probe $cfg; done
    done > $OUT/probe.txt 2>&1
}
