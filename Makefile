# runner -- a file-based batch job runner with journaled state.
#
#   make            build ./runner and the example agent
#   make check      build and run every test (TAP, under prove)
#   make check-slurm  the Slurm mode's tests on a private single-node Slurm
#   make demo       build and run a 100-symbol batch of the example agent
#   make asan       build with AddressSanitizer+UBSan and run the tests
#   make valgrind   run the tests with the runner under valgrind
#   make bench      dispatch benchmark against xargs -P and GNU parallel
#   make install PREFIX=/usr/local DESTDIR=
#
# Missing build dependencies are installed with apt-get when run as root;
# otherwise the exact apt-get line is printed (scripts/deps).

PREFIX ?= /usr/local
DESTDIR ?=
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
SEEDS ?= 1000
SIM_ITEMS ?= 100

.DEFAULT_GOAL := all
.PHONY: all everything check check-slurm demo asan valgrind bench install clean deps lint sim
include examples/Makefile.inc

all: $(BUILD)/.deps runner $(EXAMPLE_TARGETS)

$(BUILD)/.deps: scripts/deps
	@scripts/deps
	@mkdir -p $(BUILD) && touch $@

deps:
	@scripts/deps

# Every program of the tree: what CI builds with each compiler.
everything: all $(UNIT_BINS) $(TEST_AGENTS) $(BUILD)/faults/shim.so $(BENCH_BINS) \
	    $(SIM_BIN)

$(BUILD)/%.o: src/%.c src/*.h $(BUILD)/.deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

runner: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(PKG_LIBS) -lm

$(BUILD)/unit/%.t: tests/unit/%.c tests/tap.h tests/unit/scratch.h $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Isrc -Itests -o $@ $< $(LIB_OBJS) $(PKG_LIBS) -lm

$(SIM_BIN): tests/sim/sim.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Isrc -o $@ $< $(LIB_OBJS) $(PKG_LIBS) -lm

# The simulator on many seeds (make sim SEEDS=10000 SIM_ITEMS=100), as
# many worker processes as CPUs.
sim: $(SIM_BIN)
	$(SIM_BIN) -j $$(nproc) -n $(SEEDS) -i $(SIM_ITEMS) $${SEED:-1}

$(BUILD)/agents/%: tests/agents/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $<

$(BUILD)/faults/shim.so: tests/faults/shim.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -shared -fPIC -o $@ $< -ldl

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $<

# The runner under test: ./runner, or the sanitizer build's (which must not
# replace ./runner).
CHECK_RUNNER = $(if $(RUNNER_BIN),$(RUNNER_BIN),runner)

check: $(BUILD)/.deps $(CHECK_RUNNER) $(EXAMPLE_TARGETS) $(UNIT_BINS) \
       $(TEST_AGENTS) $(BUILD)/faults/shim.so $(SIM_BIN)
	RUNNER=$(CURDIR)/$(CHECK_RUNNER) \
	RUNNER_SRC=$(CURDIR) RUNNER_BUILD=$(CURDIR)/$(BUILD) \
	$(PROVE) $(PROVE_FLAGS) -e '' $(UNIT_BINS) $(CLI_TESTS)

# Slurm mode against a real slurmctld + slurmd that the test starts (root,
# Debian's slurm-wlm and munge); skipped with the reason elsewhere.
check-slurm: $(BUILD)/.deps $(CHECK_RUNNER) $(TEST_AGENTS)
	RUNNER=$(CURDIR)/$(CHECK_RUNNER) \
	RUNNER_SRC=$(CURDIR) RUNNER_BUILD=$(CURDIR)/$(BUILD) \
	$(PROVE) -e '' tests/slurm/*.t

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

bench: all $(BENCH_BINS)
	bench/dispatch 1000
	bench/output 1000

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 755 runner $(DESTDIR)$(PREFIX)/bin/runner
	install -m 644 man/runner.1 $(DESTDIR)$(PREFIX)/share/man/man1/runner.1
	install -m 644 man/runner.conf.5 man/runner-job.5 $(DESTDIR)$(PREFIX)/share/man/man5/

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	  --suppress=missingIncludeSystem -D_GNU_SOURCE src

clean: examples-clean
	rm -rf build build-asan runner
