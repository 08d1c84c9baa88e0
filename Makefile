# runner -- a file-based batch job runner with journaled state.
#
#   make            build ./runner and the example agent
#   make check      build and run every test (TAP, under prove)
#   make check-slurm  the Slurm mode's tests on a private single-node Slurm
#   make demo       build and run a 100-symbol batch of the example agent
#   make asan       build with AddressSanitizer+UBSan and run the tests
#   make valgrind   run the tests with the runner under valgrind
#   make bench      dispatch benchmark against xargs -P and GNU parallel
#   make powerloss  every crash state and I/O error of a recorded workload
#   make fuzz       run each libFuzzer harness for FUZZ_TIME seconds (clang)
#   make install PREFIX=/usr/local DESTDIR=    (and make uninstall)
#       bindir, mandir, unitdir, docdir, completionsdir may be set apart
#
# A missing build dependency stops the build with the exact apt-get line
# (scripts/deps); `make deps` as root installs what is missing, including
# what `make check` needs (prove).

PREFIX ?= /usr/local
DESTDIR ?=
bindir ?= $(PREFIX)/bin
mandir ?= $(PREFIX)/share/man
docdir ?= $(PREFIX)/share/doc/runner
unitdir ?= $(PREFIX)/lib/systemd/system
completionsdir ?= $(PREFIX)/share/bash-completion/completions
CC ?= cc
CFLAGS ?= -O2 -g
PKGS = inih libcjson libarchive nettle zlib
WARN = -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
       -Wmissing-prototypes -Wno-missing-field-initializers
override CFLAGS += -std=c11 -D_GNU_SOURCE $(WARN)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
BUILD ?= build
PROVE ?= prove
PROVE_FLAGS ?= -j2

