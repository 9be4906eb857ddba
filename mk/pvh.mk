# mk/pvh.mk — the Xen PVH unikernel image (included by the top Makefile).
#
#   make build/qubes-firewall.xen   the stripped image (+ .debug, SHA-256)
#   make repro-check                builds twice in two fresh copies, compares
#
# The image is src/pvh (boot, CPU, Xen platform) linked with the portable
# core (src/base src/net src/fw src/xen src/qubes src/app) as an archive:
# only what the platform references is pulled in, and --gc-sections drops
# unused functions. Linked at physical 1 MiB, identity-mapped (spec §1.1).
# Reproducible: no timestamps, no build id, sorted inputs, source paths
# mapped to ".", deterministic archives.

PVH_CC      ?= gcc
OBJCOPY     ?= objcopy
FW_VERSION  ?= 0.1.0-dev
# Test builds only (tests/xen): e.g. -DPVH_TEST_FAULT to exercise the
# exception reporter. Empty for every real image.
PVH_EXTRA_CFLAGS ?=
PVH_BUILD   := $(BUILD)/pvh
PVH_IMAGE   := $(BUILD)/qubes-firewall.xen
PVH_LDS     := src/pvh/kernel.ld

PVH_C_SRC   := $(sort $(wildcard src/pvh/*.c))
PVH_S_SRC   := $(sort $(wildcard src/pvh/*.S))
PVH_OBJ     := $(patsubst src/%.S,$(PVH_BUILD)/src/%.o,$(PVH_S_SRC)) \
               $(patsubst src/%.c,$(PVH_BUILD)/src/%.o,$(PVH_C_SRC))
PVH_CORE_OBJ := $(patsubst src/%.c,$(PVH_BUILD)/src/%.o,$(CORE_SRC))

# -mgeneral-regs-only: no SSE/x87 anywhere, so interrupt entry never has to
# save FPU state (spec §1.4 step 10). -mno-red-zone: interrupts and the
# hypercall `call` push onto the stack below %rsp.
PVH_ARCH    := -m64 -mno-red-zone -mgeneral-regs-only -mcmodel=small -fno-pic -fno-pie \
               -fno-stack-protector -fno-asynchronous-unwind-tables -fno-unwind-tables \
               -fcf-protection=none -fno-common
PVH_REPRO   := -ffile-prefix-map=$(CURDIR)=. -fdebug-prefix-map=$(CURDIR)=.
PVH_CFLAGS  := $(CSTD) $(WARN) $(PVH_REPRO) -g -O2 -fno-omit-frame-pointer \
               -ffunction-sections -fdata-sections $(CORE_INC) $(PVH_ARCH) \
               -DFW_FREESTANDING -DFW_VERSION='"$(FW_VERSION)"' $(PVH_EXTRA_CFLAGS)
PVH_ASFLAGS := $(PVH_REPRO) -g -m64 -nostdinc -Isrc -D__ASSEMBLY__ -Wa,--noexecstack
PVH_LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-T,$(PVH_LDS) \
               -Wl,--gc-sections -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack \
               -Wl,--no-undefined -Wl,--sort-section=name

.PHONY: repro-check

$(PVH_BUILD)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(PVH_CC) $(PVH_CFLAGS) -MMD -MP -c $< -o $@

$(PVH_BUILD)/src/pvh/%.o: src/pvh/%.S
	@mkdir -p $(dir $@)
	$(PVH_CC) $(PVH_ASFLAGS) -MMD -MP -c $< -o $@

$(PVH_BUILD)/libcore.a: $(PVH_CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcD $@ $^

$(PVH_BUILD)/qubes-firewall.elf: $(PVH_OBJ) $(PVH_BUILD)/libcore.a $(PVH_LDS)
	$(PVH_CC) $(PVH_LDFLAGS) $(PVH_OBJ) $(PVH_BUILD)/libcore.a -o $@

$(PVH_IMAGE): $(PVH_BUILD)/qubes-firewall.elf
	$(OBJCOPY) --only-keep-debug $< $@.debug
	$(OBJCOPY) --strip-all --add-gnu-debuglink=$@.debug $< $@
	@size=$$(stat -c %s $@); echo "$@: $$size bytes"; \
	    if [ $$size -ge 524288 ]; then echo "$@: larger than 512 KiB"; exit 1; fi
	@sha256sum $@

# Two builds from two fresh copies of the sources, at paths of different
# lengths, must give the same bytes (image and debug file).
repro-check:
	@set -e; \
	a=$$(mktemp -d /tmp/fw-repro-a.XXXXXX); b=$$(mktemp -d /tmp/fw-repro-bb.XXXXXXXXXX); \
	trap 'rm -rf "$$a" "$$b"' EXIT; \
	for d in "$$a" "$$b"; do \
	    cp -r Makefile mk src "$$d"/; \
	    if ! $(MAKE) --no-print-directory -C "$$d" BUILD=build build/qubes-firewall.xen \
	        >"$$d/build.log" 2>&1; then cat "$$d/build.log"; exit 1; fi; \
	done; \
	for f in qubes-firewall.xen qubes-firewall.xen.debug; do \
	    if ! cmp "$$a/build/$$f" "$$b/build/$$f"; then \
	        echo "repro-check: $$f differs between two builds"; exit 1; fi; \
	done; \
	echo "repro-check: identical builds, sha256 $$(sha256sum < "$$a/build/qubes-firewall.xen" | cut -d' ' -f1)"
