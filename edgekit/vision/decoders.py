"""Decoder registry: ``meta.decoder["type"]`` -> function(outputs, meta, infos) -> [result per image].

Results (one dict per image):
  classification: {"task": "classification", "top": [{"index", "label", "score"}, ...]}
  detection:      {"task": "detection", "detections": [{"index", "label", "score",
                   "box": [x1, y1, x2, y2]}, ...]}  -- boxes in source-frame pixels
Modules are imported only when their decoder is used.
"""

import importlib

from edgekit.errors import MetadataError

DECODERS = {
    "classification": "edgekit.vision.classify:decode",
    "centernet": "edgekit.vision.centernet:decode",
    "yolov5": "edgekit.vision.yolo:decode_v5",
    "yolov8": "edgekit.vision.yolo:decode_v8",
}


def get_decoder(name):
    try:
        target = DECODERS[name]
    except KeyError:
        raise MetadataError("unknown decoder %r" % (name,), hint="use one of: %s" % ", ".join(sorted(DECODERS)))
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def decode(outputs, meta, infos=None):
    return get_decoder(meta.decoder["type"])(outputs, meta, infos)
