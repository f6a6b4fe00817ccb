"""A camera's analytics config: every mistake is one ConfigError line naming its key."""

import pytest

from edgekit.analytics.camera import CameraAnalytics
from edgekit.analytics.config import validate_config
from edgekit.errors import ConfigError

LABELS = ["person", "car", "dog"]
LINE = {"name": "door", "points": [[0.2, 0.5], [0.8, 0.5]]}
ZONE = {"name": "bay", "points": [[10, 10], [200, 10], [200, 150]]}


def error(data, **kw):
    with pytest.raises(ConfigError) as info:
        validate_config(data, **kw)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_a_good_config():
    cfg = validate_config({"tracker": "iou", "tracker_params": {"iou_thresh": 0.4},
                           "lines": [dict(LINE, classes=["person"], **{"in": "left"})],
                           "zones": [dict(ZONE, loiter_s=30, classes=["car", 2])]}, labels=LABELS)
    line, zone = cfg.rules
    assert line.normalized and not zone.normalized
    assert line.classes == {"person", 0} and zone.classes == {"car", 1, "dog", 2}
    assert line.in_side == "left" and line.min_frames == 2 and line.anchor == "bottom-center"
    assert zone.loiter_s == 30.0 and line.resolve((640, 480)) == [(128.0, 240.0), (512.0, 240.0)]
    assert validate_config(None).rules == [] and validate_config(None).tracker == "bytetrack"


@pytest.mark.parametrize("data, kw, expected", [
    ({"zones": [dict(ZONE, points=[[0, 0], [5, 5]])]}, {}, "config key analytics.zones[0].points needs at least 3 points, got 2"),
    ({"lines": [dict(LINE, points=[[0.2, 0.5], [1.2, 0.5]], coords="normalized")]}, {},
     "config key analytics.lines[0].points[1] = [1.2, 0.5] is outside the frame"),
    ({"lines": [dict(LINE, points=[[10, 20], [700, 20]])]}, {"frame_size": (640, 480)},
     "config key analytics.lines[0].points[1] = [700, 20] is outside the frame (640x480)"),
    ({"lines": [dict(LINE, points=[[-5, 20], [70, 20]])]}, {}, "analytics.lines[0].points[0] = [-5, 20] is outside"),
    ({"lines": [dict(LINE, classes=["persn"])]}, {"labels": LABELS},
     "config key analytics.lines[0].classes[0]: unknown class 'persn'. The model's labels are: person, car, dog"),
    ({"lines": [dict(LINE, classes=[7])]}, {"labels": LABELS}, "analytics.lines[0].classes[0]: class index 7 is out of range"),
    ({"lines": [LINE], "zones": [dict(ZONE, name="door")]}, {},
     "config key analytics.zones[0].name: duplicate rule name 'door' (also analytics.lines[0].name)"),
    ({"lines": [LINE, LINE]}, {}, "analytics.lines[1].name: duplicate rule name 'door'"),
    ({"lines": [dict(LINE, colour="red")]}, {}, "config key analytics.lines[0].colour is unknown"),
    ({"lines": [dict(LINE, anchor="feet")]}, {}, "config key analytics.lines[0].anchor must be one of"),
    ({"lines": [dict(LINE, points=[[0.2, 0.5]])]}, {}, "analytics.lines[0].points needs exactly 2 points, got 1"),
    ({"lines": [dict(LINE, points=[[0.2, 0.5], [0.2, 0.5]])]}, {}, "analytics.lines[0].points: the two points are the same"),
    ({"zones": [dict(ZONE, points=[[0, 0], [5, 5], [10, 10]])]}, {}, "analytics.zones[0].points: the polygon has no area"),
    ({"lines": [dict(LINE, name="front door")]}, {}, "config key analytics.lines[0].name must be 1-64 letters"),
    ({"lines": [{"points": [[0, 0], [1, 1]]}]}, {}, "config key analytics.lines[0].name is required"),
    ({"lines": [dict(LINE, **{"in": "up"})]}, {}, "config key analytics.lines[0].in must be left or right"),
    ({"lines": [dict(LINE, min_frames=0)]}, {}, "config key analytics.lines[0].min_frames must be >= 1"),
    ({"zones": [dict(ZONE, loiter_s="10m")]}, {}, "config key analytics.zones[0].loiter_s must be a number"),
    ({"lines": {"name": "door"}}, {}, "config key analytics.lines must be a list"),
    ({"tracker": "sort"}, {}, "config key analytics.tracker: unknown tracker 'sort'"),
    ({"tracker_params": {"buffer": 3}}, {}, "config key analytics.tracker_params: unknown bytetrack tracker parameter 'buffer'"),
    ({"rules": []}, {}, "config key analytics.rules is unknown"),
    ([], {}, "config key analytics must be a mapping"),
])
def test_mistakes_name_the_key(data, kw, expected):
    assert expected in error(data, **kw)


def test_the_key_prefix_is_the_callers():
    text = error({"zones": [dict(ZONE, points=[[0, 0]])]}, key="cameras.front.analytics")
    assert text.startswith("config key cameras.front.analytics.zones[0].points")


def test_pixel_points_outside_the_first_frame_are_an_error_then():
    a = CameraAnalytics({"lines": [dict(LINE, points=[[10, 20], [700, 20]])]})
    with pytest.raises(ConfigError, match=r"analytics.lines\[0\].points\[1\] = \[700, 20\] is outside the 640x480"):
        a.update([], 0.0, frame_size=(640, 480))


def test_normalised_rules_need_the_frame_size():
    a = CameraAnalytics({"lines": [LINE]})
    with pytest.raises(ConfigError, match="frame size"):
        a.update([], 0.0)
