"""Lines and zones on tracks: crossings through the segment only, hysteresis, enter/exit/dwell/loiter."""

import numpy as np
import pytest

from edgekit.analytics.camera import CameraAnalytics
from edgekit.analytics.events import check_event
from edgekit.analytics.rules import points_in_polygon
from edgekit.analytics.synth import crossing_scene, sample

W, H = 640, 480
BOX_W, BOX_H = 30.0, 80.0
DOOR = {"name": "door", "points": [[200, 240], [440, 240]], "in": "right"}   # horizontal: "right" is below


def walker(xs, ys, score=0.9, cls=0):
    """Detections of one person whose feet (bottom centre) are at (xs[i], ys[i])."""
    return [np.array([[x - BOX_W / 2, y - BOX_H, x + BOX_W / 2, y, score, cls]]) for x, y in zip(xs, ys)]


def feed(analytics, frames, fps=10.0, t0=0.0):
    events = []
    for k, dets in enumerate(frames):
        events.extend(analytics.update(dets, t0 + k / fps, frame_size=(W, H), frame=k + 1).events)
    for e in events:
        assert check_event(e) == [], e
    return events


def make(lines=(), zones=(), labels=None, **tracker):
    # the IoU tracker reports the detections' own boxes: the geometry under test is exact
    cfg = {"lines": list(lines), "zones": list(zones), "tracker": "iou", "tracker_params": dict(tracker)}
    return CameraAnalytics(cfg, camera="cam1", labels=labels)


def crossings(events):
    return [(e["rule"], e["direction"], e["track_id"]) for e in events if e["type"] == "line_crossed"]


def test_a_walk_down_through_the_door_counts_one_in():
    a = make([DOOR])
    ys = np.linspace(150, 330, 19)
    events = feed(a, walker([320] * 19, ys))
    assert crossings(events) == [("door", "in", 1)]
    assert a.counts()["door"]["in"] == {"0": 1} and a.counts()["door"]["out_total"] == 0
    e = [e for e in events if e["type"] == "line_crossed"][0]
    assert e["camera"] == "cam1" and e["snapshot"] is None and e["box"][3] > 240


def test_walking_back_counts_out_and_each_direction_counts_once_per_track():
    a = make([DOOR])
    ys = list(np.linspace(150, 330, 10)) + list(np.linspace(330, 150, 10)) + list(np.linspace(150, 330, 10))
    events = feed(a, walker([320] * len(ys), ys))
    assert crossings(events) == [("door", "in", 1), ("door", "out", 1)]


def test_a_box_jittering_on_the_line_counts_nothing():
    rng = np.random.RandomState(0)
    a = make([DOOR])
    n = 300
    ys = 240 + rng.randn(n) * 0.05 * BOX_H                 # feet on the line, 5 % of the height jitter
    xs = 320 + rng.randn(n) * 0.05 * BOX_W
    events = feed(a, walker(xs, ys))
    assert crossings(events) == []
    assert len(set(e["track_id"] for e in events)) <= 1


def test_one_frame_over_the_line_and_back_counts_nothing():
    a = make([DOOR])
    ys = [180, 200, 215, 225, 262, 225, 215, 200, 180]       # a single frame past the dead band
    assert crossings(feed(a, walker([320] * len(ys), ys))) == []
    b = make([dict(DOOR, min_frames=1)])
    assert crossings(feed(b, walker([320] * len(ys), ys))) == [("door", "in", 1), ("door", "out", 1)]


def test_a_crossing_at_the_segments_end_counts_and_one_beside_it_does_not():
    ys = np.linspace(150, 330, 19)
    inside = make([DOOR])
    assert crossings(feed(inside, walker([435] * 19, ys))) == [("door", "in", 1)]     # 5 px from the end
    outside = make([DOOR])
    assert crossings(feed(outside, walker([450] * 19, ys))) == []                       # 10 px past it
    diagonal = make([DOOR])                 # starts above the segment, crosses the line's extension
    xs = np.linspace(430, 520, 19)
    assert crossings(feed(diagonal, walker(xs, ys))) == []


