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

.PHONY: all deps build demo check check-plain check-asan check-valgrind \
	check-fuzz check-vm bench clean refresh-conformance

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

# The VM suite (real QEMU boots, minutes of CPU under TCG) runs in the
# background beside valgrind and the fuzzers, after the suites whose
# time limits a busy machine would break (executor durations); its log is
# printed when it ends.
VM_LOG = $(BUILD)/check-vm.log
check: deps
	$(MAKE) build
	@rc=0; $(MAKE) check-plain && $(MAKE) check-asan || rc=$$?; \
	rm -f $(VM_LOG) $(VM_LOG).rc; \
	( $(MAKE) check-vm >$(VM_LOG) 2>&1; echo $$? >$(VM_LOG).rc ) & \
	$(MAKE) check-valgrind && $(MAKE) check-fuzz || rc=$$((rc | $$?)); \
	echo "make check: waiting for the VM suite"; wait; \
	echo "---- VM suite ($(VM_LOG)) ----"; cat $(VM_LOG); \
	vrc=$$(cat $(VM_LOG).rc 2>/dev/null || echo 1); \
	if [ $$rc -ne 0 ] || [ "$$vrc" -ne 0 ]; then \
		echo "make check: FAILED (suites: $$rc, VM suite: $$vrc)"; exit 1; fi; \
	echo "make check: all suites passed"

check-plain: build
	meson test -C $(BUILD) --print-errorlogs --no-rebuild --no-suite vm

# Real VMs (suite vm): a Debian image built from packages (cached in
# /var/cache/atex-test), booted under KVM where a probe shows it works.
check-vm: build
	meson test -C $(BUILD) --print-errorlogs --no-rebuild --suite vm \
		--logbase vm-testlog

# AddressSanitizer + UndefinedBehaviorSanitizer; any report fails the test.
# The executor over ssh and podman (~3 min) runs once, in check-plain: the
# executor suite over the local connection runs the same code here.
check-asan: deps
	@[ -f $(ASAN_BUILD)/build.ninja ] || meson setup $(ASAN_BUILD) \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=all
	ninja -C $(ASAN_BUILD)
	meson test -C $(ASAN_BUILD) --print-errorlogs --no-rebuild \
		--no-suite remote-executor --no-suite remote-run --no-suite vm \
		--no-suite python

check-valgrind: build
	meson test -C $(BUILD) --print-errorlogs --no-rebuild --suite unit \
		--wrapper 'valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect'

# Short libFuzzer runs of every fuzz target (clang build of its own).
check-fuzz: deps
	@[ -f $(FUZZ_BUILD)/build.ninja ] || CC=clang meson setup $(FUZZ_BUILD) \
		-Dfuzz=true -Dfuzz_seconds=$(FUZZ_SECONDS) \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fsanitize=fuzzer-no-link -Dc_link_args=-fsanitize=fuzzer-no-link
	ninja -C $(FUZZ_BUILD)
	meson test -C $(FUZZ_BUILD) --print-errorlogs --no-rebuild --suite fuzz

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
