"""Installing, rolling back and listing releases; engine builds through an injected builder."""

import json
import os

import pytest

from edgekit.bundle import current_id, install, list_releases, rollback
from edgekit.bundle.manifest import FORMAT
from edgekit.errors import BackendUnavailable, BundleError, UserError


def _current(root):
    return os.readlink(os.path.join(str(root), "current"))


@pytest.fixture
def strict_umask():
    """A root with umask 077 installs; the daemon (another user) must still read the release."""
    old = os.umask(0o077)
    yield
    os.umask(old)


class StandInRecord(object):
    """Stand-in for edgekit.engine.build.EngineRecord (C4): only the attributes install reads."""

    def __init__(self, path, built=True):
        self.path, self.key_hash, self.built, self.sidecar, self.key = path, "abc123", built, path + ".json", {}


def test_install_switches_current_and_rolls_back(bundle_for, tmp_path, strict_umask):
    root = tmp_path / "root"
    first, second = bundle_for(scale=1.0), bundle_for(scale=2.0)
    a = install(first, str(root), log=lambda m: None)
    assert a["changed"] and a["previous"] is None and a["engine_status"] == "not-needed"
    assert _current(root) == "releases/" + a["bundle_id"]
    b = install(second, str(root), log=lambda m: None)
    assert b["previous"] == a["bundle_id"] and current_id(str(root)) == b["bundle_id"]
    release = root / "current"
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["format"] == FORMAT and (release / "model.onnx").is_file()
    info = json.loads((release / "release.json").read_text())
    assert info["bundle_id"] == b["bundle_id"] and info["engine_status"] == "not-needed"
    for path in (release, release / "model.onnx", release / "release.json", root / "state.json"):
        assert os.stat(str(path)).st_mode & 0o004, path          # readable by the daemon's user
    back = rollback(str(root), log=lambda m: None)
    assert back == {"changed": True, "current": a["bundle_id"], "previous": b["bundle_id"]}
    assert _current(root) == "releases/" + a["bundle_id"]
    with pytest.raises(BundleError, match="no earlier release to roll back to"):
        rollback(str(root), log=lambda m: None)
    rows = list_releases(str(root))
    assert [r["bundle_id"] for r in rows] == [b["bundle_id"], a["bundle_id"]]
    assert [r["current"] for r in rows] == [False, True]


def test_reinstall_is_idempotent_and_reactivates(bundle_for, tmp_path):
    root = str(tmp_path / "root")
    first, second = bundle_for(scale=1.0), bundle_for(scale=2.0)
    a = install(first, root, log=lambda m: None)
    install(second, root, log=lambda m: None)
    again = install(first, root, log=lambda m: None)
    assert again["reused"] and again["changed"] and current_id(root) == a["bundle_id"]
    same = install(first, root, log=lambda m: None)
    assert same["reused"] and not same["changed"]


def test_keep_prunes_old_releases_but_never_current(bundle_for, tmp_path):
    root = str(tmp_path / "root")
    ids = [install(bundle_for(scale=s), root, keep=2, log=lambda m: None)["bundle_id"] for s in (1.0, 2.0, 3.0)]
    assert sorted(os.listdir(os.path.join(root, "releases"))) == sorted(ids[1:])
    report = install(bundle_for(scale=4.0), root, keep=1, log=lambda m: None)
    assert os.listdir(os.path.join(root, "releases")) == [report["bundle_id"]]
    assert sorted(report["removed"]) == sorted(ids[1:])
    with pytest.raises(UserError, match="--keep must be at least 1"):
        install(bundle_for(scale=5.0), root, keep=0)


def test_tensorrt_bundle_builds_its_engine_with_the_builder(bundle_for, tmp_path):
    root = tmp_path / "root"
    cache = tmp_path / "engines"
    calls = []

    def builder(onnx_path, **kwargs):
        calls.append((onnx_path, kwargs))
        assert os.path.isfile(onnx_path)
        os.makedirs(kwargs["cache_dir"], exist_ok=True)
        engine = os.path.join(kwargs["cache_dir"], "m.engine")
        for path in (engine, engine + ".json"):
            with open(path, "w") as handle:
                handle.write("stand-in")
        return StandInRecord(engine)

    report = install(bundle_for("jetson-nano"), str(root), builder=builder, cache_dir=str(cache),
                     log=lambda m: None)
    assert report["engine_status"] == "built" and report["engine"]["key_hash"] == "abc123"
    (onnx_path, kwargs), = calls
    assert kwargs["precision"] == "fp16" and kwargs["cache_dir"] == str(cache)
    assert kwargs["calib_cache"] is None and kwargs["force"] is False
    assert os.readlink(str(root / "current" / "model.engine")) == str(cache / "m.engine")
    assert (root / "current" / "model.engine.json").read_text() == "stand-in"
    info = json.loads((root / "current" / "release.json").read_text())
    assert info["engine_status"] == "built" and info["engine"]["path"] == str(cache / "m.engine")