def test_the_in_side_and_the_anchor_are_configurable():
    ys = np.linspace(150, 330, 19)
    left = make([dict(DOOR, **{"in": "left"})])
    assert crossings(feed(left, walker([320] * 19, ys))) == [("door", "out", 1)]
    # with the top-centre anchor the head has not crossed when the feet have
    top = make([dict(DOOR, anchor="top-center")])
    short = np.linspace(150, 300, 16)                          # feet end 60 px below, head 20 px above
    assert crossings(feed(top, walker([320] * 16, short))) == []


def test_normalised_line_and_per_class_counts_with_labels():
    labels = ["person", "car"]
    line = {"name": "door", "points": [[200 / W, 0.5], [440 / W, 0.5]], "classes": ["person", "car"]}
    a = make([line], labels=labels)
    ys = np.linspace(150, 330, 19)
    frames = [np.concatenate([p, c]) for p, c in zip(walker([260] * 19, ys, cls=0), walker([380] * 19, ys, cls=1))]
    feed(a, frames)
    assert a.counts()["door"]["in"] == {"person": 1, "car": 1}


def test_class_filter_and_min_score():
    ys = np.linspace(150, 330, 19)
    only_cars = make([dict(DOOR, classes=["car"])], labels=["person", "car"])
    assert crossings(feed(only_cars, walker([320] * 19, ys, cls=0))) == []
    picky = make([dict(DOOR, min_score=0.8)])
    assert crossings(feed(picky, walker([320] * 19, ys, score=0.7))) == []
    assert crossings(feed(make([dict(DOOR, min_score=0.6)]), walker([320] * 19, ys, score=0.7))) == [("door", "in", 1)]


BAY = {"name": "bay", "points": [[300, 100], [600, 100], [600, 400], [300, 400]], "loiter_s": 2.0}


def test_zone_enter_dwell_loiter_once_and_leave():
    a = make(zones=[BAY])
    xs = list(np.linspace(100, 450, 30)) + [450] * 20 + list(np.linspace(450, 100, 30))
    events = feed(a, walker(xs, [300] * len(xs)), fps=10.0)
    kinds = [e["type"] for e in events]
    assert kinds == ["object_entered", "loitering", "object_left"]
    entered, loiter, left = events
    assert loiter["dwell_s"] >= 2.0 and loiter["time"] - entered["time"] == pytest.approx(2.0, abs=0.15)
    assert left["dwell_s"] == pytest.approx(left["time"] - entered["time"], abs=0.15)
    assert 4.0 < left["dwell_s"] < 5.0
    assert a.counts()["bay"]["occupied"] == 0 and a.counts()["bay"]["entered"] == {"0": 1}


def test_zone_occupancy_per_class_and_dwell_in_state():
    a = make(zones=[dict(BAY, loiter_s=None)], labels=["person", "car"])
    frames = [np.concatenate([p, c]) for p, c in zip(walker([400] * 10, [300] * 10, cls=0),
                                                    walker([500] * 10, [300] * 10, cls=1))]
    events = feed(a, frames)
    assert [e["type"] for e in events] == ["object_entered", "object_entered"]
    state = a.state()
    assert state["rules"]["bay"]["occupancy"] == {"person": 1, "car": 1}
    assert sorted(state["rules"]["bay"]["dwell_s"].values()) == [pytest.approx(0.8, abs=0.11)] * 2
    assert state["tracks_active"] == 2 and {t["label"] for t in state["tracks"]} == {"person", "car"}


def test_a_track_that_ends_inside_the_zone_leaves_it():
    a = make(zones=[BAY], track_buffer_s=0.5)
    events = feed(a, walker([450] * 10, [300] * 10) + [np.zeros((0, 6))] * 10)
    assert [e["type"] for e in events] == ["object_entered", "object_left"]
    assert events[1]["time"] == pytest.approx(0.9) and events[1]["dwell_s"] == pytest.approx(0.8, abs=0.11)
    assert a.counts()["bay"]["occupied"] == 0


