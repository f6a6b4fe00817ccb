"""Tracking accuracy scored by py-motmetrics (desktop tier: excluded from the Python 3.6 run)."""

import json

import numpy as np
import pytest

from edgekit import cli
from edgekit.analytics import make_tracker
from edgekit.analytics.synth import make_scene, mot_text, sample

pytest.importorskip("motmetrics")

from edgekit.desktop.track.evaluate import evaluate, frames_to_mot  # noqa: E402


def gt_of(frames):
    return dict((f["frame"], (f["gt"][:, 4].astype(np.int64), f["gt"][:, :4])) for f in frames)


def score(name, frames, **params):
    tracker = make_tracker(name, **params)
    return evaluate(gt_of(frames), frames_to_mot([(f["frame"], tracker.update(f["dets"], f["t"])) for f in frames]))


def test_perfect_and_swapped_tracks():
    frames = sample(make_scene(4, duration=3.0, seed=0, occluder=False), fps=10.0)
    gt = gt_of(frames)
    perfect = evaluate(gt, gt)
    assert perfect["mota"] == 1.0 and perfect["idf1"] == 1.0 and perfect["num_switches"] == 0
    swapped = dict((k, (np.where(ids == 1, 2, np.where(ids == 2, 1, ids)) if k > 15 else ids, b))
                   for k, (ids, b) in gt.items())
    result = evaluate(gt, swapped)
    assert result["num_switches"] == 2 and result["idf1"] < 1.0


@pytest.fixture(scope="module")
def noisy():
    """Objects crossing and hiding one another, some coming and going, an occluder band they walk
    behind, 10 % missed detections, 5 % box jitter, false positives."""
    return sample(make_scene(15, duration=15.0, seed=11), fps=30.0, miss=0.1, jitter=0.05, fp=0.5, seed=12)


def test_bytetrack_on_generated_ground_truth(noisy):
    m = score("bytetrack", noisy)
    assert m["mota"] >= 0.85 and m["idf1"] >= 0.85, m
    assert m["num_switches"] <= 15, m


def test_bytetrack_beats_the_iou_tracker_on_identities(noisy):
    assert score("bytetrack", noisy)["idf1"] > score("iou", noisy)["idf1"] + 0.05


def test_coasting_over_missed_detections_lifts_mota(noisy):
    assert score("bytetrack", noisy)["mota"] > score("bytetrack", noisy, coast_s=0.0)["mota"]


def test_track_eval_command(tmp_path, capsys):
    frames = sample(make_scene(8, duration=6.0, seed=4), fps=15.0, miss=0.1, jitter=0.05, fp=0.3)
    (tmp_path / "det.txt").write_text(mot_text(frames))
    (tmp_path / "gt.txt").write_text(mot_text(frames, "gt"))
    out = tmp_path / "tracks.txt"
    assert cli.main(["track", str(tmp_path / "det.txt"), "--out", str(out), "--eval", str(tmp_path / "gt.txt"),
                     "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)["eval"]
    assert 0.7 < ev["mota"] <= 1.0 and 0.7 < ev["idf1"] <= 1.0 and ev["num_switches"] >= 0
    assert cli.main(["track", str(tmp_path / "det.txt"), "--out", str(out), "--eval", str(tmp_path / "gt.txt")]) == 0
    text = capsys.readouterr().out
    assert "MOTA" in text and "IDF1" in text and "ID sw." in text


def test_events_conform_to_the_published_json_schema():
    import os

    jsonschema = pytest.importorskip("jsonschema")
    from edgekit.analytics.camera import CameraAnalytics
    from edgekit.analytics.synth import crossing_scene

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "docs", "reference", "event.schema.json")) as handle:
        schema = json.load(handle)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    scene, _ = crossing_scene(16, seed=5)
    a = CameraAnalytics({"lines": [{"name": "door", "points": [[400, 400], [880, 400]]}],
                         "zones": [{"name": "hall", "points": [[0, 0], [640, 0], [640, 720], [0, 720]], "loiter_s": 1}],
                         "tracker_params": {"track_buffer_s": 0.3}}, camera="front", labels=["person"])
    events = []
    for f in sample(scene, fps=15.0, seed=6):
        events.extend(a.update(f["dets"], f["t"], frame_size=scene.size, frame=f["frame"]).events)
    for k in range(10):                                   # the tracks end: zones are left with frame null
        events.extend(a.update(np.zeros((0, 6)), scene.duration + k / 15.0, frame_size=scene.size).events)
    kinds = set(e["type"] for e in events)
    assert kinds == {"object_entered", "object_left", "line_crossed", "loitering"}
    assert any(e["frame"] is None for e in events)
    for e in json.loads(json.dumps(events)):
        assert list(validator.iter_errors(e)) == []
    bad = dict(events[0], direction="sideways")
    assert list(validator.iter_errors(bad))
