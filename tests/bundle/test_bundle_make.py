"""Making bundles on the desktop: contents, manifest, precision rules, atomic output."""

import json
import os
import zipfile

import pytest

from bundle_helpers import make_classifier, manifest_of, read_members
from edgekit.bundle.manifest import FORMAT, parse_manifest
from edgekit.desktop.bundle_make import make_bundle
from edgekit.engine.calib_cache import write_calibration_cache
from edgekit.errors import ConfigError, ModelError, PrecisionError
from edgekit.fsutil import sha256_bytes


def test_nano_bundle_holds_model_meta_and_manifest(model, tmp_path):
    out = str(tmp_path / "b.tar.gz")
    report = make_bundle(model, out)
    files = read_members(out)
    assert sorted(files) == ["manifest.json", "meta.json", "model.onnx"]
    manifest = parse_manifest(files["manifest.json"])
    assert manifest["format"] == FORMAT and manifest["target"] == "jetson-nano"
    assert manifest["precision"] == "fp16" and manifest["runtime"] == "tensorrt"
    assert manifest["created_at"].endswith("Z") and manifest["edgekit_version"]
    assert manifest["bundle_id"] == report["bundle_id"] and manifest["bundle_id"].startswith("shapes-fp16-")
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_bytes(files[name]) and entry["size"] == len(files[name])
    with open(model, "rb") as handle:
        assert files["model.onnx"] == handle.read()
    meta = json.loads(files["meta.json"].decode())
    assert meta["labels"] == ["red", "green", "blue"] and meta["target"] == "jetson-nano"
    assert manifest["calib_cache"] is None and manifest["config"] is None and manifest["wheel"] is None


def test_calib_cache_and_config_are_carried(model, tmp_path):
    calib = str(tmp_path / "calib.cache")
    write_calibration_cache(calib, {"images": 0.02, "logits": 0.1})
    config = tmp_path / "serve.yaml"
    config.write_text("source:\n  uri: synthetic://\nmodel:\n  path: model.onnx\n")
    out = str(tmp_path / "b.tar.gz")
    make_bundle(model, out, precision="int8", calib_cache=calib, config=str(config), target="jetson-xavier-nx")
    manifest = manifest_of(out)
    assert manifest["precision"] == "int8" and manifest["calib_cache"] == "calib.cache"
    assert manifest["config"] == "serve.yaml"
    assert read_members(out)["serve.yaml"] == config.read_bytes()


@pytest.mark.parametrize("target, kwargs, error, match", [
    ("jetson-nano", {"precision": "int8"}, PrecisionError, "no fast int8"),
    ("jetson-xavier-nx", {"precision": "int8"}, PrecisionError, "needs a QDQ model or a calibration cache"),
    ("x86-cpu", {"precision": "fp16"}, PrecisionError, "runs the ONNX model as it is"),
    ("jetson-nano", {"calib_cache": "nope.cache", "precision": "fp16"}, ConfigError, "not found"),
    ("mars-rover", {}, ConfigError, "unknown target"),
])
def test_bad_choices_are_refused_and_leave_nothing(model, tmp_path, target, kwargs, error, match):
    out = tmp_path / "b.tar.gz"
    with pytest.raises(error, match=match):
        make_bundle(model, str(out), target=target, **kwargs)
    assert not out.exists() and not [p for p in os.listdir(str(tmp_path)) if p.endswith(".tmp")]


def test_daemon_config_is_checked_against_the_daemon_schema(model, tmp_path):
    config = tmp_path / "serve.yaml"
    config.write_text("modle:\n  path: model.onnx\n")
    with pytest.raises(ConfigError, match="--config .*serve.yaml: config key modle is unknown. Did you mean model"):
        make_bundle(model, str(tmp_path / "b.tar.gz"), config=str(config))
    config.write_text("- not\n- a mapping\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        make_bundle(model, str(tmp_path / "b.tar.gz"), config=str(config))
    assert not (tmp_path / "b.tar.gz").exists()


def test_force_allows_a_slow_precision_and_says_so(model, tmp_path):
    calib = str(tmp_path / "c.cache")
    write_calibration_cache(calib, {"images": 0.02})
    report = make_bundle(model, str(tmp_path / "b.tgz"), precision="int8", calib_cache=calib, force=True)
    assert report["precision"] == "int8" and "forced" in report["warning"]


def test_model_problems(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        make_bundle(str(tmp_path / "missing.onnx"), str(tmp_path / "b.tar.gz"))
    from standins.models import tiny_classifier

    plain = tiny_classifier(tmp_path / "plain.onnx", with_meta=False)   # an ONNX no decoder recognises
    with pytest.raises(ModelError, match="no edgekit metadata"):
        make_bundle(str(plain), str(tmp_path / "b.tar.gz"))
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="has no graph"):
        make_bundle(str(empty), str(tmp_path / "b.tar.gz"))
    with pytest.raises(ConfigError, match="must end with .tar.gz"):
        make_bundle(make_classifier(tmp_path / "m.onnx"), str(tmp_path / "b.zip"))


def test_existing_bundle_survives_a_failed_remake(model, tmp_path):
    out = tmp_path / "b.tar.gz"
    make_bundle(model, str(out), target="x86-cpu")
    before = out.read_bytes()
    with pytest.raises(PrecisionError):
        make_bundle(model, str(out), target="jetson-nano", precision="int8")
    assert out.read_bytes() == before


def test_with_wheel_carries_an_installable_edgekit_wheel(model, tmp_path):
    out = str(tmp_path / "b.tar.gz")
    make_bundle(model, out, target="x86-cpu", with_wheel=True)
    manifest = manifest_of(out)
    wheel_name = manifest["wheel"]
    assert wheel_name.startswith("wheels/edgekit-") and wheel_name.endswith("-py3-none-any.whl")
    wheel = tmp_path / "w.whl"
    wheel.write_bytes(read_members(out)[wheel_name])
    with zipfile.ZipFile(str(wheel)) as zf:
        names = zf.namelist()
        metadata = zf.read([n for n in names if n.endswith("METADATA")][0]).decode()
    assert "edgekit/bundle/install.py" in names and "edgekit/cli.py" in names
    assert "Requires-Python: >=3.6" in metadata
