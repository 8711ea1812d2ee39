#!/bin/bash
# Session 18, GPU call 2: the [n, k] GEMV (w as the transposed view of torch's [out, in] layout) and the model
# runner holding its CUDA weights so. Builds this tree and HEAD (/tmp/p, for the A/B) side by side; test_gemv_cuda
# (every case, the [n, k] ones included; its timing table with the [n, k] column); the Python tests of the
# linear family, the GEMV routing, the engine and the CLI on CUDA; then GPT-2 124M and LLaMA 1.1B bf16 B=1
# decode alternating HEAD / this tree, 2 rounds; with SUITES=1 (default) the models and lowp suites. Summary: $OUT/summary.txt.
set -u
. scripts/device/ab_tree.sh
S=$OUT/summary.txt; L=/tmp/s18b; mkdir -p $L
log() { echo "$*" | tee -a $S; }
log "gpu: $(cat $OUT/gpu.txt); build $(( $(date +%s) - T0 )) s"
LC_TEST_VERBOSE=1 timeout 200 build/test_gemv_cuda > $L/gemv.txt 2>&1; log "test_gemv_cuda rc $?: $(tail -1 $L/gemv.txt)"
grep -E "FAIL" $L/gemv.txt | head -8 | tee -a $S; sed -n '/^timing/,/^test_gemv_cuda/p' $L/gemv.txt | tee -a $S
wait; log "HEAD build: $(tail -1 /tmp/p_build.log) at $(( $(date +%s) - T0 )) s"
python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1 &
timeout 300 python3 -m pytest -q tests/python/test_linear_wt.py tests/python/test_norm_linear.py tests/python/test_silu_mul_linear.py \
  tests/python/test_ops_linear.py tests/python/test_dtype_ops.py tests/python/test_engine.py tests/python/test_kv_cache_fused.py \
  tests/python/test_generate_cli.py tests/python/test_tp.py -k "not cpu" > $L/pytest.txt 2>&1
log "pytest rc $?: $(tail -1 $L/pytest.txt)"; grep -E "^FAILED|^ERROR|Error" $L/pytest.txt | head -12 | tee -a $S
wait
python3 -m lightning_core.models.make_random --arch llama --size 1b --dtype bfloat16 /tmp/ll > /dev/null 2>&1
log "tested $(( $(date +%s) - T0 )) s"
IDS=$(python3 -c "print(','.join(str(i) for i in range(1, 33)))")
for r in $(seq ${ROUNDS:-2}); do
  for m in g2 ll; do
    for t in head new; do
      P=$ROOT/python; [ $t = head ] && P=/tmp/p/python
      log "[$t] $m r$r $(PYTHONPATH=$P timeout 60 python3 -m lightning_core.generate --model /tmp/$m --ids $IDS \
        --max-new-tokens 64 --device cuda --dtype bfloat16 --bench 5 --quiet 2>&1 | tail -1 | grep -o 'decode.*')"
    done
  done
done
# the models suite on this tree when it decoded faster than HEAD on both models (report.md, summary.json under $OUT/models/)
faster=$(python3 - $S <<'PY'
import re, sys, collections
t = collections.defaultdict(list)
for line in open(sys.argv[1]):
    m = re.match(r"\[(head|new)\] (g2|ll) r\d decode ([0-9.]+) ms", line)
    if m: t[(m[1], m[2])].append(float(m[3]))
ok = all(t[("new", k)] and t[("head", k)] and sum(t[("new", k)]) < sum(t[("head", k)]) for k in ("g2", "ll"))
print(1 if ok else 0)
PY
)
log "new tree faster on both models: $faster"
if [ "${SUITES:-1}" = 1 ] && [ "$faster" = 1 ]; then
  t=$(date +%s)
  timeout 200 python3 -m lightning_core.bench --suite models --device cuda --repeats 1 --out /tmp/rep/models > $L/models.txt 2>&1
  log "suite models rc $? in $(( $(date +%s) - t )) s: $(tail -1 $L/models.txt)"
  mkdir -p $OUT/models; cp /tmp/rep/models/report.md /tmp/rep/models/summary.json $OUT/models/ 2>/dev/null
  grep -E "decode|prefill" /tmp/rep/models/report.md | grep -v "^<" | cut -c1-300 | head -20 | tee -a $S
fi
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
