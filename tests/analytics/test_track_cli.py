"""`edgekit track` on MOTChallenge files and on the daemon's JSON Lines, and its errors (exit 2, one line)."""

import json
import os

import numpy as np
import pytest

from edgekit import cli
from edgekit.analytics.camera import CameraAnalytics
from edgekit.analytics.io import read_detections
from edgekit.analytics.synth import crossing_scene, make_scene, mot_text, sample
from edgekit.service.sinks.jsonl import JsonlSink

RULES = """\
lines:
  - name: door
    points: [[400, 400], [880, 400]]
zones:
  - name: left
    points: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]
    loiter_s: 2
"""


@pytest.fixture()
def mot_dir(tmp_path):
    seq = tmp_path / "SEQ"
    (seq / "det").mkdir(parents=True)
    frames = sample(make_scene(6, duration=4.0, seed=1), fps=10.0)
    (seq / "det" / "det.txt").write_text(mot_text(frames))
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=SEQ\nframeRate=10\nseqLength=40\nimWidth=1280\nimHeight=720\n")
    return seq


def track(argv, capsys):
    code = cli.main(["track"] + [str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_mot_in_mot_out(mot_dir, tmp_path, capsys):
    out = tmp_path / "tracks.txt"
    code, stdout, _ = track([mot_dir / "det" / "det.txt", "--out", out, "--json"], capsys)
    assert code == 0
    summary = json.loads(stdout)
    assert summary["format"] == "mot" and summary["frames"] == 40 and summary["tracks"] >= 4
    rows = [line.split(",") for line in out.read_text().splitlines()]
    assert rows and all(len(r) == 10 and r[7:] == ["-1", "-1", "-1"] for r in rows)
    frames = [int(r[0]) for r in rows]
    assert min(frames) >= 1 and frames == sorted(frames) and all(int(r[1]) > 0 for r in rows)
    assert [p for p in os.listdir(str(tmp_path)) if p.startswith(".")] == []     # no temporary left


def test_rules_events_and_seqinfo_frame_size(mot_dir, tmp_path, capsys):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    events = tmp_path / "events.jsonl"
    code, stdout, _ = track([mot_dir / "det" / "det.txt", "--out", tmp_path / "t.txt", "--config", rules,
                             "--events", events, "--camera", "lab"], capsys)
    assert code == 0
    assert "left" in stdout and "door" in stdout and "ms/frame" in stdout
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert lines and all(e["camera"] == "lab" and e["version"] == 1 for e in lines)


def write_daemon_results(path, frames, size):
    """The daemon's result records (edgekit.service.pipeline), through its real JSONL sink."""
    sink = JsonlSink(str(path))
    for f in frames:
        dets = [{"index": int(d[5]), "label": ["person", "car"][int(d[5])], "score": float(d[4]),
                 "box": [float(v) for v in d[:4]]} for d in f["dets"]]
        sink.write_line({"device": "edgekit", "seq": f["frame"], "source": "file:door.mp4", "model": "det",
                         "ts_capture": 1733280000.0 + f["t"], "ts_published": 1733280000.1 + f["t"],
                         "result": {"task": "detection", "detections": dets}, "latency_ms": {"infer": 3.0}})
    sink.close()


def test_daemon_jsonl_reproduces_the_live_events(tmp_path, capsys):
    scene, expected = crossing_scene(12, seed=2, decoys=False)
    frames = sample(scene, fps=15.0, seed=3)
    results = tmp_path / "results.jsonl"
    write_daemon_results(results, frames, scene.size)
    rules = tmp_path / "rules.yaml"
    rules.write_text("lines:\n  - {name: door, points: [[400, 400], [880, 400]], classes: [person]}\n")
    events = tmp_path / "events.jsonl"
    code, stdout, _ = track([results, "--out", tmp_path / "t.txt", "--config", rules, "--events", events,
                             "--json", "--camera", "door"], capsys)
    assert code == 0
    summary = json.loads(stdout)
    assert summary["format"] == "jsonl"
    assert summary["counts"]["door"]["in"] == {"person": expected["in"]}
    assert summary["counts"]["door"]["out"] == {"person": expected["out"]}
    # what the daemon would have produced live on the same detections and times
    live = CameraAnalytics({"lines": [{"name": "door", "points": [[400, 400], [880, 400]], "classes": ["person"]}]},
                           camera="door", labels=["person"], trail_s=0)
    want = []
    for f in frames:
        want.extend(live.update(f["dets"], 1733280000.0 + f["t"], frame=f["frame"]).events)
    got = [json.loads(line) for line in events.read_text().splitlines()]
    assert [(e["type"], e["track_id"], e["direction"], e["frame"]) for e in got] == \
        [(e["type"], e["track_id"], e["direction"], e["frame"]) for e in want]
    assert [e["time"] for e in got] == pytest.approx([e["time"] for e in want])


def test_reading_detections_back(mot_dir):
    rec = read_detections(str(mot_dir / "det" / "det.txt"))
    assert rec.fps == 10.0 and rec.frame_size == (1280, 720) and rec.labels is None
    frame, t, dets = rec.frames[0]
    assert frame == 1 and t is None and dets.shape[1] == 6 and np.all(dets[:, 2] > dets[:, 0])


@pytest.mark.parametrize("content, argv, message", [
    (None, [], "DETS: no such file"),
    ("1,-1,10,10,5,5,0.9\n2,-1,10,10,5\n", [], "line 2: 5 values, need at least 7"),
    ("1,-1,10,10,5,5,0.9\nx,-1,10,10,5,5,0.9\n", [], "line 2: not comma-separated numbers"),
    ("0,-1,10,10,5,5,0.9\n", [], "line 1: frame '0' is not a whole number >= 1"),
    ('{"seq": 1, "result": {"task": "detection", "detections": []}}\n{"seq": 2, "result"\n', [], "line 2: not JSON"),
    ('{"seq": 1, "result": {"task": "classification", "top": []}}\n', [], "line 1: no result.detections"),
    ('{"seq": 1, "result": {"detections": [{"box": [1, 2], "score": 0.5}]}}\n', [], "line 1: malformed record"),
    ("1,-1,10,10,5,5,0.9\n", ["--tracker", "sort"], "unknown tracker 'sort'"),
    ("1,-1,10,10,5,5,0.9\n", ["--events", "e.jsonl"], "--events needs --config"),
    ("1,-1,10,10,5,5,0.9\n", ["--fps", "0"], "--fps must be > 0"),
    ("1,-1,10,10,5,5,0.9\n", ["--frame-size", "big"], "--frame-size 'big' is not WIDTHxHEIGHT"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, content, argv, message):
    dets = tmp_path / "det.txt"
    if content is not None:
        dets.write_text(content)
    out = tmp_path / "tracks.txt"
    code, _, err = track([dets, "--out", out] + argv, capsys)
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not out.exists()


def test_bad_rules_file(tmp_path, capsys):
    dets = tmp_path / "det.txt"
    dets.write_text("1,-1,10,10,5,5,0.9\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text("zones:\n  - {name: a, points: [[0, 0], [1, 1]]}\n")
    code, _, err = track([dets, "--out", tmp_path / "t.txt", "--config", rules], capsys)
    assert code == 2 and "config key analytics.zones[0].points needs at least 3 points" in err
    rules.write_text("lines: [\n")
    code, _, err = track([dets, "--out", tmp_path / "t.txt", "--config", rules], capsys)
    assert code == 2 and "is not valid YAML" in err and err.count("\n") == 1
    rules.write_text("lines:\n  - {name: a, points: [[0.1, 0.1], [0.5, 0.5]]}\n")
    code, _, err = track([dets, "--out", tmp_path / "t.txt", "--config", rules], capsys)
    assert code == 2 and "--frame-size" in err


def test_tracker_flag_overrides_the_config(mot_dir, tmp_path, capsys):
    rules = tmp_path / "rules.yaml"
    rules.write_text("analytics:\n  tracker: bytetrack\n  tracker_params: {match_thresh: 0.9}\n")
    code, stdout, _ = track([mot_dir / "det" / "det.txt", "--out", tmp_path / "t.txt", "--config", rules,
                             "--tracker", "iou", "--json"], capsys)
    assert code == 0 and json.loads(stdout)["tracker"] == "iou"
