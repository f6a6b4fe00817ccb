# Two commands: `make demo` runs the whole path on the CPU, `make test` runs the tests.
# Each sets up what it needs: a virtualenv in .venv with edgekit and its desktop extras.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edgekit-installed
# torch is pinned: an unpinned install pulls several GB. 2.14.1 + torchvision 0.29.1 is the
# pair that imports together on x86_64 (see README, "Installing").
TORCH  ?= torch==2.14.1 torchvision==0.29.1
OUT    ?= runs/demo

.PHONY: demo test test-fast bench lint venv clean help

help:
	@echo "make demo   - dataset -> train -> export -> quantize -> profile -> serve, on the CPU (runs/demo)"
	@echo "make test   - the whole test suite"
	@echo "make bench  - speed and accuracy benchmarks (ratios measured in one run)"
	@echo "make lint   - ruff, and vermin on the device side"

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[train,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edgekit demo --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check edgekit tests benchmarks
	$(BIN)/vermin --target=3.6- --no-tips --violations --exclude-regex 'edgekit/desktop/.*' edgekit

clean:
	rm -rf $(VENV) runs .pytest_cache
