"""Engine cache: keys, entries, listing and clearing (no TensorRT needed)."""

import json
import os

import pytest

from edgekit.engine import cache

KEY = cache.make_key("ab" * 32, "8.2.1.8", "10.2", "NVIDIA Tegra X1", "5.3", "fp16",
                     {"images": [[1, 3, 8, 8], [2, 3, 8, 8], [4, 3, 8, 8]]}, None)


def test_key_hash_is_stable_and_sensitive_to_every_field():
    assert cache.key_hash(KEY) == cache.key_hash(json.loads(json.dumps(KEY)))
    changes = {"onnx_sha256": "cd" * 32, "tensorrt": "8.2.3.0", "cuda": "10.3", "gpu": "Xavier",
               "compute_capability": "7.2", "precision": "fp32", "shapes": {}, "calib_sha256": "ef" * 32}
    assert set(changes) == set(cache.KEY_FIELDS)
    hashes = set([cache.key_hash(KEY)])
    for field, value in changes.items():
        hashes.add(cache.key_hash(dict(KEY, **{field: value})))
    assert len(hashes) == len(changes) + 1


def test_differences_are_said_in_words():
    new = dict(KEY, tensorrt="10.3.0", onnx_sha256="00" * 32)
    text = cache.describe_differences(cache.key_differences(KEY, new))
    assert text == "onnx file changed, tensorrt 8.2.1.8 -> 10.3.0"


def test_entry_paths_name_model_precision_and_hash(tmp_path):
    engine, sidecar = cache.entry_paths(str(tmp_path), cache.model_stem("/x/my model.onnx"), KEY)
    assert os.path.basename(engine) == "my_model-fp16-%s.engine" % cache.key_hash(KEY)
    assert sidecar == engine + ".json"


def _entry(tmp_path, stem, key):
    engine, sidecar = cache.entry_paths(str(tmp_path), stem, key)
    cache.write_entry(engine, sidecar, b"ENGINE", {"format": cache.FORMAT, "model": stem, "key": key,
                                                   "key_hash": cache.key_hash(key), "built_at": "2026-01-01T00:00:00Z"})
    return engine, sidecar


def test_entries_list_and_clear_touch_only_engines(tmp_path):
    a = _entry(tmp_path, "m", KEY)
    _entry(tmp_path, "m", dict(KEY, precision="fp32"))
    (tmp_path / "orphan.engine").write_bytes(b"x")            # no sidecar: listed as incomplete
    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / "timing-8.2.1.8-sm53.cache").write_bytes(b"t")
    rows = [e.row() for e in cache.entries(str(tmp_path))]
    assert [r["status"] for r in rows] == ["ok", "ok", "incomplete"]
    assert rows[0]["gpu"] == "NVIDIA Tegra X1" and rows[0]["size_mib"] == 0.0
    stale = cache.stale_entries(str(tmp_path), "m", dict(KEY, tensorrt="10.3.0"))
    assert [e.engine for e in stale] == [a[0]]
    assert cache.clear(str(tmp_path)) == 3
    assert sorted(os.listdir(str(tmp_path))) == ["notes.txt", "timing-8.2.1.8-sm53.cache"]


def test_unreadable_sidecar_is_not_an_entry(tmp_path):
    engine, sidecar = _entry(tmp_path, "m", KEY)
    with open(sidecar, "w") as handle:
        handle.write("{half written")
    (entry,) = cache.entries(str(tmp_path))
    assert entry.data is None and not entry.complete


def test_default_cache_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "c"))
    assert cache.default_cache_dir() == str(tmp_path / "c")
    monkeypatch.delenv("EDGEKIT_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache.default_cache_dir() == os.path.join(str(tmp_path), ".cache", "edgekit", "engines")


def test_entries_of_a_missing_directory_is_empty(tmp_path):
    assert cache.entries(str(tmp_path / "nope")) == []


@pytest.mark.parametrize("stem", ["", "../x", "a b"])
def test_model_stem_is_safe(stem):
    assert "/" not in cache.model_stem(stem + ".onnx") and " " not in cache.model_stem(stem + ".onnx")


def test_leftovers_of_interrupted_writes_are_removed_when_old(tmp_path):
    old = tmp_path / ".m-fp16-abc.engine.x1y2.tmp"
    fresh = tmp_path / ".m-fp16-abc.engine.z3.tmp"
    other = tmp_path / ".notes.tmp"
    for path in (old, fresh, other):
        path.write_bytes(b"partial")
    os.utime(str(old), (1000000000, 1000000000))
    assert cache.remove_stale_temps(str(tmp_path)) == 1
    assert not old.exists() and fresh.exists() and other.exists()
    assert cache.clear(str(tmp_path)) == 0 and not fresh.exists() and other.exists()
