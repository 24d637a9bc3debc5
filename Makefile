# tinyc: `make test` and `make demo` set up everything they need on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
APT_PACKAGES := gcc make gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
STAMP  := $(VENV)/.tinyc-installed
JOBS   ?= 2
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all setup system-deps test test-fast test-board demo benchmarks clean

all: test

# System packages: installed only when a tool is missing (apt-get is slow even when idle).
system-deps:
	@missing=""; \
	for t in gcc arm-none-eabi-gcc qemu-system-arm; do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	[ -f /usr/lib/arm-none-eabi/newlib/libc.a ] || [ -d /usr/lib/arm-none-eabi/newlib ] || missing="$$missing newlib"; \
	if [ -n "$$missing" ]; then \
	  echo "tinyc: installing system packages (missing:$$missing)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi

$(STAMP): pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	@touch $@

setup: system-deps $(STAMP)

test: setup
	$(PY) -m pytest -q -n $(JOBS) tests

test-fast: setup
	$(PY) -m pytest -q -n $(JOBS) -m "not board and not slow" tests

test-board: setup
	$(PY) -m pytest -q -m board tests

demo: setup
	$(PY) examples/person_detection/demo.py

benchmarks: setup
	$(PY) benchmarks/memory.py

clean:
	rm -rf out build .pytest_cache
