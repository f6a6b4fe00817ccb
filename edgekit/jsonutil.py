"""JSON for live outputs (HTTP, MQTT): numpy values become numbers, NaN/Infinity become null
(they are not JSON, and browsers and most MQTT consumers reject them)."""

import json


def json_default(value):
    for attr in ("tolist", "item"):          # numpy arrays and scalars
        if hasattr(value, attr):
            return getattr(value, attr)()
    return str(value)


def finite(value):
    """NaN/Infinity -> None, recursively."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return dict((k, finite(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if hasattr(value, "tolist"):
        return finite(value.tolist())
    return value


def dumps(data, **kwargs):
    """Strict JSON text; the slow NaN-scrubbing pass runs only when the fast one meets a NaN."""
    try:
        return json.dumps(data, default=json_default, allow_nan=False, **kwargs)
    except ValueError:
        return json.dumps(finite(data), default=json_default, allow_nan=False, **kwargs)
