"""Decoder registry: ``meta.decoder["type"]`` -> function(outputs, meta, infos) -> [result per image].

Results (one dict per image):
  classification: {"task": "classification", "top": [{"index", "label", "score"}, ...]}
  detection:      {"task": "detection", "detections": [{"index", "label", "score",
                   "box": [x1, y1, x2, y2]}, ...]}  -- boxes in source-frame pixels
Modules are imported only when their decoder is used.

``DECODERS`` is the one list of decoders: metadata validation (``decoder.type``) reads it. Adding
a decoder is its module plus one line here, e.g.
``DECODERS.register("yolox", "edgekit.vision.yolox:decode")``.
"""

from edgekit.errors import MetadataError
from edgekit.registry import Registry

DECODERS = Registry("decoder", unknown=MetadataError)
DECODERS.register("classification", "edgekit.vision.classify:decode")
DECODERS.register("centernet", "edgekit.vision.centernet:decode")
DECODERS.register("yolov5", "edgekit.vision.yolo:decode_v5")
DECODERS.register("yolov8", "edgekit.vision.yolo:decode_v8")


def names():
    return DECODERS.names()


def get_decoder(name):
    return DECODERS.load(name)


def decode(outputs, meta, infos=None):
    return get_decoder(meta.decoder["type"])(outputs, meta, infos)
