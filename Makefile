# The two commands a new user needs (see README.md). Both install missing
# Debian packages first, then configure and build with meson + ninja.
#
#   make demo    run the main job on the bundled example
#   make check   build and run the whole test suite, sanitizers included

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 20
ATEX       = $(BUILD)/cli/atex

.PHONY: all deps build demo check check-plain check-plain-core \
	check-cli-remote check-python check-asan check-asan-build \
	check-asan-python check-valgrind check-fuzz \
	check-vm bench clean refresh-conformance

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD)
	ninja -C $(BUILD)

# The demo suite has one test that fails on purpose and one flaky test
# that passes when re-run: `atex run` exits 1, which is the demo working.
DEMO_RESULTS ?= demo-results
demo: build
	@rc=0; $(ATEX) run --local 4 --plan /plans/demo --reruns 1 \
		--order longest-first --results $(DEMO_RESULTS) examples || rc=$$?; \
	[ $$rc -le 1 ] || exit $$rc; \
	echo; $(ATEX) report --summary $(DEMO_RESULTS)/results.jsonl; \
	echo; echo "demo: report in $(DEMO_RESULTS)/report.html" \
		"(results.jsonl, results.sqlite and files/ beside it)"

# make check, in the order that keeps a 2-core machine busy without
# breaking time limits:
#  1. the plain build's core suites (unit, conformance, the C integration
#     tests, the executor over local/ssh/podman), then the same under ASan:
#     their time limits (executor durations) need cores that are not busy,
#     so they run alone;
#  2. then three lanes at once: in the foreground valgrind, the fuzzers,
#     then the Python package (suite python, then check-asan-python: its
#     C code under ASan); in the background the VM
#     suite (real QEMU boots, minutes of CPU under TCG) and the CLI over
#     ssh, podman and Testing Farm (suite cli-remote, mostly waiting on
#     servers). Each background lane's log is printed when all ended.
# The plain build runs a suite with no is_parallel limit 4 at a time
# (servers and sleeps: half of them wait), meson's default is 2 here.
CHECK_JOBS ?= 4
MESON_TEST = meson test --print-errorlogs --no-rebuild
PLAIN_CORE = $(MESON_TEST) -C $(BUILD) --num-processes $(CHECK_JOBS) \
	--no-suite vm --no-suite cli-remote --no-suite python --no-suite asan-only
CLI_REMOTE = $(MESON_TEST) -C $(BUILD) --suite cli-remote --no-suite vm \
	--logbase cli-remote-testlog
PYTHON_TEST = $(MESON_TEST) -C $(BUILD) --num-processes $(CHECK_JOBS) \
	--suite python --logbase python-testlog
VM_TEST    = $(MESON_TEST) -C $(BUILD) --suite vm --logbase vm-testlog
CHECK_LANES = vm cli-remote
check: deps
	$(MAKE) build
	@rc=0; $(MAKE) check-plain-core && $(MAKE) check-asan || rc=$$?; \
	for lane in $(CHECK_LANES); do \
		rm -f $(BUILD)/check-$$lane.log $(BUILD)/check-$$lane.log.rc; \
	done; \
	( ( echo "$(VM_TEST)"; $(VM_TEST) ) >$(BUILD)/check-vm.log 2>&1; \
		echo $$? >$(BUILD)/check-vm.log.rc ) & \
	( ( echo "$(CLI_REMOTE)"; $(CLI_REMOTE) ) \
		>$(BUILD)/check-cli-remote.log 2>&1; \
		echo $$? >$(BUILD)/check-cli-remote.log.rc ) & \
	$(MAKE) check-valgrind && $(MAKE) check-fuzz || rc=$$((rc | $$?)); \
	$(MAKE) check-python || rc=$$((rc | $$?)); \
	$(MAKE) check-asan-python || rc=$$((rc | $$?)); \
	echo "make check: waiting for the VM suite and the CLI over remotes"; \
	wait; bad=; \
	for lane in $(CHECK_LANES); do \
		log=$(BUILD)/check-$$lane.log; \
		echo "---- $$lane lane ($$log) ----"; cat $$log; \
		lrc=$$(cat $$log.rc 2>/dev/null || echo 1); \
		[ "$$lrc" -eq 0 ] || bad="$$bad, $$lane lane: $$lrc"; \
	done; \
	if [ $$rc -ne 0 ] || [ -n "$$bad" ]; then \
		echo "make check: FAILED (suites: $$rc$$bad)"; exit 1; fi; \
	echo "make check: all suites passed"

# Every plain-build suite but the VM one, in one meson run.
check-plain: build
	$(MESON_TEST) -C $(BUILD) --num-processes $(CHECK_JOBS) --no-suite vm

