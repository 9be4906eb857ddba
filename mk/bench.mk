# mk/bench.mk — the engine benchmark of issue 3 (included by the top Makefile).
#
#   make build/bench_engine      the router benchmark (bench/engine/bench_engine.c)
#   make build/bench_conntrack   the connection table alone (bench_conntrack.c)
#   make bench-engine-run        builds both, runs scripts/bench-engine
#                                (timing table + callgrind instructions/packet)
#
# Both link the -O2 host build of the core (build/host/libcore.a, no
# sanitizers) and carry their own platform_panic. They are host programs
# (stdio, clock_gettime), so they get -Isrc but not the core's -nostdinc.
# The top Makefile's `bench-engine` target should depend on bench-engine-run.

# Callgrind client requests (instrumentation off during set-up) when
# valgrind's headers are installed; without them callgrind still works,
# only slower (scripts/bench-engine notices an empty profile).
BENCH_CALLGRIND := $(if $(wildcard /usr/include/valgrind/callgrind.h),-DHAVE_CALLGRIND_H)
BENCH_CFLAGS := $(CSTD) $(WARN) $(REPRO) -g -O2 $(BENCH_CALLGRIND)
BENCH_LIB    := $(BUILD)/host/libcore.a

.PHONY: bench-engine-run

$(BUILD)/bench_engine: bench/engine/bench_engine.c $(BENCH_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -Isrc -MMD -MP $< $(BENCH_LIB) -o $@

$(BUILD)/bench_conntrack: bench/engine/bench_conntrack.c $(BENCH_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -Isrc -MMD -MP $< $(BENCH_LIB) -o $@

bench-engine-run: $(BUILD)/bench_engine $(BUILD)/bench_conntrack
	@./scripts/bench-engine
