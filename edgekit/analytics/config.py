"""A camera's analytics configuration: the tracker, its lines and zones, checked with the key named.

The YAML mapping (in the daemon's config under each camera, or a file of its own for ``edgekit
track --config``)::

    tracker: bytetrack               # or iou
    tracker_params: {track_buffer_s: 1.0}
    lines:
      - name: door                   # names are unique across lines and zones: [A-Za-z0-9_-]
        points: [[0.30, 0.62], [0.70, 0.62]]   # two points, 0..1 of the frame or pixels
        in: right                    # the "in" side, walking from the first point to the second
        classes: [person]            # labels (or class indices); default every class
        min_score: 0.0
        min_frames: 2                # frames on the new side before a crossing counts
        margin: 0.15                 # dead band either side of the line, x the box height
        anchor: bottom-center
    zones:
      - name: bay
        points: [[100, 400], [600, 400], [600, 700], [100, 700]]   # >= 3 points
        classes: [car]
        loiter_s: 600                # a loitering event once per track after this long inside
        min_frames: 2                # frames inside (outside) before entering (leaving) counts
        margin: 0.15                 # dead band along the edges, x the box height
        anchor: bottom-center

``validate_config(data, labels=None, frame_size=None, key="analytics")`` returns an
``AnalyticsConfig`` or raises ``ConfigError`` with one line naming the key, e.g.
``config key analytics.zones[1].points needs at least 3 points, got 2``. Coordinates are taken as
fractions of the frame when every value of a rule lies within 0..1 (``coords: normalized`` or
``pixels`` says so explicitly); pixel points are checked against ``frame_size`` when it is known,
else when the first frame arrives (``Rule.resolve``).
"""

import re

from edgekit.errors import ConfigError

ANCHORS = {"bottom-center": (0.5, 1.0), "center": (0.5, 0.5), "top-center": (0.5, 0.0),
           "bottom-left": (0.0, 1.0), "bottom-right": (1.0, 1.0), "top-left": (0.0, 0.0),
           "top-right": (1.0, 0.0), "center-left": (0.0, 0.5), "center-right": (1.0, 0.5)}
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_COMMON = {"name", "points", "classes", "min_score", "min_frames", "anchor", "coords"}
_COMMON = _COMMON | {"margin"}
LINE_KEYS = _COMMON | {"in"}
ZONE_KEYS = _COMMON | {"loiter_s"}
TOP_KEYS = {"tracker", "tracker_params", "lines", "zones"}


class Rule(object):
    """A validated line or zone. ``points`` as written; ``normalized`` whether they are 0..1 of the
    frame; ``classes`` a set of labels and/or class indices (None: every class)."""

    kind = None

    def __init__(self, key, name, points, normalized, classes, min_score, min_frames, anchor, margin):
        self.key, self.name, self.points, self.normalized = key, name, points, normalized
        self.classes, self.min_score, self.min_frames, self.anchor = classes, min_score, min_frames, anchor
        self.margin = margin

    def resolve(self, frame_size):
        """The points in pixels for a frame ``(width, height)``; a ConfigError when a pixel point lies
        outside it."""
        w, h = frame_size
        if self.normalized:
            return [(x * w, y * h) for x, y in self.points]
        for i, (x, y) in enumerate(self.points):
            if not (0 <= x <= w and 0 <= y <= h):
                raise ConfigError("config key %s.points[%d] = [%g, %g] is outside the %dx%d frame" % (
                    self.key, i, x, y, w, h), hint="give pixels within the frame or fractions 0..1")
        return [(float(x), float(y)) for x, y in self.points]

    def accepts(self, label, cls):
        return self.classes is None or label in self.classes or cls in self.classes

    def geometry(self):
        """What a reload compares to keep per-track state: everything but the name."""
        return tuple(sorted((k, repr(sorted(v, key=str)) if isinstance(v, set) else repr(v))
                            for k, v in vars(self).items() if k not in ("key", "name")))

    def describe(self):
        out = {"name": self.name, "type": self.kind, "points": [list(p) for p in self.points],
               "normalized": self.normalized, "classes": sorted(self.classes, key=str) if self.classes else None,
               "min_score": self.min_score, "min_frames": self.min_frames, "anchor": self.anchor,
               "margin": self.margin}
        return out


