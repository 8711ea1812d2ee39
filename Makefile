# Lightning Core — `make test` and `make demo` do all set-up on a fresh machine (see README).
# Other targets: build, ctest, pytest, sanitize (ASan+UBSan C tests), wheel-check (pip install . through
# scikit-build-core), bench (python -m lightning_core.bench: all suites, report + charts), fuzz (random-argument
# fuzzer of the Python API: FUZZ_SECONDS=120, FUZZ_SEED=<random, printed>; exits 1 on any new finding), clean.
VENV   := .venv
VPY    := $(VENV)/bin/python
BUILD  := build
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: test demo venv build ctest pytest sanitize wheel-check bench fuzz clean

test: build
	cd $(BUILD) && ctest --output-on-failure
	$(VPY) -m pytest -q tests/python

# demo: the kernel and ml suites, --quick, one repeat, on the best device (CUDA when lightning_core has a GPU);
# prints the summary table (reports under benchmark_results/demo/).
demo: build
	$(VPY) -m lightning_core.bench --quick --suite kernel,ml --repeats 1 --out benchmark_results/demo

venv: $(VENV)/.lc-ready
$(VENV)/.lc-ready: scripts/setup_env.sh
	scripts/setup_env.sh

build: venv
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=$(abspath $(VPY)) > $(BUILD).configure.log 2>&1 || (cat $(BUILD).configure.log; exit 1)
	@grep -E "lightning_core:" $(BUILD).configure.log || true
	cmake --build $(BUILD) -j$(JOBS)

ctest: build
	cd $(BUILD) && ctest --output-on-failure

pytest: build
	$(VPY) -m pytest -q tests/python

sanitize: venv
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DLC_SANITIZE=ON -DLC_CUDA=OFF -DLC_BUILD_PYTHON=OFF -DPython3_EXECUTABLE=$(abspath $(VPY)) > $(BUILD)-asan.configure.log 2>&1 || (cat $(BUILD)-asan.configure.log; exit 1)
	cmake --build $(BUILD)-asan -j$(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure

wheel-check: venv
	scripts/wheel_check.sh

# bench: every suite (kernel, pipeline, ML, large-GEMM sweep, resident, graph/eager A/B, fusion, API overhead,
# engine split) on the best backend, 3 repeats; reports under benchmark_results/ (BENCH_ARGS=--quick, --dtype,
# --suite, --device ...).
bench: build
	$(VPY) -m lightning_core.bench $(BENCH_ARGS)

# fuzz: docs/design.md "Fuzzing"; replay a finding with the command it prints.
FUZZ_SECONDS ?= 120
fuzz: build
	$(VPY) tests/python/fuzz/run.py --seconds $(FUZZ_SECONDS) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD).configure.log $(BUILD)-asan.configure.log python/lightning_core/_C*.so
