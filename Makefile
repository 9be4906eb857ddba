# qubes-c-firewall — GNU Makefile (no generated build system).
#
# Layout is discovered, not listed: every src/<layer>/*.c below src/host and
# src/pvh forms the portable core; tests/unit/test_*.c are cmocka programs;
# tests/fuzz/fuzz_*.c are libFuzzer targets with seeds in
# tests/fuzz/corpus/<name>/. Adding a module means adding files only.

CC       ?= gcc
CLANG    ?= clang
BUILD    := build
PYTHON   := /usr/bin/python3

# The portable core is compiled without the C library's headers: only the
# compiler's freestanding headers (stdint, stddef, stdarg, stdbool, limits)
# are reachable, so nothing below src/host can call libc by accident.
GCC_INC   := $(shell $(CC) -print-file-name=include)
CLANG_INC := $(shell $(CLANG) -print-file-name=include 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wpointer-arith -Wvla -Wformat=2 -Wno-format-nonliteral
REPRO    := -ffile-prefix-map=$(CURDIR)=. -fdebug-prefix-map=$(CURDIR)=.
CSTD     := -std=c11 -D_DEFAULT_SOURCE
# -ffreestanding makes the compiler's stdint.h self-contained; -fbuiltin
# keeps mem*/str* as builtins so fixed-size copies still inline.
CORE_INC := -ffreestanding -fbuiltin -nostdinc -isystem $(GCC_INC) -Isrc
CFLAGS_COMMON := $(CSTD) $(WARN) $(REPRO) -g -O1 -fno-omit-frame-pointer
SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined

CORE_LAYERS := base net fw xen qubes app
CORE_SRC := $(sort $(foreach l,$(CORE_LAYERS),$(wildcard src/$(l)/*.c)))
HOST_SRC := $(sort $(wildcard src/host/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
SUPPORT_SRC := $(sort $(wildcard tests/support/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

# Unit tier: the core with ASan+UBSan, linked into each cmocka program.
UNIT_CORE_OBJ := $(patsubst src/%.c,$(BUILD)/unit/src/%.o,$(CORE_SRC))
UNIT_SUP_OBJ  := $(patsubst tests/support/%.c,$(BUILD)/unit/support/%.o,$(SUPPORT_SRC))
UNIT_BIN      := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRC))

# Fuzz tier: the core built by clang with libFuzzer + ASan + UBSan.
FUZZ_CORE_OBJ := $(patsubst src/%.c,$(BUILD)/fuzz/src/%.o,$(CORE_SRC))
FUZZ_BIN      := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
# tests/support/unit_*.c assert with cmocka: unit tests only.
FUZZ_SUP_OBJ  := $(patsubst tests/support/%.c,$(BUILD)/fuzz/support/%.o,$(filter-out tests/support/unit_%,$(SUPPORT_SRC)))
FUZZ_SMOKE_RUNS ?= 20000
FUZZ_RUNS       ?= 2000000

.PHONY: all host deps unit test lint fuzz fuzz-smoke e2e sim run clean xen test-xen bench bench-engine help
all: unit host xen

help:
	@echo "make deps        install Debian packages (scripts/install-deps)"
	@echo "make             build the unit tests and (when it exists) the unikernel"
	@echo "make test        every tier that exists: unit, fuzz-smoke, lint, e2e"
	@echo "make lint        cppcheck + clang-tidy over src/"
	@echo "make fuzz        long fuzz runs (FUZZ_RUNS=$(FUZZ_RUNS) executions per target)"
	@echo "make run         the simulated Qubes world (see README)"

deps:
	./scripts/install-deps

# ---- unit tier -------------------------------------------------------------
$(BUILD)/unit/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(SAN) $(CORE_INC) -MMD -MP -c $< -o $@

$(BUILD)/unit/support/%.o: tests/support/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(SAN) -Isrc -Itests/support -MMD -MP -c $< -o $@

$(BUILD)/unit/libcore.a: $(UNIT_CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcD $@ $^

$(BUILD)/unit/test_%: tests/unit/test_%.c $(BUILD)/unit/libcore.a $(UNIT_SUP_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(SAN) -Isrc -Itests/support -Itests/unit -MMD -MP $< $(UNIT_SUP_OBJ) \
	    $(BUILD)/unit/libcore.a -lcmocka -o $@

unit: $(UNIT_BIN)

# ---- fuzz tier -------------------------------------------------------------
$(BUILD)/fuzz/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CLANG) $(CFLAGS_COMMON) -fsanitize=fuzzer-no-link,address,undefined \
	    -ffreestanding -nostdinc -isystem $(CLANG_INC) -Isrc -MMD -MP -c $< -o $@

$(BUILD)/fuzz/libcore.a: $(FUZZ_CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcD $@ $^

$(BUILD)/fuzz/support/%.o: tests/support/%.c
	@mkdir -p $(dir $@)
	$(CLANG) $(CFLAGS_COMMON) -fsanitize=fuzzer-no-link,address,undefined -Isrc -c $< -o $@

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/fuzz/libcore.a $(FUZZ_SUP_OBJ)
	@mkdir -p $(dir $@)
	$(CLANG) $(CFLAGS_COMMON) -fsanitize=fuzzer,address,undefined -Isrc -Itests/support -Itests/fuzz \
	    $< $(FUZZ_SUP_OBJ) $(BUILD)/fuzz/libcore.a -o $@

fuzz-build: $(FUZZ_BIN)

fuzz-smoke: $(FUZZ_BIN)
	@./scripts/run-fuzz $(FUZZ_SMOKE_RUNS) $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	@./scripts/run-fuzz $(FUZZ_RUNS) $(FUZZ_BIN)

# ---- the host runner --------------------------------------------------------
# build/qubes-firewall-host: optimised, for `make run` and benchmarks;
# build/qubes-firewall-host-asan: with ASan+UBSan, what the sim/e2e tiers run.
HOST_OPT := -O2
define host_variant
$(BUILD)/$(1)/src/%.o: src/%.c
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CSTD) $$(WARN) $$(REPRO) -g $(2) $$(if $$(filter src/host/%,$$<),-Isrc,$$(CORE_INC)) -MMD -MP -c $$< -o $$@
# The core as an archive: only what the application uses is linked (the Xen
# ring protocols, for instance, are not part of the host runner).
$(BUILD)/$(1)/libcore.a: $$(patsubst src/%.c,$(BUILD)/$(1)/src/%.o,$$(CORE_SRC))
	rm -f $$@ && ar rcD $$@ $$^
$(BUILD)/$(3): $$(patsubst src/%.c,$(BUILD)/$(1)/src/%.o,$$(HOST_SRC)) $(BUILD)/$(1)/libcore.a
	$$(CC) $(2) $$^ -o $$@
endef
$(eval $(call host_variant,host,$(HOST_OPT),qubes-firewall-host))
$(eval $(call host_variant,host-asan,-O1 -fno-omit-frame-pointer $(SAN),qubes-firewall-host-asan))
host: $(BUILD)/qubes-firewall-host $(BUILD)/qubes-firewall-host-asan

# ---- lint ------------------------------------------------------------------
LINT_SRC := $(CORE_SRC) $(HOST_SRC) $(sort $(wildcard src/pvh/*.c))
lint:
	@./scripts/lint $(LINT_SRC)

# ---- the unikernel (issue 6) -----------------------------------------------
# Not built yet: the PVH platform in src/pvh/ does not exist. The target says so
# rather than pretending.
xen:
	@if [ -z "$(wildcard src/pvh/*.c)" ]; then \
	    echo "xen: the unikernel platform (src/pvh) is not implemented yet; skipping qubes-firewall.xen"; \
	else $(MAKE) --no-print-directory $(BUILD)/qubes-firewall.xen; fi
test-xen: xen
	@./scripts/run-pytest tests/xen

# ---- test orchestration ----------------------------------------------------
test: deps
	@./scripts/run-tests

run: deps
	@$(MAKE) --no-print-directory host
	@./scripts/sim-run

e2e:
	@./scripts/run-e2e

bench-engine: bench-engine-run

clean:
	rm -rf $(BUILD)

# Per-platform fragments (e.g. mk/pvh.mk builds the unikernel image).
-include $(sort $(wildcard mk/*.mk))

-include $(shell find $(BUILD) -path '$(BUILD)/xen-cache' -prune -o -name '*.d' -type f -print 2>/dev/null)
