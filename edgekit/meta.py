"""The ``edgekit`` metadata block: what a model needs to be run correctly, carried inside it.

An exported ``.onnx`` stores it in ``metadata_props`` under the key ``edgekit`` as JSON; a
TensorRT engine carries the same JSON in a sidecar ``<engine>.json``; third-party models get it
from CLI flags or a small YAML (``ModelMeta.from_flags``). The README documents the format.

Reading an ONNX file here needs neither onnx nor onnxruntime: ``read_onnx_metadata_props``
walks the protobuf wire format for ``ModelProto.metadata_props`` (field 14) only.
"""

import json

from edgekit.errors import MetadataError, ModelError
from edgekit.vision import decoders

META_KEY = "edgekit"
SCHEMA_VERSION = 1

TASKS = ("classification", "detection")
LAYOUTS = ("NCHW", "NHWC", "CHW")       # CHW: one image, no batch axis (torchvision detection exports)
COLORS = ("RGB", "BGR")
RESIZE_MODES = ("stretch", "letterbox")
PAD_POSITIONS = ("center", "top_left")
PRECISIONS = ("fp32", "fp16", "int8")

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def _need(cond, key, problem):
    if not cond:
        raise MetadataError("edgekit metadata: %s %s" % (key, problem),
                            hint="re-export with `edgekit export`, or pass the field with flags/--meta YAML")


