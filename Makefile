# dotproxy - the one place build flags live.
#   make            build/dotproxy
#   make check      install what tests need, unit tests (ASan+UBSan), fuzz smoke, end-to-end tests
#   make unit       unit tests only          make fuzz   libFuzzer target, bounded run
#   make demo       the netns lab, as a person would see it
#   make bench      dotproxy against other DoT forwarders (bench/results/RESULTS.md)
#   make deps       install build and test packages (Debian 12, as root)
#   make install    the daemon, rules script, man page, sample config and systemd unit
#                   (PREFIX, DESTDIR, SBINDIR, MANDIR, SYSCONFDIR, UNITDIR); make uninstall

CC      ?= cc
CLANG   ?= clang
BUILD   := build
PKGS    := openssl libnetfilter_queue libmnl
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Werror
HARDEN  := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_DEFAULT_SOURCE $(WARN) $(HARDEN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS += -pie -Wl,-z,relro,-z,now
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lssl -lcrypto -lnetfilter_queue -lmnl)

SRCS    := $(wildcard src/*.c)
OBJS    := $(SRCS:src/%.c=$(BUILD)/obj/%.o)
LIBOBJS := $(filter-out $(BUILD)/obj/main.o,$(OBJS))

# unit tests: every module's suite, built with the sanitizers
SAN       := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
UNIT_SRCS := $(wildcard tests/unit/check_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
SAN_OBJS  := $(filter-out $(BUILD)/san/main.o,$(SRCS:src/%.c=$(BUILD)/san/%.o))
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt -lpthread)

# fuzz targets: tests/fuzz/fuzz_NAME.c over the corpus tests/fuzz/corpus/NAME,
# linked against the daemon's objects built for libFuzzer
FUZZ_SECONDS ?= 20
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_OBJS := $(filter-out $(BUILD)/fuzzobj/main.o,$(SRCS:src/%.c=$(BUILD)/fuzzobj/%.o))
FUZZ_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=all

.PHONY: all check unit fuzz fuzz-run e2e demo deps clean bench install uninstall
all: $(BUILD)/dotproxy

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)/obj
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/dotproxy: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/san/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)/san
	$(CC) -std=c11 -D_DEFAULT_SOURCE -O1 -g $(WARN) $(SAN) -c -o $@ $<

# A suite may #include the module it tests (to reach static functions) or
# define stand-ins for a neighbour: objects come from an archive, so only
# what the suite leaves undefined is linked in.
$(BUILD)/libdotproxy-san.a: $(SAN_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/libdotproxy-san.a $(wildcard src/*.h tests/unit/*.h) | $(BUILD)/unit
	$(CC) -std=c11 -D_DEFAULT_SOURCE -O1 -g -Isrc $(SAN) -Wall -Wextra -Werror -o $@ $< \
		$(BUILD)/libdotproxy-san.a $(CHECK_LIBS) $(LDLIBS)

$(BUILD)/obj $(BUILD)/san $(BUILD)/unit $(BUILD)/fuzz $(BUILD)/fuzzobj:
	mkdir -p $@

deps:
	tests/install-deps.sh

unit: $(UNIT_BINS)
	tests/run.sh unit $(UNIT_BINS)

# libFuzzer: every target for a short bounded run from its seed corpus
$(BUILD)/fuzzobj/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)/fuzzobj
	$(CLANG) -std=c11 -D_DEFAULT_SOURCE -O1 -g $(WARN) -fsanitize=fuzzer-no-link $(FUZZ_SAN) \
		$(shell pkg-config --cflags $(PKGS) 2>/dev/null) -c -o $@ $<

$(BUILD)/libdotproxy-fuzz.a: $(FUZZ_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/libdotproxy-fuzz.a | $(BUILD)/fuzz
	$(CLANG) -std=c11 -D_DEFAULT_SOURCE -O1 -g -Isrc -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< \
		$(BUILD)/libdotproxy-fuzz.a $(LDLIBS)

fuzz: $(FUZZ_BINS)
	tests/run.sh fuzz $(FUZZ_SECONDS) $(FUZZ_BINS)

e2e: $(BUILD)/dotproxy
	tests/run.sh e2e

# everything, after installing what it needs; one summary line at the end
check: deps
	$(MAKE) all $(UNIT_BINS) $(FUZZ_BINS)
	tests/run.sh all

demo: deps
	$(MAKE) all
	tests/demo.sh

# dotproxy against Unbound, dnsdist and stubby over DoT in the netns lab (bench/run.sh, about
# 10 minutes); results in bench/results/ (RESULTS.md, runs.tsv, bench.png). BENCH_ARGS passes
# options, e.g. make bench BENCH_ARGS="--rounds 1 --only dotproxy-tproxy,unbound"
bench: deps
	$(MAKE) all
	BENCH_VIA="make bench" bench/run.sh $(BENCH_ARGS)

# make install: DESTDIR is a staging root (packages, the Dockerfile): then no user is created
# and nothing is chowned. Configuration files already there are never overwritten.
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
INSTALL    ?= install
# the unit names the packaged paths (/usr/sbin, /etc): point them where these files go
UNIT_SED   := -e 's|/usr/sbin/dotproxy|$(SBINDIR)/dotproxy|g' -e 's|/etc/dotproxy/|$(SYSCONFDIR)/dotproxy/|g' \
	      -e 's|/etc/default/dotproxy|$(SYSCONFDIR)/default/dotproxy|g'

install: $(BUILD)/dotproxy
	$(INSTALL) -d -m 755 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/dotproxy $(DESTDIR)$(SYSCONFDIR)/default
	$(INSTALL) -m 755 $(BUILD)/dotproxy $(DESTDIR)$(SBINDIR)/dotproxy
	$(INSTALL) -m 755 iptables/dotproxy-rules $(DESTDIR)$(SBINDIR)/dotproxy-rules
	$(INSTALL) -m 644 deploy/dotproxy.8 $(DESTDIR)$(MANDIR)/man8/dotproxy.8
	sed $(UNIT_SED) deploy/dotproxy.service >$(BUILD)/dotproxy.service
	$(INSTALL) -m 644 $(BUILD)/dotproxy.service $(DESTDIR)$(UNITDIR)/dotproxy.service
	@if [ -z "$(DESTDIR)" ] && ! id -u dotproxy >/dev/null 2>&1; then \
		echo "useradd --system --no-create-home --shell /usr/sbin/nologin dotproxy"; \
		useradd --system --no-create-home --shell /usr/sbin/nologin dotproxy; \
	fi
	@set -e; conf=$(DESTDIR)$(SYSCONFDIR)/dotproxy/dotproxy.conf; \
	if [ -e "$$conf" ]; then echo "kept $$conf (the sample is deploy/dotproxy.conf)"; \
	elif [ -z "$(DESTDIR)" ]; then $(INSTALL) -m 640 -o root -g dotproxy deploy/dotproxy.conf "$$conf"; \
	else $(INSTALL) -m 640 deploy/dotproxy.conf "$$conf"; fi
	@set -e; env=$(DESTDIR)$(SYSCONFDIR)/default/dotproxy; \
	if [ -e "$$env" ]; then echo "kept $$env (the sample is deploy/dotproxy.default)"; \
	else $(INSTALL) -m 644 deploy/dotproxy.default "$$env"; fi

# Removes what install added; configuration files only while they are unchanged samples.
# The dotproxy user stays (userdel dotproxy).
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/dotproxy $(DESTDIR)$(SBINDIR)/dotproxy-rules \
		$(DESTDIR)$(MANDIR)/man8/dotproxy.8 $(DESTDIR)$(UNITDIR)/dotproxy.service
	@for f in $(DESTDIR)$(SYSCONFDIR)/dotproxy/dotproxy.conf:deploy/dotproxy.conf \
		  $(DESTDIR)$(SYSCONFDIR)/default/dotproxy:deploy/dotproxy.default; do \
		if cmp -s "$${f%%:*}" "$${f#*:}"; then rm -f "$${f%%:*}"; \
		elif [ -e "$${f%%:*}" ]; then echo "kept $${f%%:*}: changed from the sample"; fi; \
	done
	rmdir $(DESTDIR)$(SYSCONFDIR)/dotproxy 2>/dev/null || true

clean:
	rm -rf $(BUILD)
