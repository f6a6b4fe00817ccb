"""Verifying bundles: every checksum, the manifest, the target, corrupt archives."""

import gzip
import json

import pytest

from bundle_helpers import manifest_of, read_members, rewrite, write_tar, file_info
from edgekit.bundle import verify_bundle
from edgekit.bundle.manifest import dump_manifest
from edgekit.errors import BundleError


def test_good_bundle_verifies(bundle_for):
    path = bundle_for("jetson-nano")
    summary = verify_bundle(path, target="jetson-nano").summary()
    assert summary["ok"] and summary["target"] == "jetson-nano" and summary["files"] == 2
    assert summary["target_checked"] is True
    assert verify_bundle(path).target_checked is False


def test_checksum_mismatch_is_refused(bundle_for, tmp_path):
    path = bundle_for()

    def tamper(files):
        data = bytearray(files["model.onnx"])
        data[-1] ^= 0xFF
        files["model.onnx"] = bytes(data)

    bad = rewrite(path, tmp_path / "tampered.tar.gz", tamper)
    with pytest.raises(BundleError, match="model.onnx fails its sha256 check"):
        verify_bundle(bad)


@pytest.mark.parametrize("change, match", [
    (lambda f: f.pop("meta.json"), "meta.json is missing"),
    (lambda f: f.update({"extra.sh": b"rm -rf /\n"}), "extra.sh is not listed in the manifest"),
    (lambda f: f.pop("manifest.json"), "has no manifest.json"),
    (lambda f: f.update({"manifest.json": b"{not json"}), "not valid JSON"),
])
def test_incomplete_or_altered_contents(bundle_for, tmp_path, change, match):
    bad = rewrite(bundle_for(), tmp_path / "bad.tar.gz", change)
    with pytest.raises(BundleError, match=match):
        verify_bundle(bad)


def test_manifest_with_unsafe_id_is_refused(bundle_for, tmp_path):
    def evil_id(files):
        manifest = json.loads(files["manifest.json"].decode())
        manifest["bundle_id"] = "../../etc"
        files["manifest.json"] = dump_manifest(manifest)

    with pytest.raises(BundleError, match="unsafe bundle_id"):
        verify_bundle(rewrite(bundle_for(), tmp_path / "bad.tar.gz", evil_id))


def test_bundle_for_another_target_is_refused(bundle_for):
    path = bundle_for("jetson-xavier-nx")
    with pytest.raises(BundleError, match="is for jetson-xavier-nx, not for this jetson-nano"):
        verify_bundle(path, target="jetson-nano")


@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty-gzip", "bad-crc"])
def test_corrupt_tarballs(bundle_for, tmp_path, kind):
    good = open(bundle_for(), "rb").read()
    bad = tmp_path / "bad.tar.gz"
    if kind == "garbage":
        bad.write_bytes(b"this is not a tarball at all" * 10)
    elif kind == "truncated":
        bad.write_bytes(good[:len(good) // 2])
    elif kind == "empty-gzip":
        bad.write_bytes(gzip.compress(b""))
    else:
        raw = bytearray(good)
        raw[-8] ^= 0xFF          # gzip trailer: CRC32
        bad.write_bytes(bytes(raw))
    with pytest.raises(BundleError) as err:
        verify_bundle(str(bad))
    assert "corrupt or truncated" in str(err.value) or "has no manifest.json" in str(err.value)


def test_missing_bundle(tmp_path):
    with pytest.raises(BundleError, match="bundle not found"):
        verify_bundle(str(tmp_path / "nope.tar.gz"))


def test_newer_format_names_the_fix(bundle_for, tmp_path):
    def newer(files):
        manifest = json.loads(files["manifest.json"].decode())
        manifest["format"] = "edgekit-bundle/9"
        files["manifest.json"] = dump_manifest(manifest)

    with pytest.raises(BundleError, match="edgekit-bundle/9 is not edgekit-bundle/1"):
        verify_bundle(rewrite(bundle_for(), tmp_path / "b.tar.gz", newer))


def test_manifest_lists_names_it_holds(bundle_for):
    path = bundle_for(calib_cache=None)
    manifest = manifest_of(path)
    assert set(manifest["files"]) | {"manifest.json"} == set(read_members(path))


def test_plain_uncompressed_tar_with_manifest_only_is_incomplete(tmp_path):
    manifest = {"format": "edgekit-bundle/1", "bundle_id": "x", "edgekit_version": "0", "target": "x86-cpu",
                "precision": "fp32", "created_at": "now", "model": "model.onnx",
                "files": {"model.onnx": {"sha256": "0" * 64, "size": 1}}}
    path = write_tar(tmp_path / "m.tar.gz", [(file_info("manifest.json"), dump_manifest(manifest))])
    with pytest.raises(BundleError, match="model.onnx is missing"):
        verify_bundle(path)