class LineRule(Rule):
    kind = "line"

    def __init__(self, in_side, **kw):
        super(LineRule, self).__init__(**kw)
        self.in_side = in_side

    def describe(self):
        out = super(LineRule, self).describe()
        out["in"] = self.in_side
        return out


class ZoneRule(Rule):
    kind = "zone"

    def __init__(self, loiter_s, **kw):
        super(ZoneRule, self).__init__(**kw)
        self.loiter_s = loiter_s

    def describe(self):
        out = super(ZoneRule, self).describe()
        out["loiter_s"] = self.loiter_s
        return out


class AnalyticsConfig(object):
    def __init__(self, tracker="bytetrack", tracker_params=None, lines=(), zones=()):
        self.tracker = tracker
        self.tracker_params = dict(tracker_params or {})
        self.lines = list(lines)
        self.zones = list(zones)

    @property
    def rules(self):
        return self.lines + self.zones

    def describe(self):
        return {"tracker": self.tracker, "tracker_params": self.tracker_params,
                "lines": [r.describe() for r in self.lines], "zones": [r.describe() for r in self.zones]}


def _number(value, key, low=None, integer=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and int(value) != value):
        raise ConfigError("config key %s must be %s, got %r" % (key, "an integer" if integer else "a number", value))
    if low is not None and value < low:
        raise ConfigError("config key %s must be >= %s, got %r" % (key, low, value))
    return int(value) if integer else float(value)


def _points(value, key, frame_size, coords, exactly=None, at_least=None):
    if not isinstance(value, (list, tuple)):
        raise ConfigError("config key %s must be a list of [x, y] points, got %r" % (key, value))
    if exactly is not None and len(value) != exactly:
        raise ConfigError("config key %s needs exactly %d points, got %d" % (key, exactly, len(value)))
    if at_least is not None and len(value) < at_least:
        raise ConfigError("config key %s needs at least %d points, got %d" % (key, at_least, len(value)))
    points = []
    for i, p in enumerate(value):
        if (not isinstance(p, (list, tuple)) or len(p) != 2
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in p)):
            raise ConfigError("config key %s[%d] must be a point [x, y], got %r" % (key, i, p))
        points.append((float(p[0]), float(p[1])))
    flat = [v for p in points for v in p]
    if coords == "auto":
        normalized = all(0.0 <= v <= 1.0 for v in flat)
    else:
        normalized = coords == "normalized"
    for i, (x, y) in enumerate(points):
        if normalized and not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ConfigError("config key %s[%d] = [%g, %g] is outside the frame" % (key, i, x, y),
                              hint="normalised coordinates are fractions 0..1 of the frame")
        if not normalized:
            w, h = frame_size if frame_size else (float("inf"), float("inf"))
            if x < 0 or y < 0 or x > w or y > h:
                raise ConfigError("config key %s[%d] = [%g, %g] is outside the frame%s" % (
                    key, i, x, y, " (%dx%d)" % tuple(frame_size) if frame_size else ""),
                    hint="give pixels within the frame or fractions 0..1")
    return points, normalized


def _classes(value, key, labels):
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError("config key %s must be a list of class names, got %r" % (key, value))
    out = set()
    for i, c in enumerate(value):
        if isinstance(c, bool) or not isinstance(c, (str, int)):
            raise ConfigError("config key %s[%d] must be a class name, got %r" % (key, i, c))
        if labels is not None:
            if isinstance(c, int) and not 0 <= c < len(labels):
                raise ConfigError("config key %s[%d]: class index %d is out of range (the model has %d labels)" % (
                    key, i, c, len(labels)))
            if isinstance(c, str) and c not in labels:
                shown = ", ".join(labels[:12]) + (", ..." if len(labels) > 12 else "")
                raise ConfigError("config key %s[%d]: unknown class %r" % (key, i, c),
                                  hint="the model's labels are: %s" % shown)
        out.add(c)
        if labels is not None:          # a name and its index both match
            out.add(labels.index(c) if isinstance(c, str) else labels[c])
    return out


