"""Concrete sizes for models with dynamic input dimensions (device side: no onnx needed).

Third-party ONNX files often leave the batch, height and width symbolic (``p2o.DynamicDimension.1``,
``height``, ``batch``). Inspect, profile and the engine build need numbers. In order of trust:

1. what the user says: ``--input-size HxW`` (height/width of the 4-D image input);
2. what the model says about itself: the edgekit metadata's input shape, or Ultralytics' ``imgsz`` in
   ``metadata_props`` (``[640, 640]``);
3. nothing known: no guess is used for counting; advice shows concrete numbers (``EXAMPLE_HW``) and says
   they are an example.

A dynamic batch (dimension 0) is 1; a dynamic channel count of a 4-D input is 3.
"""

import ast
import json
import re

from edgekit.errors import ConfigError

EXAMPLE_HW = (640, 640)      # the size advice shows when the model does not say (detectors' usual size)


def parse_input_size(value):
    """224, "224", "224x320", (224, 320) -> (H, W); None stays None."""
    if value is None:
        return None
    if isinstance(value, int):
        value = (value, value)
    if isinstance(value, str):
        match = re.match(r"^(\d+)(?:[xX,](\d+))?$", value.strip())
        if not match:
            raise ConfigError("bad --input-size %r" % value, hint="use H or HxW, e.g. 224 or 256x320")
        value = (int(match.group(1)), int(match.group(2) or match.group(1)))
    h, w = (int(v) for v in value)
    if h < 8 or w < 8 or h > 8192 or w > 8192:
        raise ConfigError("input size %dx%d is out of range" % (h, w), hint="use 8..8192 pixels per side")
    return h, w


def is_static(dim):
    return isinstance(dim, int) and not isinstance(dim, bool) and dim > 0


def size_from_props(props):
    """(H, W, where) from a model's metadata_props ({key: value}), or None."""
    props = props or {}
    text = props.get("edgekit")
    if text:
        try:
            shape = (json.loads(text).get("input") or {}).get("shape") or []
        except (ValueError, AttributeError):
            shape = []
        if len(shape) == 4 and is_static(shape[2]) and is_static(shape[3]):
            return shape[2], shape[3], "the edgekit metadata"
    if "imgsz" in props:
        try:
            size = ast.literal_eval(props["imgsz"])
        except (ValueError, SyntaxError):
            return None
        size = [size, size] if isinstance(size, int) else list(size) if isinstance(size, (list, tuple)) else []
        if len(size) == 2 and all(is_static(v) for v in size):
            return size[0], size[1], "the model's metadata (imgsz)"
    return None


def resolve(dims, hw=None, batch=1):
    """``dims`` (ints and symbol names) with the batch, the channels of a 4-D input and, given ``hw``,
    its height/width made concrete. Other dynamic dimensions stay as they are."""
    out = list(dims or [])
    for i, d in enumerate(out):
        if is_static(d):
            continue
        if i == 0:
            out[i] = batch
        elif len(out) == 4 and i == 1:
            out[i] = 3
        elif len(out) == 4 and i in (2, 3) and hw is not None:
            out[i] = hw[i - 2]
    return out


def dynamic_hw(dims):
    """True when a 4-D input's height or width is dynamic."""
    return len(dims or []) == 4 and not (is_static(dims[2]) and is_static(dims[3]))


def choose(dims, input_size=None, props=None):
    """(H, W, where) for a 4-D input with dynamic height/width: --input-size, else the model's metadata,
    else None."""
    if input_size is not None:
        h, w = parse_input_size(input_size)
        return h, w, "--input-size"
    return size_from_props(props)


def profile_example(name, dims, hw=None, batches=(1, 4, 8)):
    """A concrete ``--shapes`` value for a dynamic input: ``x:1x3x640x640/4x3x640x640/8x3x640x640``.
    The batch varies only when it is dynamic; every other dynamic dimension gets ``hw`` or EXAMPLE_HW
    (height/width of a 4-D input), else 1."""
    hw = hw or EXAMPLE_HW
    dynamic_batch = bool(dims) and not is_static(dims[0])
    shapes = []
    for n in (batches if dynamic_batch else batches[:1]) * (1 if dynamic_batch else 3):
        shape = resolve(dims, hw, batch=n)
        shapes.append("x".join(str(d) if is_static(d) else "1" for d in shape))
    return "%s:%s" % (name, "/".join(shapes))


def example_note(hw_known):
    return "" if hw_known else " (%dx%d is an example: use the size the model was trained at)" % EXAMPLE_HW


def fill_onnx_shapes(path, input_shapes=None, input_size=None, log=None):
    """Shapes for every input of an ONNX file whose height/width is dynamic (for profiling and the
    estimate), from ``input_size`` or the model's metadata; ``input_shapes`` given by the user win.
    Says what it chose through ``log``. Returns {name: dims}."""
    from edgekit.meta import read_onnx_metadata_props
    from edgekit.runners.opencv import onnx_io

    shapes = dict(input_shapes or {})
    inputs, _ = onnx_io(path)
    props = None
    for spec in inputs:
        if spec.name in shapes or not dynamic_hw(spec.shape):
            continue
        if props is None:
            props = read_onnx_metadata_props(path)
        chosen = choose(spec.shape, input_size, props)
        if chosen is None:
            continue
        shapes[spec.name] = resolve(spec.shape, chosen[:2])
        if log:
            log("input %s has a dynamic size %s: using %s from %s" % (
                spec.name, "x".join(str(d) for d in spec.shape), "x".join(str(d) for d in shapes[spec.name]),
                chosen[2]))
    return shapes
