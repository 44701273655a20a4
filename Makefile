# kasa — one build for the service, its tools, simulators, tests and benchmarks.
#   make          build build/kasa (optimised)
#   make test     build everything with AddressSanitizer + UBSan and run every test
#   make bench    build optimised benchmarks and print their figures
#   make run      start kasa with the Cobo, MT5 and Telegram simulators on loopback
#   make fuzz     build the libFuzzer targets with clang and run each for FUZZ_SECONDS (default 60)
#   make deps     install the Debian packages kasa needs (non-interactive)
#   make install  PREFIX=/usr/local [DESTDIR=...]: the binary, the panel, the service files

DEB_PKGS := build-essential pkg-config libzmq3-dev libczmq-dev libcurl4-openssl-dev libmongoc-dev \
            libbson-dev libmsgpack-dev libssl-dev libmicrohttpd-dev libqrencode-dev libsodium-dev \
            wrk chromium curl procps nginx-light openssl
PKGS     := libczmq libzmq libcurl libbson-1.0 libmongoc-1.0 msgpack libssl libcrypto libmicrohttpd libqrencode libsodium

CC       ?= cc
WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter -Wvla
BASE     := -std=c11 -D_GNU_SOURCE -I. -pthread -g $(WARN)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

MODE     ?= release
ifeq ($(MODE),san)
  OUT    := build/san$(BUILD_TAG)
  CFLAGS_MODE := -O1 $(SAN)
  LDFLAGS_MODE := $(SAN)
else
  OUT    := build/release$(BUILD_TAG)
  CFLAGS_MODE := -O2
  LDFLAGS_MODE :=
endif

