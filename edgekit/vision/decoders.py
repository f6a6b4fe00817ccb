"""Decoder registry: ``meta.decoder["type"]`` -> function(outputs, meta, infos) -> [result per image].

Results (one dict per image):
  classification: {"task": "classification", "top": [{"index", "label", "score"}, ...]}
  detection:      {"task": "detection", "detections": [{"index", "label", "score",
                   "box": [x1, y1, x2, y2]}, ...]}  -- boxes in source-frame pixels
Modules are imported only when their decoder is used.

``DECODERS`` is the one list of decoders: metadata validation (``decoder.type``) reads it. Adding
a decoder is its module plus one line here, e.g.
``DECODERS.register("yolox", "edgekit.vision.yolox:decode", recognise="edgekit.vision.yolox:recognise")``;
``recognise`` (optional) is how ``edgekit.vision.recognise`` tells a third-party file of that format from
its metadata_props or output signature, tried in registration order.
"""

from edgekit.errors import MetadataError
from edgekit.registry import Registry

DECODERS = Registry("decoder", unknown=MetadataError)
DECODERS.register("classification", "edgekit.vision.classify:decode")
DECODERS.register("centernet", "edgekit.vision.centernet:decode")
DECODERS.register("yolov5", "edgekit.vision.yolo:decode_v5", recognise="edgekit.vision.yolo:recognise")
DECODERS.register("yolov8", "edgekit.vision.yolo:decode_v8")          # also YOLO11, YOLO26 (one-to-many)
DECODERS.register("yolo_end2end", "edgekit.vision.yolo:decode_end2end")   # YOLOv10, YOLO26, nms=True: (B, K, 6)
DECODERS.register("rtdetr", "edgekit.vision.rtdetr:decode")
DECODERS.register("yolox", "edgekit.vision.yolox:decode", recognise="edgekit.vision.yolox:recognise")
DECODERS.register("gfl", "edgekit.vision.gfl:decode", recognise="edgekit.vision.gfl:recognise")   # NanoDet-Plus, PicoDet
DECODERS.register("ssd", "edgekit.vision.ssd:decode_ssd", recognise="edgekit.vision.ssd:recognise_ssd")
DECODERS.register("torchvision", "edgekit.vision.ssd:decode_torchvision",
                  recognise="edgekit.vision.ssd:recognise_torchvision")


def names():
    return DECODERS.names()


def get_decoder(name):
    return DECODERS.load(name)


def decode(outputs, meta, infos=None):
    return get_decoder(meta.decoder["type"])(outputs, meta, infos)