def test_a_box_jittering_on_the_zone_edge_neither_enters_nor_leaves():
    rng = np.random.RandomState(1)
    xs = 300 + rng.randn(200) * 0.05 * BOX_H                # the edge at x = 300, inside the dead band
    assert feed(make(zones=[BAY]), walker(xs, [300] * 200)) == []
    without_band = make(zones=[dict(BAY, margin=0)])
    assert len(feed(without_band, walker(xs, [300] * 200))) > 2   # the band is what keeps it quiet


def test_points_in_polygon():
    square = [(0, 0), (10, 0), (10, 10), (0, 10)]
    inside = points_in_polygon(np.array([5, 15, -1, 9.9]), np.array([5, 5, 5, 0.1]), square)
    assert inside.tolist() == [True, False, False, True]
    concave = [(0, 0), (10, 0), (10, 10), (5, 3), (0, 10)]
    assert points_in_polygon(np.array([5, 5]), np.array([1, 8]), concave).tolist() == [True, False]


def test_reload_keeps_counts_and_track_ids():
    a = make([DOOR], zones=[dict(BAY, loiter_s=None)])
    ys = np.linspace(150, 330, 19)
    feed(a, walker([320] * 19, ys))
    before = a.state()
    tid = before["tracks"][0]["track_id"]
    moved = dict(DOOR, points=[[200, 250], [440, 250]])
    a.reload({"lines": [moved], "zones": [dict(BAY, loiter_s=None)], "tracker": "iou"})
    after = a.state()
    assert after["rules"]["door"]["in_total"] == 1
    assert [t["track_id"] for t in after["tracks"]] == [tid]
    assert a.update(walker([320], [330])[0], 2.0, frame_size=(W, H)).tracks[0, 4] == tid
    # a new tracker setting starts a new tracker, at the next unused id
    a.reload({"lines": [moved], "tracker": "iou", "tracker_params": {"track_buffer_s": 3.0}})
    out = a.update(walker([100], [100])[0], 2.1, frame_size=(W, H))
    assert out.tracks[0, 4] > tid and a.counts()["door"]["in_total"] == 1 and "bay" not in a.counts()


def test_generated_crossings_count_exactly_with_detector_noise():
    scene, expected = crossing_scene(40, seed=7)
    frames = sample(scene, fps=15.0, miss=0.1, jitter=0.05, fp=0.5, seed=8)
    a = CameraAnalytics({"lines": [{"name": "door", "points": [[400, 400], [880, 400]]}]}, camera="c")
    for f in frames:
        a.update(f["dets"], f["t"], frame_size=scene.size)
    c = a.counts()["door"]
    assert (c["in_total"], c["out_total"]) == (expected["in"], expected["out"])


def test_state_is_json_and_describes_rules_and_tracks():
    import json

    a = make([DOOR], zones=[BAY], labels=["person"])
    feed(a, walker(np.linspace(300, 460, 17), np.linspace(150, 330, 17)))
    state = json.loads(json.dumps(a.state()))
    assert state["camera"] == "cam1" and state["frames"] == 17 and state["next_track_id"] == 2
    assert state["rules"]["door"]["points"] == [[200.0, 240.0], [440.0, 240.0]]
    track = state["tracks"][0]
    assert track["track_id"] == 1 and track["label"] == "person" and not track["lost"]
    assert len(track["trail"]) >= 2 and track["trail"][-1][1] == pytest.approx(330, abs=1)
    assert state["events_total"] == 2                  # in through the door, into the bay


def test_dwell_survives_a_clock_stepping_back():
    a = make(zones=[dict(BAY, loiter_s=None)])
    feed(a, walker([450] * 10, [300] * 10), t0=5000.0)          # 0.9 s at t 5000..5000.9
    events = feed(a, walker([450] * 10, [300] * 10), t0=1000.0)  # the clock jumps back
    assert events == []
    assert list(a.state()["rules"]["bay"]["dwell_s"].values()) == [pytest.approx(0.8 + 0.9, abs=0.15)]


def test_frame_result_as_the_daemons_detection_dicts():
    a = make([DOOR], labels=["person"])
    out = a.update(walker([320], [200])[0], 0.0, frame_size=(W, H))
    assert out.boxes(a.label_of) == [{"track_id": 1, "index": 0, "label": "person", "score": 0.9,
                                      "box": [305.0, 120.0, 335.0, 200.0]}]