LIB_SRC   := $(sort $(wildcard journal/*.c schema/*.c actors/*.c web/*.c)) $(filter-out tools/main.c,$(sort $(wildcard tools/*.c tools/sim/*.c)))
LIB_OBJ   := $(LIB_SRC:%.c=$(OUT)/obj/%.o)
TEST_SRC  := $(sort $(wildcard tests/unit/test_*.c tests/integration/test_*.c))
TEST_BIN  := $(TEST_SRC:tests/%.c=$(OUT)/tests/%)
BENCH_SRC := $(sort $(wildcard tests/bench/bench_*.c))
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(OUT)/bench/%)
HDRS      := $(wildcard journal/*.h schema/*.h actors/*.h web/*.h tools/*.h tools/sim/*.h tests/*.h tests/unit/*.h tests/integration/*.h tests/fuzz/*.h)

# Fuzzing (make fuzz): Debian's clang and its compiler-rt (libFuzzer), installed only when fuzzing.
FUZZ_PKGS    := clang libclang-rt-dev
FUZZ_CC      := clang
FUZZ_SECONDS ?= 60
FUZZ_RUNS    ?= -1
FUZZ_NICE    ?= 19
FUZZ_OUT     := build/fuzz$(BUILD_TAG)
FUZZ_WARN    := -Wno-error -Wno-missing-field-initializers   # clang warns where gcc (CI, -Werror) does not
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_OUT)/%)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_OUT)/obj/%.o)

.PHONY: all build deps deps-check test bench bench-build bench-deps run run-cluster clean tests-build npm-deps install fuzz fuzz-build fuzz-deps
.DEFAULT_GOAL := all

all: deps-check
	@$(MAKE) --no-print-directory MODE=release build
	@ln -sf release/kasa build/kasa

build: $(OUT)/kasa

$(OUT)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "cc $<"; $(CC) $(BASE) $(CFLAGS_MODE) $(PKG_CFLAGS) -c $< -o $@

$(OUT)/libkasa.a: $(LIB_OBJ)
	@rm -f $@; ar rcs $@ $^

$(OUT)/kasa: $(OUT)/obj/tools/main.o $(OUT)/libkasa.a
	@echo "ld $@"; $(CC) $(LDFLAGS_MODE) -pthread -o $@ $^ $(PKG_LIBS) -lm

$(OUT)/tests/%: tests/%.c $(OUT)/libkasa.a $(HDRS)
	@mkdir -p $(dir $@)
	@echo "cc $<"; $(CC) $(BASE) $(CFLAGS_MODE) $(PKG_CFLAGS) $(LDFLAGS_MODE) -o $@ $< $(OUT)/libkasa.a $(PKG_LIBS) -lm

$(OUT)/bench/%: tests/bench/%.c $(OUT)/libkasa.a $(HDRS)
	@mkdir -p $(dir $@)
	@echo "cc $<"; $(CC) $(BASE) $(CFLAGS_MODE) $(PKG_CFLAGS) $(LDFLAGS_MODE) -o $@ $< $(OUT)/libkasa.a $(PKG_LIBS) -lm

tests-build: $(OUT)/kasa $(TEST_BIN)

# The replay test runs every fuzz target over its corpus and regressions (gcc, no clang needed).
$(OUT)/tests/unit/test_fuzz_replay: $(FUZZ_SRC)

# Install missing Debian packages, non-interactively. Quiet when all are present.
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	else echo "deps: all Debian packages present"; fi; \
	if ! command -v npm >/dev/null 2>&1; then \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q nodejs npm; fi

deps-check:
	@for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || { $(MAKE) --no-print-directory deps; exit 0; }; done; \
	command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory deps

npm-deps: deps-check
	@cd tests/browser && { { [ -d node_modules/playwright-core ] && [ -d node_modules/jsqr ]; } || npm install --no-audit --no-fund --loglevel=error; }
	@cd tests/mongo && { [ -d node_modules/@push.rocks/smartmongo ] || npm ci --no-audit --no-fund --loglevel=error; }

# The tests: every test under ASan + UBSan, then one closing line "N passed, N failed".
test: deps-check
	@$(MAKE) --no-print-directory MODE=san tests-build
	@$(MAKE) --no-print-directory npm-deps
	@tests/run.sh build/san

bench-build: $(OUT)/kasa $(BENCH_BIN)

# The side-by-side figure's peer (tests/bench/peer_ingest.py) runs on Debian's Python packages,
# installed here when missing (only here: `make test` needs none of them).
BENCH_PKGS := python3-fastapi python3-uvicorn python3-nacl
bench-deps:
	@missing=""; for p in $(BENCH_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; fi

bench: deps-check bench-deps
	@$(MAKE) --no-print-directory MODE=release bench-build
	@tests/bench/run.sh build/release

run: all
	@tools/run.sh build/release/kasa

# Three nodes in cluster mode behind Debian's nginx, on the tests' MongoDB wire server (README "Cluster").
run-cluster: all
	@cd tests/mongo && { [ -d node_modules/@push.rocks/smartmongo ] || npm ci --no-audit --no-fund --loglevel=error; }
	@tools/run_cluster.sh build/release/kasa

# The binary, the panel's files, the README, and the service files (tools/deploy/): the systemd unit and
# its sysusers entry where systemd looks under PREFIX; nginx, PM2, logrotate and the example
# configuration under share/kasa/deploy/ for an administrator to copy into /etc.
PREFIX  ?= /usr/local
DESTDIR ?=
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/kasa/static $(DESTDIR)$(PREFIX)/share/kasa/deploy \
	    $(DESTDIR)$(PREFIX)/share/doc/kasa $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/lib/sysusers.d
	install -m 755 build/release/kasa $(DESTDIR)$(PREFIX)/bin/kasa
	cp -R web/static/. $(DESTDIR)$(PREFIX)/share/kasa/static/
	sed 's#@PREFIX@#$(PREFIX)#g' tools/deploy/kasa.service > $(DESTDIR)$(PREFIX)/lib/systemd/system/kasa.service
	install -m 644 tools/deploy/kasa.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/kasa.conf
	sed 's#/usr/local#$(PREFIX)#g' tools/deploy/ecosystem.config.js > $(DESTDIR)$(PREFIX)/share/kasa/deploy/ecosystem.config.js
	install -m 644 tools/deploy/nginx-kasa.conf tools/deploy/kasa.logrotate tools/kasa.env.example \
	    $(DESTDIR)$(PREFIX)/share/kasa/deploy/
	install -m 644 README.md $(DESTDIR)$(PREFIX)/share/doc/kasa/README.md

# ---- fuzzing: clang + libFuzzer, ASan + UBSan; not part of `make test` -------------------------

fuzz-deps:
	@missing=""; for p in $(FUZZ_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; fi

$(FUZZ_OUT)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "clang $<"; $(FUZZ_CC) $(BASE) $(FUZZ_WARN) -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN) $(PKG_CFLAGS) -c $< -o $@

$(FUZZ_OUT)/libkasa.a: $(FUZZ_LIB_OBJ)
	@rm -f $@; ar rcs $@ $^

$(FUZZ_OUT)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OUT)/libkasa.a $(HDRS)
	@mkdir -p $(dir $@)
	@echo "clang $<"; $(FUZZ_CC) $(BASE) $(FUZZ_WARN) -O1 -fsanitize=fuzzer $(FUZZ_SAN) $(PKG_CFLAGS) -o $@ $< $(FUZZ_OUT)/libkasa.a $(PKG_LIBS) -lm

fuzz-build: deps-check fuzz-deps
	@$(MAKE) --no-print-directory $(FUZZ_BIN)

# Each target for FUZZ_SECONDS (nice -n FUZZ_NICE, default 19), one after another; a crash stops with its input saved.
fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_NICE=$(FUZZ_NICE) tests/fuzz/run.sh $(FUZZ_OUT) $(FUZZ)

clean:
	rm -rf build
