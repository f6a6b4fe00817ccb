"""`bundle install` through the real edgekit.engine.build.build_engine, on the TensorRT / pycuda
STAND-INS (tests/standins: a simulated GPU, not TensorRT): the engine is built into the cache,
linked into the release, served from the cache on a re-install, and a build failure inside
build_engine leaves the live release in place. Not verified on hardware (jetson/selftest is)."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from standins import install as install_standin  # noqa: E402

from edgekit.bundle import current_id, install  # noqa: E402
from edgekit.errors import BundleError  # noqa: E402


@pytest.mark.parametrize("api", ["8.2", "10"])
def test_install_builds_the_engine_through_build_engine(monkeypatch, tmp_path, bundle_for, api):
    install_standin(monkeypatch, api=api)
    root, cache = tmp_path / "root", tmp_path / "engines"
    bundle = bundle_for("jetson-nano")
    first = install(bundle, str(root), cache_dir=str(cache), log=lambda m: None)
    assert first["engine_status"] == "built"
    engine = root / "current" / "model.engine"
    assert os.path.realpath(str(engine)).startswith(str(cache)) and engine.stat().st_size > 0
    sidecar = json.loads((root / "current" / "model.engine.json").read_text())
    assert sidecar["key"]["precision"] == "fp16"
    info = json.loads((root / "current" / "release.json").read_text())
    assert info["engine"]["key_hash"] == first["engine"]["key_hash"]
    again = install(bundle, str(root), cache_dir=str(cache), log=lambda m: None)
    assert again["engine_status"] == "cached" and again["reused"]


def test_a_failing_build_inside_build_engine_keeps_the_live_release(monkeypatch, tmp_path, bundle_for):
    standin = install_standin(monkeypatch, api="8.2")
    root, cache = str(tmp_path / "root"), str(tmp_path / "engines")
    live = install(bundle_for("jetson-nano", scale=1.0), root, cache_dir=cache, log=lambda m: None)

    def refuse(*args, **kwargs):
        return None              # what TensorRT returns when it cannot build the network

    monkeypatch.setattr(standin.trt.Builder, "build_serialized_network", refuse)
    with pytest.raises(BundleError, match="engine build failed for bundle .*stays live") as err:
        install(bundle_for("jetson-nano", scale=2.0), root, cache_dir=cache, log=lambda m: None)
    assert "TensorRT could not build an engine" in str(err.value)
    assert current_id(root) == live["bundle_id"]
    assert os.listdir(os.path.join(root, "releases")) == [live["bundle_id"]]
