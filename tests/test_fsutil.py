import os

import pytest

from edgekit.fsutil import atomic_write, atomic_write_json, sha256_file


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(str(path)) as handle:
            handle.write(b"half")
            raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"old"
    assert os.listdir(str(tmp_path)) == ["out.bin"]          # no temp file left
    with atomic_write(str(path)) as handle:
        handle.write(b"new")
    assert path.read_bytes() == b"new"


def test_json_and_hash(tmp_path):
    path = tmp_path / "sub" / "x.json"
    atomic_write_json(str(path), {"b": 1, "a": [1, 2]})
    assert path.read_text().startswith('{\n  "a"')
    assert len(sha256_file(str(path))) == 64
