# focal: `make book` runs every chapter and builds the HTML book; `make test` runs everything CI checks.
# Both set up what they need on a fresh clone (a virtual environment in .venv, Debian's Fashion-MNIST and Chromium
# when run as root on Debian, MathJax for offline math) and are quick when it is already there.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.focal-installed
# The oldest torch/torchvision/numpy/tqdm pyproject.toml allows, pinned in one file; `make test-oldest` tests the losses there.
OLDEST_VENV ?= .venv-oldest
OLDEST_STAMP := $(OLDEST_VENV)/.focal-installed
LOSS_TESTS := tests/test_losses_softmax.py tests/test_losses_sigmoid.py tests/test_losses_kernels.py
PROFILE ?=
REPOSITORY_URL ?=
CHAPTER ?=
MATHJAX := book/_extra/mathjax/tex-svg.js
MATHJAX_VERSION := 3.2.2
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: setup system-deps test test-fast test-oldest book chapter lab bench data clean help

help:
	@echo "make book   run every chapter (PROFILE=smoke|cpu|gpu, default: gpu with CUDA and CIFAR, else cpu) and build _build/html"
	@echo "             REPOSITORY_URL=https://github.com/OWNER/REPO adds repository and Binder buttons to every chapter"
	@echo "make chapter CHAPTER=04 [PROFILE=...]  execute just that chapter (a file name or its prefix) and re-render the book"
	@echo "make lab    register this environment as the Jupyter kernel 'focal' and open the notebooks in JupyterLab"
	@echo "make test   everything CI checks: unit tests, doctests, every notebook at the smoke profile, the book build"
	@echo "make bench  loss benchmarks (benchmarks/loss.py) and the training-pipeline benchmark (benchmarks/train.py)"
	@echo "make data   download CIFAR-10/100 for the gpu profile (offline: unpack the two archives copied into the data root)"
	@echo "make test-oldest  the loss tests on the oldest torch focal supports (constraints-oldest.txt), in $(OLDEST_VENV)"

setup: $(STAMP) $(MATHJAX) system-deps

# The exact versions the book is built and tested with: constraints.txt (CI, environment.yml and Pages use it too).
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || { $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "make: $(PYTHON) is not Python 3.11, which constraints.txt pins for; run make PYTHON=python3.11 ..."; exit 2; }; \
		$(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

# The losses on the lower bounds: focal without its dependencies' newest versions (the engine only for the fixtures).
$(OLDEST_STAMP): pyproject.toml constraints-oldest.txt
	@test -x $(OLDEST_VENV)/bin/python || $(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet -r constraints-oldest.txt
	$(OLDEST_VENV)/bin/python -m pip install --quiet --no-deps -e .
	@touch $@

test-oldest: $(OLDEST_STAMP)
	$(OLDEST_VENV)/bin/python -m pytest -p no:cacheprovider $(LOSS_TESTS)

# Debian packages: the Fashion-MNIST images (the CPU profile's data), Chromium (the book's browser test) and
# ShellCheck (actionlint checks the workflows' shell steps with it).
system-deps:
	@if [ -f $(FASHION_MNIST) ] && command -v chromium >/dev/null && command -v shellcheck >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing dataset-fashion-mnist, chromium and shellcheck with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist chromium shellcheck >/dev/null; \
	else \
		echo "note: install Debian's dataset-fashion-mnist, chromium and shellcheck (or pass --download / skip the browser test)"; \
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
	$(BIN)/python -m focal.book build $(if $(PROFILE),--profile $(PROFILE)) $(if $(REPOSITORY_URL),--repository-url $(REPOSITORY_URL))
	@echo "open _build/html/index.html"

ifneq ($(filter chapter,$(MAKECMDGOALS)),)
ifeq ($(CHAPTER),)
$(error CHAPTER must name a chapter, e.g. make chapter CHAPTER=04)
endif
endif

chapter: setup
	$(BIN)/python -m focal.book build --only $(CHAPTER) --force $(if $(PROFILE),--profile $(PROFILE)) $(if $(REPOSITORY_URL),--repository-url $(REPOSITORY_URL))

# CIFAR-10 and CIFAR-100 for the gpu profile, checked against torchvision's MD5 sums (make book does the same first).
data: setup
	$(BIN)/python -m focal data

lab: setup
	$(BIN)/python -m focal.book lab

bench: setup
	$(BIN)/python benchmarks/loss.py
	$(BIN)/python benchmarks/train.py

clean:
	rm -rf _build .pytest_cache
