"""Hard-example harvesting: reasons, the per-camera rate, the cap, the YOLO layout it writes."""

import json
import os

import numpy as np
import pytest

from edgekit.errors import ConfigError
from edgekit.recordings.harvest import Harvester, read_names

LABELS = ["person", "car", "dog"]


def det(cls, score, box=(40, 30, 100, 110)):
    return {"index": cls, "label": LABELS[cls], "score": score, "box": list(box)}


def frame(i=0):
    return np.full((120, 160, 3), (i * 13) % 255, np.uint8)


def harvester(folder, **kw):
    lines = []
    h = Harvester(str(folder), LABELS, "det-v3", log=lines.append, **kw)
    h.lines = lines
    return h


def test_reasons_rate_and_yolo_output(tmp_path):
    h = harvester(tmp_path, every_s=10, wanted=("dog",))
    sure = {"detections": [det(0, 0.9)]}
    assert h.offer(frame(), sure, t=100.0, camera="door") == []                        # confident: not kept
    assert h.offer(frame(), {"detections": [det(0, 0.9), det(1, 0.45)]}, t=101.0, camera="door") == ["unsure"]
    assert h.offer(frame(), {"detections": [det(1, 0.45)]}, t=105.0, camera="door") == []   # within every_s
    assert h.offer(frame(), {"detections": [det(1, 0.45)]}, t=105.0, camera="yard") == ["unsure"]  # per camera
    assert h.offer(frame(), {"detections": [det(2, 0.95)]}, t=111.5, camera="door") == ["wanted"]
    h.close()
    st = h.state()
    assert st["kept"] == 3 and st["skipped_rate"] == 1 and st["reasons"] == {"unsure": 2, "wanted": 1}
    names, cfg = read_names(str(tmp_path / "data.yaml"))
    assert names == LABELS and cfg["train"] == "images" and cfg["model_version"] == "det-v3"
    manifest = [json.loads(line) for line in open(str(tmp_path / "manifest.jsonl"))]
    assert [m["why"] for m in manifest] == [["unsure"], ["unsure"], ["wanted"]]
    first = manifest[0]
    assert first["camera"] == "door" and first["model_version"] == "det-v3" and first["time"] == 101.0
    assert first["file"] == "images/door-19700101-000141-000.jpg" and os.path.isfile(str(tmp_path / first["file"]))
    rows = [line.split() for line in open(str(tmp_path / first["labels"]))]
    assert rows[1][0] == "1" and [round(float(v), 4) for v in rows[1][1:]] == [0.4375, 0.5833, 0.375, 0.6667]
    assert [d["score"] for d in first["detections"]] == [0.9, 0.45]


def test_flicker_is_a_track_lost_inside_the_frame(tmp_path):
    h = harvester(tmp_path, every_s=0)
    inside = [40, 30, 100, 110, 7, 0.9, 0]
    edge = [150, 30, 160, 110, 8, 0.9, 0]
    sure = {"detections": [det(0, 0.9)]}
    assert h.offer(frame(), sure, tracks=[inside, edge], t=1.0, camera="c") == []
    assert h.offer(frame(), sure, tracks=[inside], t=2.0, camera="c") == []          # 8 walked out at the edge
    assert h.offer(frame(), sure, tracks=np.zeros((0, 7)), t=3.0, camera="c") == ["flicker"]   # 7 lost mid-frame
    assert h.offer(frame(), sure, tracks=np.zeros((0, 7)), t=4.0, camera="c") == []
    h.close()


def test_storage_cap_stops_and_says_so(tmp_path):
    h = harvester(tmp_path, every_s=0, max_mb=0.001)
    noisy = np.random.RandomState(0).randint(0, 255, (120, 160, 3)).astype(np.uint8)
    kept = 0
    for i in range(10):
        if h.offer(noisy, {"detections": [det(0, 0.4)]}, t=float(i), camera="c"):
            kept += 1
        assert h.flush()                            # let the writer catch up
    assert kept == 1 and h.state()["skipped_full"] == 9 and h.state()["full"]
    assert any("cap" in line for line in h.lines)
    # brought home and cleared on the board: the harvester sees the room (at most once a minute)
    for sub in ("images", "labels"):
        for name in os.listdir(str(tmp_path / sub)):
            os.unlink(str(tmp_path / sub / name))
    assert h.offer(noisy, {"detections": [det(0, 0.4)]}, t=30.0, camera="c") == []     # < 60 s since the last look
    assert h.offer(noisy, {"detections": [det(0, 0.4)]}, t=80.0, camera="c") == []     # asks the writer to look
    assert h.flush() and not h.state()["full"]
    assert h.offer(noisy, {"detections": [det(0, 0.4)]}, t=81.0, camera="c") == ["unsure"]
    assert any("room again" in line for line in h.lines)
    assert h.flush()
    h.close()
    # a new run counts what is there
    assert harvester(tmp_path, max_mb=0.001).state()["full"]


def test_bad_configurations(tmp_path):
    with pytest.raises(ConfigError, match="no labels"):
        Harvester(str(tmp_path / "a"), [], "v1")
    with pytest.raises(ConfigError, match="cat"):
        Harvester(str(tmp_path / "b"), LABELS, "v1", wanted=("cat",))
    with pytest.raises(ConfigError, match="low < high"):
        Harvester(str(tmp_path / "c"), LABELS, "v1", low=0.7, high=0.6)
    harvester(tmp_path / "d").close()
    with pytest.raises(ConfigError, match="without dog; with cat"):
        Harvester(str(tmp_path / "d"), ["person", "car", "cat"], "v2")