SRCS = $(wildcard src/*.c)
OBJS = $(SRCS:src/%.c=$(BUILD)/%.o)
LIB_OBJS = $(filter-out $(BUILD)/main.o,$(OBJS))
UNIT_SRCS = $(wildcard tests/unit/*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%.t)
CLI_TESTS = $(wildcard tests/cli/*.t)
TEST_AGENTS_SRCS = $(wildcard tests/agents/*.c)
TEST_AGENTS = $(TEST_AGENTS_SRCS:tests/agents/%.c=$(BUILD)/agents/%)
BENCH_BINS = $(BUILD)/bench/floor $(BUILD)/bench/print
SIM_BIN = $(BUILD)/sim/sim
FUZZ_NAMES = job conf journal
FUZZ_SRCS = tests/fuzz/replay.c tests/fuzz/scratch.c tests/fuzz/fuzz.h
FUZZ_REPLAY = $(FUZZ_NAMES:%=$(BUILD)/fuzz/%-replay)
FUZZ_TIME ?= 60
FUZZ_CC ?= clang
FUZZ_BUILD ?= build-fuzz
SEEDS ?= 1000
SIM_ITEMS ?= 100

.DEFAULT_GOAL := all
.PHONY: all everything check check-slurm demo asan valgrind bench install uninstall \
	clean deps lint sim powerloss fuzz fuzz-build
include examples/Makefile.inc

all: $(BUILD)/.deps runner $(EXAMPLE_TARGETS)

$(BUILD)/.deps: scripts/deps
	@scripts/deps build
	@mkdir -p $(BUILD) && touch $@

deps:
	@scripts/deps install

# Every program of the tree: what CI builds with each compiler.
everything: all $(UNIT_BINS) $(TEST_AGENTS) $(BUILD)/faults/shim.so $(BENCH_BINS) \
	    $(SIM_BIN) $(BUILD)/powerloss/record.so \
	    $(FUZZ_REPLAY)

$(BUILD)/%.o: src/%.c src/*.h $(BUILD)/.deps
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

runner: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(PKG_LIBS) -lm

$(BUILD)/unit/%.t: tests/unit/%.c tests/tap.h tests/unit/scratch.h $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(PKG_CFLAGS) -Isrc -Itests -o $@ $< $(LIB_OBJS) $(PKG_LIBS) -lm

$(SIM_BIN): tests/sim/sim.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(PKG_CFLAGS) -Isrc -o $@ $< $(LIB_OBJS) $(PKG_LIBS) -lm

# The simulator on many seeds (make sim SEEDS=10000 SIM_ITEMS=100), as
# many worker processes as CPUs.
sim: $(SIM_BIN)
	$(SIM_BIN) -j $$(nproc) -n $(SEEDS) -i $(SIM_ITEMS) $${SEED:-1}

# A fuzz harness with the replay driver (any compiler: make check), or
# with libFuzzer (clang: make fuzz, whose CFLAGS instrument the library).
$(BUILD)/fuzz/%-replay: tests/fuzz/%.c $(FUZZ_SRCS) $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(PKG_CFLAGS) -Isrc -Itests/fuzz -o $@ $< \
	  tests/fuzz/replay.c tests/fuzz/scratch.c $(LIB_OBJS) $(PKG_LIBS) -lm

$(BUILD)/fuzz/%-fuzz: tests/fuzz/%.c tests/fuzz/scratch.c tests/fuzz/fuzz.h $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -Isrc -Itests/fuzz -o $@ $< \
	  tests/fuzz/scratch.c $(LIB_OBJS) $(PKG_LIBS) -lm

# Each harness for FUZZ_TIME seconds, one after the other, from its corpus
# in tests/fuzz/corpus (read only); what it finds goes to
# $(FUZZ_BUILD)/corpus/NAME, a crashing input to $(FUZZ_BUILD)/crash-NAME-*.
fuzz: fuzz-build
	@for n in $(FUZZ_NAMES); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$n || exit 1; \
	  echo "fuzz: $$n for $(FUZZ_TIME) s"; \
	  $(FUZZ_BUILD)/fuzz/$$n-fuzz -max_total_time=$(FUZZ_TIME) \
	    -close_fd_mask=2 -print_final_stats=1 \
	    -dict=tests/fuzz/$$n.dict -artifact_prefix=$(FUZZ_BUILD)/crash-$$n- \
	    $(FUZZ_BUILD)/corpus/$$n tests/fuzz/corpus/$$n || exit 1; \
	done

fuzz-build:
	@scripts/deps fuzz
	$(MAKE) CC=$(FUZZ_CC) BUILD=$(FUZZ_BUILD) EXAMPLE_TARGETS= \
	  CFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  LDFLAGS="-fsanitize=address,undefined" \
	  $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz/%-fuzz)

$(BUILD)/agents/%: tests/agents/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $<

$(BUILD)/faults/shim.so: tests/faults/shim.c tests/faults/cookie.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -shared -fPIC -o $@ $< -ldl

$(BUILD)/powerloss/record.so: tests/powerloss/record.c tests/faults/cookie.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -shared -fPIC -o $@ $< -ldl

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $<

# The runner under test: ./runner, or the sanitizer build's (which must not
# replace ./runner).
CHECK_RUNNER = $(if $(RUNNER_BIN),$(RUNNER_BIN),runner)

check: $(BUILD)/.deps $(BUILD)/.test-deps $(CHECK_RUNNER) $(EXAMPLE_TARGETS) $(UNIT_BINS) \
       $(TEST_AGENTS) $(BUILD)/faults/shim.so $(SIM_BIN) $(BUILD)/powerloss/record.so \
       $(FUZZ_REPLAY)
	RUNNER=$(CURDIR)/$(CHECK_RUNNER) \
	RUNNER_SRC=$(CURDIR) RUNNER_BUILD=$(CURDIR)/$(BUILD) \
	$(PROVE) $(PROVE_FLAGS) -e '' $(UNIT_BINS) $(CLI_TESTS)

# Slurm mode against a real slurmctld + slurmd that the test starts (root,
# Debian's slurm-wlm and munge); skipped with the reason elsewhere.
check-slurm: $(BUILD)/.deps $(BUILD)/.test-deps $(CHECK_RUNNER) $(TEST_AGENTS)
	RUNNER=$(CURDIR)/$(CHECK_RUNNER) \
	RUNNER_SRC=$(CURDIR) RUNNER_BUILD=$(CURDIR)/$(BUILD) \
	$(PROVE) -e '' tests/slurm/*.t

$(BUILD)/.test-deps: scripts/deps
	@scripts/deps test
	@mkdir -p $(BUILD) && touch $@

demo: all
	@scripts/demo

# Sanitizer build in its own directory; the CLI tests run its runner.
asan:
	$(MAKE) BUILD=build-asan RUNNER_BIN=build-asan/runner EXAMPLE_TARGETS= \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  LDFLAGS="-fsanitize=address,undefined" build-asan/runner check

build-asan/runner: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(PKG_LIBS) -lm

valgrind: all $(UNIT_BINS) $(TEST_AGENTS)
	RUNNER_VALGRIND=1 $(MAKE) check

# Power loss and I/O errors, in full: every crash point of the recorded
# workload in every kind of state, and EIO and ENOSPC at every operation
# (tests/powerloss/sweep; about an hour on two cores).
powerloss: all $(TEST_AGENTS) $(BUILD)/faults/shim.so $(BUILD)/powerloss/record.so
	RUNNER=$(CURDIR)/runner RUNNER_SRC=$(CURDIR) RUNNER_BUILD=$(CURDIR)/$(BUILD) \
	  tests/powerloss/sweep $(BUILD)/powerloss/work

bench: all $(BENCH_BINS)
	bench/dispatch 1000
	bench/output 1000

# The binary, the man pages, the systemd units (ExecStart= naming
# $(bindir)/runner), an example configuration and job, bash completion.
UNITS = runner.service runner@.service runner-nightly.service runner-nightly.timer
install: runner
	install -d $(DESTDIR)$(bindir) $(DESTDIR)$(mandir)/man1 \
	  $(DESTDIR)$(mandir)/man5 $(DESTDIR)$(unitdir) \
	  $(DESTDIR)$(docdir)/examples $(DESTDIR)$(completionsdir)
	install -m 755 runner $(DESTDIR)$(bindir)/runner
	install -m 644 man/runner.1 $(DESTDIR)$(mandir)/man1/runner.1
	install -m 644 man/runner.conf.5 man/runner-job.5 $(DESTDIR)$(mandir)/man5/
	for u in $(UNITS); do \
	  sed 's|/usr/local/bin/runner|$(bindir)/runner|g' systemd/$$u \
	    >$(DESTDIR)$(unitdir)/$$u.tmp && \
	  chmod 644 $(DESTDIR)$(unitdir)/$$u.tmp && \
	  mv $(DESTDIR)$(unitdir)/$$u.tmp $(DESTDIR)$(unitdir)/$$u || exit 1; \
	done
	install -m 644 conf/runner.ini conf/nightly.job $(DESTDIR)$(docdir)/examples/
	install -m 644 scripts/completion.bash $(DESTDIR)$(completionsdir)/runner

uninstall:
	rm -f $(DESTDIR)$(bindir)/runner $(DESTDIR)$(mandir)/man1/runner.1 \
	  $(DESTDIR)$(mandir)/man5/runner.conf.5 \
	  $(DESTDIR)$(mandir)/man5/runner-job.5 \
	  $(UNITS:%=$(DESTDIR)$(unitdir)/%) \
	  $(DESTDIR)$(docdir)/examples/runner.ini \
	  $(DESTDIR)$(docdir)/examples/nightly.job \
	  $(DESTDIR)$(completionsdir)/runner
	-rmdir $(DESTDIR)$(docdir)/examples $(DESTDIR)$(docdir) 2>/dev/null

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	  --suppress=missingIncludeSystem -D_GNU_SOURCE src

clean: examples-clean
	rm -rf build build-asan build-fuzz runner
