# Two commands: `make demo` runs the whole path on the CPU, `make test` runs the tests.
# Each sets up what it needs: a virtualenv in .venv with edgekit, its desktop extras and the docs tools.
# `make docs` serves the documentation site (docs/, mkdocs.yml) on http://127.0.0.1:8000/.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edgekit-installed
# torch is pinned: an unpinned install pulls several GB. 2.14.1 + torchvision 0.29.1 is the
# pair that imports together on x86_64 (see docs/install.md).
TORCH  ?= torch==2.14.1 torchvision==0.29.1
OUT    ?= runs/demo
# Peers the tests and benchmarks compare against or export from (Ultralytics YOLO/RT-DETR for the decoder
# format tests, Roboflow's trackers for bench_tracking), installed with --no-deps: their requirements
# would replace the pinned torch and the headless OpenCV. What they import besides is pinned here.
PEERS  ?= ultralytics==8.4.190 ultralytics-thop==2.2.3 polars==2.1.0 polars-runtime-32==2.1.0 \
          trackers==2.6.1 supervision==0.31.2
PEER_DEPS ?= rich==15.0.0 pydeprecate==0.13.0 defusedxml==0.7.1

.PHONY: demo test test-fast test-py36 check-pycuda-build bench lint docs venv clean help

help:
	@echo "make demo   - dataset -> train -> export -> quantize -> profile -> serve, on the CPU (runs/demo)"
	@echo "make test   - the whole test suite (includes test-py36 when Python 3.6 is here)"
	@echo "make test-py36 - pip install . into a Python 3.6 venv and run the device-side tests there"
	@echo "make bench  - speed and accuracy benchmarks (ratios measured in one run)"
	@echo "make lint   - ruff, and vermin on the device side"
	@echo "make docs   - serve the documentation site on http://127.0.0.1:8000/ (mkdocs serve)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[train,dev,docs,analytics-eval]'
	$(BIN)/python -m pip install -q --no-deps $(PEERS)
	$(BIN)/python -m pip install -q $(PEER_DEPS)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edgekit demo --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# The device side on a real CPython 3.6 (JetPack 4.6's Python), installed the board's way:
# pip 21.3.1 builds edgekit with flit_core from pyproject.toml and resolves the base
# dependencies' open ranges to the newest releases that still support 3.6 (numpy 1.19.5,
# paho-mqtt 1.6.1, PyYAML 6.0.1, opencv-python-headless 4.6.0.66: pyproject caps OpenCV below 4.7
# on 3.6, whose newer releases ship no 3.6 wheels). --prefer-binary keeps the test tools off sdists.
# Test tools are pinned to the last releases for 3.6; onnx builds the tests' tiny models,
# matplotlib is what `edgekit profile --plot` imports (python3-matplotlib on the board).
# tests/test_python36.py runs this target inside `make test`.
PY36        ?= /root/.pyenv/versions/3.6.15/bin/python3.6
PY36_VENV   ?= .venv-py36
PY36_BIN    := $(PY36_VENV)/bin
PY36_STAMP  := $(PY36_VENV)/.edgekit-installed
PY36_PIP    := $(PY36_BIN)/python -m pip --disable-pip-version-check -q
PY36_TOOLS  := pytest==7.0.1 onnxruntime==1.10.0 onnx==1.11.0 'matplotlib<3.4'
PY36_SOURCES := $(shell find edgekit -name '*.py' -not -path 'edgekit/desktop/*')
# Device-side test files only (tests that drive edgekit.desktop, torch, vermin or flit_core
# stay in the main tier). Deselected: the TensorRT 10 stand-in parses an opset-17 model with
# the installed onnxruntime, and 1.10 reads opset <= 15; the vermin check runs in the main tier.
PY36_TESTS  := tests/test_meta.py tests/test_targets.py tests/test_inputsize.py tests/test_cli.py tests/test_cli_flags.py \
	tests/test_fsutil.py tests/test_registry.py tests/test_doctor.py tests/test_fleet.py tests/test_docs.py \
	tests/vision tests/runners tests/sources tests/service tests/engine \
	tests/profiler --ignore=tests/profiler/test_estimate.py \
	tests/analytics --ignore=tests/analytics/test_tracking_eval.py tests/recordings \
	tests/bundle/test_bundle_verify.py tests/bundle/test_bundle_safety.py \
	tests/bundle/test_bundle_install.py tests/bundle/test_bundle_engine_standin.py \
	tests/jetson/test_board_path.py tests/jetson/test_board_env.py \
	--deselect tests/engine/test_build_standin.py::test_tensorrt_82_parses_a_newer_opset_when_it_has_the_operators \
	--deselect tests/engine/test_build_jetson_suite.py::test_jetson_python_files_are_python36

$(PY36_STAMP): pyproject.toml $(PY36_SOURCES)
	@test -x $(PY36) || { echo "no Python 3.6 at $(PY36) (set PY36=...)"; exit 1; }
	test -x $(PY36_BIN)/python || $(PY36) -m venv $(PY36_VENV)
	$(PY36_PIP) install pip==21.3.1
	$(PY36_PIP) install .
	$(PY36_PIP) install --prefer-binary $(PY36_TOOLS)
	$(PY36_PIP) check
	cd / && $(abspath $(PY36_BIN))/edgekit --help >/dev/null && $(abspath $(PY36_BIN))/edgekit serve --help >/dev/null
	touch $(PY36_STAMP)

# jetson/setup.sh's pycuda steps on the real CPython 3.6 (PY36), built against this machine's CUDA headers
# up to the link against libcuda (minutes; sources from PyPI). tests/jetson/test_pycuda_build.py says how far.
check-pycuda-build:
	EDGEKIT_PYCUDA_BUILD=1 PY36=$(PY36) $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/jetson/test_pycuda_build.py

test-py36: $(PY36_STAMP)
	$(PY36_BIN)/python -m pytest -q -p no:cacheprovider -W ignore::pytest.PytestConfigWarning \
		-m "not jetson and not system_python" $(PY36_TESTS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# tests/test_docs.py runs `mkdocs build --strict` inside `make test`.
docs: $(STAMP)
	$(BIN)/python -m mkdocs serve

lint: $(STAMP)
	$(BIN)/ruff check edgekit tests benchmarks
	$(BIN)/vermin --target=3.6- --no-tips --violations --exclude-regex 'edgekit/desktop/.*' edgekit

clean:
	rm -rf $(VENV) $(PY36_VENV) runs .pytest_cache
