"""On-device suite (marker ``jetson``): runs on a Jetson with TensorRT and pycuda, via jetson/selftest.

Elsewhere every test is collected and skipped with the reason. With EDGEKIT_SELFTEST_STANDIN=1 the
suite runs against the STAND-INS of tests/standins instead (to test the suite's own code here):
such a run says nothing about hardware, and the report says so.
"""

import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ASSETS = os.path.join(os.path.dirname(HERE), "assets")
STANDIN = os.environ.get("EDGEKIT_SELFTEST_STANDIN") == "1"

sys.path.insert(0, os.path.dirname(HERE))          # camera_check


def missing_backend():
    """Why TensorRT cannot run here, or None."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "no TensorRT Python bindings here (python3-libnvinfer)"
    from edgekit.engine import cuda_api

    if not cuda_api.available():
        return "no pycuda here (jetson/setup.sh builds it)"
    return None


_patch = None


def pytest_configure(config):
    global _patch
    if STANDIN:
        sys.path.insert(0, os.path.join(REPO, "tests"))
        from standins import install

        _patch = pytest.MonkeyPatch()
        install(_patch, api=os.environ.get("EDGEKIT_SELFTEST_STANDIN_API", "8.2"))


def pytest_unconfigure(config):
    if _patch is not None:
        _patch.undo()


def pytest_collection_modifyitems(config, items):
    reason = missing_backend()
    if reason:
        skip = pytest.mark.skip(reason="on-device test: %s; run jetson/selftest on a Jetson" % reason)
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def report():
    """A dict the tests fill with figures; written as JSON to $EDGEKIT_SELFTEST_REPORT at the end."""
    data = {"standin": STANDIN}
    yield data
    path = os.environ.get("EDGEKIT_SELFTEST_REPORT")
    if path:
        with open(path, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, default=str)


@pytest.fixture
def tiny():
    return os.path.join(ASSETS, "tiny.onnx")


@pytest.fixture
def tiny_dynamic():
    return os.path.join(ASSETS, "tiny_dynamic.onnx")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("engines"))