def _rule(kind, item, key, labels, frame_size):
    if not isinstance(item, dict):
        raise ConfigError("config key %s must be a mapping with name and points, got %r" % (key, item))
    allowed = LINE_KEYS if kind == "line" else ZONE_KEYS
    for k in sorted(item, key=str):
        if k not in allowed:
            raise ConfigError("config key %s.%s is unknown" % (key, k), hint="known: %s" % ", ".join(sorted(allowed)))
    for k in ("name", "points"):
        if k not in item:
            raise ConfigError("config key %s.%s is required" % (key, k))
    name = item["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError("config key %s.name must be 1-64 letters, digits, '-' or '_', got %r" % (key, name),
                          hint="names appear in MQTT topics and metric labels")
    coords = item.get("coords", "auto")
    if coords not in ("auto", "normalized", "pixels"):
        raise ConfigError("config key %s.coords must be auto, normalized or pixels, got %r" % (key, coords))
    if kind == "line":
        points, normalized = _points(item["points"], key + ".points", frame_size, coords, exactly=2)
        if points[0] == points[1]:
            raise ConfigError("config key %s.points: the two points are the same" % key, hint="a line needs a length")
    else:
        points, normalized = _points(item["points"], key + ".points", frame_size, coords, at_least=3)
        area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]))
        if abs(area) < 1e-12:
            raise ConfigError("config key %s.points: the polygon has no area" % key, hint="its points are on one line")
    anchor = item.get("anchor", "bottom-center")
    if anchor not in ANCHORS:
        raise ConfigError("config key %s.anchor must be one of %s, got %r" % (key, ", ".join(sorted(ANCHORS)), anchor))
    common = dict(key=key, name=name, points=points, normalized=normalized,
                  classes=_classes(item.get("classes"), key + ".classes", labels),
                  min_score=_number(item.get("min_score", 0.0), key + ".min_score", low=0.0),
                  min_frames=_number(item.get("min_frames", 2), key + ".min_frames", low=1, integer=True),
                  anchor=anchor, margin=_number(item.get("margin", 0.15), key + ".margin", low=0.0))
    if kind == "line":
        side = item.get("in", "right")
        if side not in ("left", "right"):
            raise ConfigError("config key %s.in must be left or right, got %r" % (key, side),
                              hint="the in side, seen walking from the first point to the second")
        return LineRule(in_side=side, **common)
    loiter = item.get("loiter_s")
    if loiter is not None:
        loiter = _number(loiter, key + ".loiter_s", low=0.0)
    return ZoneRule(loiter_s=loiter, **common)


def validate_config(data, labels=None, frame_size=None, key="analytics"):
    """Check a camera's analytics mapping (None: no rules, default tracker). ``labels``: the model's
    class names (unknown names in ``classes`` are then an error); ``frame_size``: (width, height)
    when known. Returns an ``AnalyticsConfig``; raises ``ConfigError`` naming the key."""
    from edgekit.analytics.tracker import make_tracker

    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("config key %s must be a mapping, got %r" % (key, data))
    for k in sorted(data, key=str):
        if k not in TOP_KEYS:
            raise ConfigError("config key %s.%s is unknown" % (key, k), hint="known: %s" % ", ".join(sorted(TOP_KEYS)))
    labels = list(labels) if labels is not None else None
    tracker = data.get("tracker", "bytetrack")
    params = data.get("tracker_params") or {}
    if not isinstance(params, dict):
        raise ConfigError("config key %s.tracker_params must be a mapping, got %r" % (key, params))
    try:
        make_tracker(tracker, **params)
    except ConfigError as exc:
        raise ConfigError("config key %s.%s: %s" % (key, "tracker" if "unknown tracker" in exc.message
                                                      else "tracker_params", exc.message), hint=exc.hint)
    seen = {}
    out = {"line": [], "zone": []}
    for kind, section in (("line", "lines"), ("zone", "zones")):
        items = data.get(section) or []
        if not isinstance(items, list):
            raise ConfigError("config key %s.%s must be a list, got %r" % (key, section, items))
        for i, item in enumerate(items):
            rule = _rule(kind, item, "%s.%s[%d]" % (key, section, i), labels, frame_size)
            if rule.name in seen:
                raise ConfigError("config key %s.name: duplicate rule name %r (also %s)" % (
                    rule.key, rule.name, seen[rule.name]), hint="give every line and zone its own name")
            seen[rule.name] = rule.key + ".name"
            out[kind].append(rule)
    return AnalyticsConfig(tracker, params, out["line"], out["zone"])
