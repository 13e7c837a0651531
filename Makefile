# focal: `make book` runs every chapter and builds the HTML book; `make test` runs everything CI checks.
# Both set up what they need on a fresh clone (a virtual environment in .venv, Debian's Fashion-MNIST and Chromium
# when run as root on Debian, MathJax for offline math) and are quick when it is already there.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.focal-installed
PROFILE ?=
MATHJAX := book/_extra/mathjax/tex-svg.js
MATHJAX_VERSION := 3.2.2
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: setup system-deps test test-fast book bench clean help

help:
	@echo "make book   run every chapter (PROFILE=smoke|cpu|gpu, default: gpu with CUDA and CIFAR, else cpu) and build _build/html"
	@echo "make test   everything CI checks: unit tests, doctests, every notebook at the smoke profile, the book build"
	@echo "make bench  loss benchmarks (benchmarks/loss.py) and the training-pipeline benchmark (benchmarks/train.py)"

setup: $(STAMP) $(MATHJAX) system-deps

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# Debian packages: the Fashion-MNIST images (the CPU profile's data) and Chromium (the book's browser test).
system-deps:
	@if [ -f $(FASHION_MNIST) ] && command -v chromium >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing dataset-fashion-mnist and chromium with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist chromium >/dev/null; \
	else \
		echo "note: install Debian's dataset-fashion-mnist and chromium (or pass --download / skip the browser test)"; \
	fi

# MathJax 3's self-contained SVG build, bundled with the book so that math renders offline.
$(MATHJAX):
	@mkdir -p $(dir $@)
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null && \
		tar -xzf mathjax-$(MATHJAX_VERSION).tgz package/es5/tex-svg.js && \
		cp package/es5/tex-svg.js $(CURDIR)/$@ && rm -rf $$tmp
	@echo "bundled MathJax $(MATHJAX_VERSION) at $@"

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow" --deselect tests/test_book_build.py

book: setup
	$(BIN)/python -m focal.book build $(if $(PROFILE),--profile $(PROFILE))
	@echo "open _build/html/index.html"

bench: setup
	$(BIN)/python benchmarks/loss.py
	$(BIN)/python benchmarks/train.py

clean:
	rm -rf _build .pytest_cache