class ModelMeta(object):
    """Validated metadata. Construct with ``ModelMeta.from_dict``; ``to_dict`` for JSON.

    Fields:
      task: "classification" | "detection"
      labels: list of class names (index = class id)
      input: {"name", "shape": [N, C, H, W] (ints, or strings for dynamic dims; [C, H, W] for "CHW"),
              "layout": "NCHW"|"NHWC"|"CHW", "dtype": "float32"|"float16"|"uint8"}
      preprocess: {"color": "RGB"|"BGR", "resize": "stretch"|"letterbox",
                   "mean": [3 floats, 0..1 units], "std": [3 floats], "pad_value": int,
                   "pad_position": "center"|"top_left" (where a letterboxed image sits)}
      decoder: {"type": a name in edgekit.vision.decoders.DECODERS, ...decoder parameters (thresholds,
               stride, top_k)}
      precision: "fp32"|"fp16"|"int8"
      source: {"checkpoint_sha256", "recipe", "framework", ...} (free-form)
      edgekit_version, target (optional), extra (free-form dict)
    """

    def __init__(self, task, labels, input, preprocess, decoder, precision="fp32", source=None,
                 edgekit_version=None, target=None, extra=None):
        self.task = task
        self.labels = list(labels)
        self.input = dict(input)
        self.preprocess = dict(preprocess)
        self.decoder = dict(decoder)
        self.precision = precision
        self.source = dict(source or {})
        if edgekit_version is None:
            from edgekit import __version__ as edgekit_version
        self.edgekit_version = edgekit_version
        self.target = target
        self.extra = dict(extra or {})
        self.validate()

    # -- validation ---------------------------------------------------------------------------
    def validate(self):
        _need(self.task in TASKS, "task", "must be one of %s, got %r" % (TASKS, self.task))
        _need(len(self.labels) > 0 and all(isinstance(x, str) for x in self.labels), "labels",
              "must be a non-empty list of strings")
        shape = self.input.get("shape")
        _need(isinstance(self.input.get("name"), str), "input.name", "must be a string")
        layout = self.input.setdefault("layout", "NCHW")
        _need(layout in LAYOUTS, "input.layout", "must be one of %s" % (LAYOUTS,))
        rank = 3 if layout == "CHW" else 4
        _need(isinstance(shape, list) and len(shape) == rank, "input.shape", "must list %d dimensions" % rank)
        self.input.setdefault("dtype", "float32")
        _need(self.input["dtype"] in ("float32", "float16", "uint8"), "input.dtype",
              "must be float32, float16 or uint8")
        h, w = self.input_hw
        _need(isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0, "input.shape",
              "needs fixed positive height and width")
        p = self.preprocess
        p.setdefault("color", "RGB")
        p.setdefault("resize", "stretch")
        p.setdefault("mean", [0.0, 0.0, 0.0])
        p.setdefault("std", [1.0, 1.0, 1.0])
        p.setdefault("pad_value", 114)
        _need(p["color"] in COLORS, "preprocess.color", "must be one of %s" % (COLORS,))
        _need(p["resize"] in RESIZE_MODES, "preprocess.resize", "must be one of %s" % (RESIZE_MODES,))
        _need(p.get("pad_position", "center") in PAD_POSITIONS, "preprocess.pad_position", "must be one of %s" % (PAD_POSITIONS,))
        for key in ("mean", "std"):
            _need(isinstance(p[key], list) and len(p[key]) == 3, "preprocess.%s" % key, "must list 3 numbers")
            p[key] = [float(v) for v in p[key]]
        _need(all(v > 0 for v in p["std"]), "preprocess.std", "must be positive")
        known = tuple(decoders.names())
        _need(self.decoder.get("type") in known, "decoder.type",
              "must be one of %s, got %r" % (known, self.decoder.get("type")))
        _need(self.precision in PRECISIONS, "precision", "must be one of %s" % (PRECISIONS,))
        return self

    @property
    def input_name(self):
        return self.input["name"]

    @property
    def input_hw(self):
        shape = self.input["shape"]
        layout = self.input.get("layout", "NCHW")
        if layout == "CHW":
            return shape[1], shape[2]
        if layout == "NCHW":
            return shape[2], shape[3]
        return shape[1], shape[2]

    @property
    def num_classes(self):
        return len(self.labels)

    # -- (de)serialisation -----------------------------------------------------------------
    def to_dict(self):
        return {
            "schema_version": SCHEMA_VERSION,
            "task": self.task,
            "labels": list(self.labels),
            "input": dict(self.input),
            "preprocess": dict(self.preprocess),
            "decoder": dict(self.decoder),
            "precision": self.precision,
            "source": dict(self.source),
            "edgekit_version": self.edgekit_version,
            "target": self.target,
            "extra": dict(self.extra),
        }

    def to_json(self):
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise MetadataError("edgekit metadata must be a JSON object")
        version = data.get("schema_version", SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise MetadataError("edgekit metadata schema %s is newer than this edgekit understands (%s)"
                                % (version, SCHEMA_VERSION), hint="upgrade edgekit on this machine")
        missing = [k for k in REQUIRED_FIELDS if k not in data]
        if missing:
            raise MetadataError("edgekit metadata lacks %s" % ", ".join(missing),
                                hint="re-export with `edgekit export`, or give the fields with --meta FILE.yaml")
        try:
            return cls(task=data["task"], labels=data["labels"], input=data["input"],
                       preprocess=data["preprocess"], decoder=data["decoder"],
                       precision=data.get("precision", "fp32"), source=data.get("source"),
                       edgekit_version=data.get("edgekit_version"), target=data.get("target"),
                       extra=data.get("extra"))
        except (TypeError, ValueError, AttributeError) as exc:
            raise MetadataError("edgekit metadata is malformed: %s" % exc)

    @classmethod
    def from_json(cls, text):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise MetadataError("edgekit metadata is not valid JSON: %s" % exc)
        return cls.from_dict(data)

    def replace(self, **changes):
        data = self.to_dict()
        data.update(changes)
        return ModelMeta.from_dict(data)

    def __repr__(self):
        return "ModelMeta(task=%r, labels=%d, input=%r, precision=%r)" % (
            self.task, len(self.labels), self.input.get("shape"), self.precision)


# -- ONNX without onnx ------------------------------------------------------------------------
def _varint(buf, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def proto_fields(buf):
    """Yield (field_number, wire_type, value) of one protobuf message (value: int or memoryview)."""
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise ValueError("truncated field")
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield number, wire, value


def read_onnx_metadata_props(path):
    """Return ``metadata_props`` of an ONNX file as a dict, reading only the protobuf wire format."""
    try:
        with open(path, "rb") as handle:
            data = memoryview(handle.read())
    except OSError as exc:
        raise ModelError("cannot read model %s: %s" % (path, exc.strerror or exc),
                         hint="check the path")
    props = {}
    try:
        for number, wire, value in proto_fields(data):
            if number == 14 and wire == 2:     # ModelProto.metadata_props
                key = val = None
                for sub_number, sub_wire, sub_value in proto_fields(value):
                    if sub_wire != 2:
                        continue
                    if sub_number == 1:
                        key = bytes(sub_value).decode("utf-8")
                    elif sub_number == 2:
                        val = bytes(sub_value).decode("utf-8")
                if key is not None:
                    props[key] = val if val is not None else ""
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError("%s is not a valid ONNX file (%s)" % (path, exc),
                         hint="re-export it, or check that the copy is complete")
    return props


def read_meta(path, required=True):
    """Read the edgekit metadata of a model: ONNX ``metadata_props`` or an engine's sidecar JSON."""
    import os

    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelError("model file not found: %s" % path, hint="check the path")
    if path.endswith(".onnx"):
        props = read_onnx_metadata_props(path)
        text = props.get(META_KEY)
    else:
        sidecar = path + ".json" if not path.endswith(".json") else path
        if not os.path.exists(sidecar):
            sidecar = os.path.splitext(path)[0] + ".json"
        text = None
        if os.path.exists(sidecar):
            with open(sidecar) as handle:
                text = handle.read()
            data = json.loads(text)
            if isinstance(data, dict) and "meta" in data:      # engine sidecar: {"key":…, "meta":…}
                text = json.dumps(data["meta"])
    if text is None and path.endswith(".onnx"):
        # a third-party export: Ultralytics' own metadata_props, or a known output signature
        from edgekit.vision.recognise import recognise_onnx

        meta = recognise_onnx(path)
        if meta is not None:
            return meta
    if text is None:
        if required:
            raise MetadataError("%s carries no edgekit metadata" % path,
                                hint="export it with `edgekit export`, or pass --meta FILE.yaml "
                                "(task, labels, input, preprocess, decoder)")
        return None
    return ModelMeta.from_json(text)


def attach_to_onnx(model_proto, meta):
    """Write ``meta`` into an ``onnx.ModelProto``'s metadata_props (replacing an old entry)."""
    props = model_proto.metadata_props
    for i in reversed(range(len(props))):
        if props[i].key == META_KEY:
            del props[i]
    entry = props.add()
    entry.key = META_KEY
    entry.value = meta.to_json()
    return model_proto


REQUIRED_FIELDS = ("task", "labels", "input", "preprocess", "decoder")


def merge_meta(base, overrides):
    """``overrides`` (a partial metadata dict) over ``base`` (a full one): the mapping fields ``input``,
    ``preprocess``, ``source``, ``extra`` key by key; ``decoder`` key by key when its ``type`` stays, else
    replaced whole (another decoder's parameters would not fit); the rest replaced."""
    out = dict(base)
    for key, value in overrides.items():
        old = out.get(key)
        if key == "decoder" and isinstance(value, dict) and isinstance(old, dict) and \
                value.get("type", old.get("type")) != old.get("type"):
            out[key] = dict(value)
        elif isinstance(value, dict) and isinstance(old, dict):
            merged = dict(old)
            merged.update(value)
            out[key] = merged
        else:
            out[key] = value
    return out


def load_meta_yaml(path, model=None):
    """Metadata for a third-party model from a small YAML file (same fields as the JSON).

    With ``model`` (the model file), the YAML may give only what it changes (``labels: [...]``, or
    ``decoder: {decoded: true}``): it is merged over the model's own metadata -- its edgekit block, or what
    ``edgekit.vision.recognise`` recognised -- when the YAML lacks a required field."""
    from edgekit.yamlfile import load_yaml

    data = load_yaml(path)
    if model is not None and isinstance(data, dict) and any(k not in data for k in REQUIRED_FIELDS):
        base = read_meta(model, required=False)
        if base is not None:
            data = merge_meta(base.to_dict(), data)
    return ModelMeta.from_dict(data)