# make check's plain-build parts (see above). testingfarm-api (suite
# asan-only) runs in make check under ASan only: its provisioner code runs
# in the plain build through cli-tf.
check-plain-core: build
	$(PLAIN_CORE)

check-cli-remote: build
	$(CLI_REMOTE)

check-python: build
	$(PYTHON_TEST)

# The Python package's C code under ASan + UBSan as well: Debian's python3
# with the sanitizer runtimes preloaded (the interpreter is not
# instrumented, and its own allocations at exit are not ours to report:
# detect_leaks=0). The leak loops measure RSS, which ASan's quarantine
# inflates: they run in the plain build (check-python) only. The suites
# over ssh and podman run the same C code as the local ones.
ASAN_PRELOAD = $(shell gcc -print-file-name=libasan.so) \
	$(shell gcc -print-file-name=libubsan.so)
ASAN_PYTHON_TESTS = core util fmf executor beakerlib connection provisioner \
	aggregator report report_timings orchestrator timings history \
	reportportal reportportal_edges
check-asan-python: check-asan-build
	cd tests/python && LD_PRELOAD="$(ASAN_PRELOAD)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	PYTHONPATH=$(abspath $(ASAN_BUILD))/python \
	ATEX_PYTHON_BUILD=$(abspath $(ASAN_BUILD))/python \
	PYTHONDONTWRITEBYTECODE=1 \
	timeout -s ABRT 1200 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
		-o faulthandler_timeout=300 -k "not leak" \
		$(ASAN_PYTHON_TESTS:%=test_%.py)

# Real VMs (suite vm): a Debian image built from packages (cached in
# /var/cache/atex-test), booted under KVM where a probe shows it works.
check-vm: build
	$(VM_TEST)

# AddressSanitizer + UndefinedBehaviorSanitizer; any report fails the test.
# Left out here, run once in the plain build (make check's time budget),
# each with its C code covered under ASan by another suite:
#  - the executor over ssh and podman (suite remote-executor, ~3 min): the
#    executor suite over the local connection runs the same code, the ssh
#    and podman suites the connections;
#  - the CLI over ssh, podman and Testing Farm (suite cli-remote: cli-test,
#    cli-run over ssh and podman, cli-tf): cli-test-local, cli-run-local,
#    cli-exec-ssh and cli-exec-podman run the CLI's code, ssh and podman
#    the connections, executor and orchestrator the rest, testingfarm-api
#    the Testing Farm provisioner;
#  - the Python package (suite python).
# testingfarm-api runs here at a faster pace of its fake server
# (ATEX_TF_SCALE, ~3 s per request at the default 0.5).
ASAN_TF_SCALE ?= 0.25
check-asan-build: deps
	@[ -f $(ASAN_BUILD)/build.ninja ] || meson setup $(ASAN_BUILD) \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=all
	ninja -C $(ASAN_BUILD)

check-asan: check-asan-build
	ATEX_TF_SCALE=$(ASAN_TF_SCALE) $(MESON_TEST) -C $(ASAN_BUILD) \
		--no-suite remote-executor --no-suite remote-run \
		--no-suite cli-remote --no-suite vm --no-suite python

check-valgrind: build
	$(MESON_TEST) -C $(BUILD) --suite unit \
		--wrapper 'valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect'

# Short libFuzzer runs of every fuzz target (clang build of its own).
check-fuzz: deps
	@[ -f $(FUZZ_BUILD)/build.ninja ] || CC=clang meson setup $(FUZZ_BUILD) \
		-Dfuzz=true -Dfuzz_seconds=$(FUZZ_SECONDS) \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fsanitize=fuzzer-no-link -Dc_link_args=-fsanitize=fuzzer-no-link
	ninja -C $(FUZZ_BUILD)
	$(MESON_TEST) -C $(FUZZ_BUILD) --suite fuzz

bench: build
	bench/run-all.sh $(BUILD)

# In a workplace checkout (with ../shared): refresh the copied reference data.
# The shared copy has a placeholder for a script test_executor runs: keep ours.
CONFORMANCE_KEEP = trees/atex-results/functions
refresh-conformance:
	tmp=$$(mktemp -d) && \
	(cd tests/conformance/fmf && cp --parents $(CONFORMANCE_KEEP) $$tmp) && \
	rm -rf tests/conformance/fmf && \
	cp -a ../shared/conformance/fmf tests/conformance/fmf && \
	(cd $$tmp && cp --parents $(CONFORMANCE_KEEP) $(CURDIR)/tests/conformance/fmf) && \
	rm -rf $$tmp

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(DEMO_RESULTS)