def test_int8_bundle_passes_its_calibration_cache_and_force(tmp_path, bundle_for):
    from edgekit.engine.calib_cache import write_calibration_cache

    calib = str(tmp_path / "calib.cache")
    write_calibration_cache(calib, {"images": 0.02})
    calls = []
    path = bundle_for("jetson-nano", precision="int8", calib_cache=calib, force=True)

    def builder(onnx_path, **kwargs):
        with open(kwargs["calib_cache"]) as handle:
            calls.append(dict(kwargs, calib_text=handle.read()))
        return StandInRecord("/nonexistent.engine")

    install(path, str(tmp_path / "root"), builder=builder, log=lambda m: None)
    assert calls[0]["precision"] == "int8" and calls[0]["force"] is True
    with open(calib) as original:
        assert calls[0]["calib_text"] == original.read()


def test_failing_engine_build_leaves_current_release_live(bundle_for, tmp_path):
    root = str(tmp_path / "root")
    live = install(bundle_for("jetson-nano", scale=1.0), root, build=False, log=lambda m: None)
    assert live["engine_status"] == "skipped"

    def failing(onnx_path, **kwargs):
        raise RuntimeError("TensorRT stand-in: could not find any implementation for node MatMul")

    with pytest.raises(BundleError, match="engine build failed.*could not find any implementation.*stays live"):
        install(bundle_for("jetson-nano", scale=2.0), root, builder=failing, log=lambda m: None)
    assert current_id(root) == live["bundle_id"]
    assert os.listdir(os.path.join(root, "releases")) == [live["bundle_id"]]

    def unavailable(onnx_path, **kwargs):
        raise BackendUnavailable("TensorRT is not installed", hint="sudo apt install python3-libnvinfer")

    with pytest.raises(BundleError, match="TensorRT is not installed. Sudo apt install"):
        install(bundle_for("jetson-nano", scale=3.0), root, builder=unavailable, log=lambda m: None)
    assert current_id(root) == live["bundle_id"]


def test_default_builder_without_tensorrt_fails_clearly(bundle_for, tmp_path):
    root = str(tmp_path / "root")
    with pytest.raises(BundleError, match="engine build failed for bundle .*--no-build"):
        install(bundle_for("jetson-nano"), root, log=lambda m: None)
    assert current_id(root) is None and os.listdir(os.path.join(root, "releases")) == []


def test_wrong_target_install_is_refused(bundle_for, tmp_path):
    with pytest.raises(BundleError, match="is for jetson-nano, not for this x86-cpu"):
        install(bundle_for("jetson-nano"), str(tmp_path / "root"), target="x86-cpu", build=False)


def test_rollback_if_current_only_rolls_back_that_release(bundle_for, tmp_path):
    root = str(tmp_path / "root")
    a = install(bundle_for(scale=1.0), root, log=lambda m: None)
    b = install(bundle_for(scale=2.0), root, log=lambda m: None)
    result = rollback(root, if_current="some-other-id", log=lambda m: None)
    assert not result["changed"] and current_id(root) == b["bundle_id"]
    result = rollback(root, if_current=b["bundle_id"], log=lambda m: None)
    assert result["changed"] and current_id(root) == a["bundle_id"]


def test_leftover_staging_and_temp_links_are_cleaned(bundle_for, tmp_path):
    root = tmp_path / "root"
    (root / "releases" / ".staging-crashed").mkdir(parents=True)
    install(bundle_for(), str(root), log=lambda m: None)
    assert [n for n in os.listdir(str(root / "releases")) if n.startswith(".")] == []
    assert sorted(os.listdir(str(root))) == [".lock", "current", "releases", "state.json"]


def test_concurrent_install_is_refused(bundle_for, tmp_path):
    import fcntl

    root = tmp_path / "root"
    (root / "releases").mkdir(parents=True)
    with open(str(root / ".lock"), "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(BundleError, match="another install or rollback is running"):
            install(bundle_for(), str(root), log=lambda m: None)
        with pytest.raises(BundleError, match="another install or rollback is running"):
            rollback(str(root), log=lambda m: None)
    assert current_id(str(root)) is None
