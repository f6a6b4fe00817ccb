"""The snapshot writer: atomic JPEGs off the inference thread, retention by size and age, a full
queue that drops and counts, a write error that degrades (said once) and never raises."""

import os
import time

import numpy as np
import pytest

from edgekit.errors import ConfigError
from edgekit.service.analytics import SnapshotWriter
from edgekit.service.metrics import Metrics


def event(i, box=(40.0, 30.0, 80.0, 90.0)):
    return {"id": "cam-%d-%d" % (1000 + i, i), "type": "line_crossed", "rule": "door", "box": list(box)}


def image():
    frame = np.full((120, 160, 3), 30, np.uint8)
    frame[30:90, 40:80] = 255
    return frame


RESULT = {"task": "detection", "detections": [{"index": 0, "label": "person", "score": 0.9,
                                               "box": [40.0, 30.0, 80.0, 90.0], "track_id": 3}]}


def wait(predicate, timeout=5.0):
    deadline = time.time() + timeout
    while not predicate() and time.time() < deadline:
        time.sleep(0.01)
    return predicate()


def test_frame_and_crop_written_and_oldest_removed_beyond_max_mb(tmp_path):
    import cv2

    writer = SnapshotWriter(str(tmp_path), max_mb=1, metrics=Metrics()).start()
    try:
        assert writer.submit(event(0), image(), RESULT) == "cam-1000-0.jpg"
        assert wait(lambda: writer.written == 1)
        crop = cv2.imread(str(tmp_path / "cam-1000-0-crop.jpg"))
        assert crop.shape[:2] == (60 + 2 * 7, 40 + 2 * 5) and crop[35, 25].min() > 200
        full = cv2.imread(str(tmp_path / "cam-1000-0.jpg"))
        assert full.shape[:2] == (120, 160)

        assert not [n for n in os.listdir(str(tmp_path)) if not n.endswith(".jpg")]     # no temp files left
        writer.max_bytes = os.path.getsize(str(tmp_path / "cam-1000-0.jpg")) * 3     # room for about one event
        for i in range(1, 4):
            writer.submit(event(i), image(), RESULT)
            assert wait(lambda n=i + 1: writer.written == n)
        left = sorted(os.listdir(str(tmp_path)))
        assert "cam-1000-0.jpg" not in left and "cam-1003-3.jpg" in left and writer.deleted >= 2
        assert writer.stats()["bytes"] <= writer.max_bytes
    finally:
        writer.close()


def test_the_rules_are_drawn_on_the_frame(tmp_path):
    import cv2

    writer = SnapshotWriter(str(tmp_path)).start()
    try:
        writer.submit(event(9), image(), RESULT, geometry=[("line", [(10.0, 110.0), (150.0, 110.0)])])
        assert wait(lambda: writer.written == 1)
    finally:
        writer.close()
    drawn = cv2.imread(str(tmp_path / "cam-1009-9.jpg"))
    b, g, r = [int(v) for v in drawn[110, 80]]
    assert abs(r - 255) < 40 and abs(g - 211) < 40 and b < 110, (b, g, r)          # the line, yellow
    assert max(abs(int(v) - 30) for v in drawn[100, 80]) < 25                       # the floor beside it


def test_files_older_than_max_age_go_also_those_from_before_a_restart(tmp_path):
    old = tmp_path / "cam-1-1.jpg"
    old.write_bytes(b"\xff\xd8old")
    os.utime(str(old), (time.time() - 7200, time.time() - 7200))
    writer = SnapshotWriter(str(tmp_path), max_age_s=3600).start()
    try:
        writer.submit(event(5), image(), RESULT)
        assert wait(lambda: writer.written == 1)
        assert not old.exists() and (tmp_path / "cam-1005-5.jpg").exists()
    finally:
        writer.close()


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path):
    metrics = Metrics()
    writer = SnapshotWriter(str(tmp_path), queue_size=2, metrics=metrics)      # not started: nothing drains
    names = [writer.submit(event(i), image(), RESULT) for i in range(5)]
    assert names[:2] == ["cam-1000-0.jpg", "cam-1001-1.jpg"] and names[2:] == [None, None, None]
    assert writer.dropped == 3 and metrics.get("snapshots_dropped_total") == 3
    assert metrics.get("sink_dropped_total", sink="snapshots") == 3


def test_a_write_error_is_counted_and_said_once(tmp_path):
    said = []
    writer = SnapshotWriter(str(tmp_path), metrics=Metrics(), log=said.append).start()
    try:
        (tmp_path / "file").write_text("x")
        writer.directory = str(tmp_path / "file")          # no longer a folder we can write into
        for i in range(3):
            writer.submit(event(i), image(), RESULT)
        assert wait(lambda: writer.errors == 3)
        assert len(said) == 1 and "events go on without them" in said[0]
        assert writer.metrics.get("snapshot_errors_total") == 3
    finally:
        writer.close()


def test_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="outputs.snapshots.dir: .* is not a folder"):
        SnapshotWriter(str(tmp_path / "nope"))
