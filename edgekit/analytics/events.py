"""The event record: one schema for every event edgekit's analytics emits (docs/reference/events.md).

An event is a JSON object::

    {"version": 1, "id": "door-1733280000123-7", "type": "line_crossed", "camera": "door",
     "rule": "entrance", "rule_type": "line", "track_id": 17, "label": "person", "class": 0,
     "direction": "in", "time": 1733280000.123, "frame": 4521, "box": [412.0, 230.5, 468.2, 371.0],
     "score": 0.87, "dwell_s": null, "snapshot": null}
"""

EVENT_VERSION = 1
TYPES = ("object_entered", "object_left", "line_crossed", "loitering")
# field -> accepted JSON types (None: null allowed)
FIELDS = (("version", (int,)), ("id", (str,)), ("type", (str,)), ("camera", (str,)), ("rule", (str,)),
          ("rule_type", (str,)), ("track_id", (int,)), ("label", (str,)), ("class", (int,)),
          ("direction", (str, None)), ("time", (float, int)), ("frame", (int, None)),
          ("box", (list,)), ("score", (float, int)), ("dwell_s", (float, int, None)), ("snapshot", (str, None)))


def make_event(kind, camera, rule, rule_type, track_id, label, cls, t, box, score, seq, frame=None,
               direction=None, dwell_s=None):
    """An event dict; ``seq`` numbers the camera's events (it makes ``id`` unique within a run, and
    across runs with the time in milliseconds)."""
    return {"version": EVENT_VERSION, "id": "%s-%d-%d" % (camera, int(round(t * 1000)), seq), "type": kind,
            "camera": camera, "rule": rule, "rule_type": rule_type, "track_id": int(track_id), "label": label,
            "class": int(cls), "direction": direction, "time": round(float(t), 6),
            "frame": None if frame is None else int(frame), "box": [round(float(v), 2) for v in box],
            "score": round(float(score), 4), "dwell_s": None if dwell_s is None else round(float(dwell_s), 3),
            "snapshot": None}


def check_event(event):
    """Problems of an event against the schema (a list of strings; empty when it conforms)."""
    problems = []
    if not isinstance(event, dict):
        return ["an event is a JSON object, got %r" % (event,)]
    for name, types in FIELDS:
        if name not in event:
            problems.append("missing field %s" % name)
            continue
        value = event[name]
        if value is None:
            if None not in types:
                problems.append("field %s is null" % name)
        elif isinstance(value, bool) or not isinstance(value, tuple(t for t in types if t is not None)):
            problems.append("field %s has type %s" % (name, type(value).__name__))
    extra = sorted(set(event) - set(n for n, _ in FIELDS))
    if extra:
        problems.append("unknown fields %s" % ", ".join(extra))
    if not problems:
        if event["version"] != EVENT_VERSION:
            problems.append("version %r, this edgekit writes %d" % (event["version"], EVENT_VERSION))
        if event["type"] not in TYPES:
            problems.append("type %r is not one of %s" % (event["type"], ", ".join(TYPES)))
        if event["rule_type"] not in ("line", "zone"):
            problems.append("rule_type %r is not line or zone" % (event["rule_type"],))
        if (event["type"] == "line_crossed") != (event["direction"] in ("in", "out")):
            problems.append("direction must be in/out for line_crossed and null otherwise")
        if len(event["box"]) != 4:
            problems.append("box must have 4 numbers")
    return problems
