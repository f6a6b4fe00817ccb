"""JSON Lines sink: whole lines, size-based rotation, backups, repair of a torn tail."""

import json
import os

import pytest

from edgekit.errors import ConfigError
from edgekit.service.sinks.jsonl import JsonlSink, repair_tail


def read_lines(path):
    with open(path, "rb") as handle:
        data = handle.read()
    assert data == b"" or data.endswith(b"\n")
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def test_lines_rotation_and_backups(tmp_path):
    path = str(tmp_path / "r.jsonl")
    sink = JsonlSink(path, max_bytes=2048, backups=2, queue=1000).start()
    for i in range(300):
        assert sink.submit({"seq": i, "pad": "x" * 40, "arr": __import__("numpy").arange(2)})
    sink.close(timeout=5)
    stats = sink.stats()
    assert stats["handled"] == 300 and stats["errors"] == 0 and stats["rotations"] > 2
    files = sorted(os.listdir(str(tmp_path)))
    assert files == ["r.jsonl", "r.jsonl.1", "r.jsonl.2"]            # only `backups` old files kept
    seqs = []
    for name in ("r.jsonl.2", "r.jsonl.1", "r.jsonl"):
        full = str(tmp_path / name)
        assert os.path.getsize(full) <= 2048
        records = read_lines(full)
        seqs += [r["seq"] for r in records]
    assert seqs == sorted(seqs) and seqs[-1] == 299                  # newest kept, order preserved
    assert records[-1]["arr"] == [0, 1]


def test_no_backups_truncates(tmp_path):
    path = str(tmp_path / "r.jsonl")
    sink = JsonlSink(path, max_bytes=1024, backups=0)
    for i in range(100):
        sink.write_line({"seq": i, "pad": "y" * 30})
    sink.close()
    assert os.listdir(str(tmp_path)) == ["r.jsonl"] and read_lines(path)[-1]["seq"] == 99


def test_appends_and_repairs_a_torn_tail(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"seq": 1}\n{"seq": 2}\n{"seq": 3, "res')
    assert repair_tail(str(path)) == len(b'{"seq": 3, "res')
    path.write_bytes(b'{"seq": 1}\n{"seq": 2')
    sink = JsonlSink(str(path))
    assert sink.repaired_bytes == len(b'{"seq": 2')
    sink.write_line({"seq": 4})
    sink.close()
    assert [r["seq"] for r in read_lines(str(path))] == [1, 4]
    path.write_bytes(b"no newline at all")
    assert repair_tail(str(path)) == 17 and path.read_bytes() == b""


def test_bad_settings_and_symlink(tmp_path):
    with pytest.raises(ConfigError, match="max_bytes must be at least 1024"):
        JsonlSink(str(tmp_path / "a.jsonl"), max_bytes=10)
    os.symlink(str(tmp_path / "elsewhere"), str(tmp_path / "link.jsonl"))
    with pytest.raises(ConfigError, match="cannot write"):
        JsonlSink(str(tmp_path / "link.jsonl"))


def test_full_queue_drops_and_counts(tmp_path):
    sink = JsonlSink(str(tmp_path / "r.jsonl"), queue=3)       # not started: nothing drains the queue
    results = [sink.submit({"seq": i}) for i in range(5)]
    assert results == [True, True, True, False, False] and sink.stats()["dropped"] == 2
    sink.close()
