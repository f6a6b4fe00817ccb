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
# doc: what the decoder reads (docs/reference/metadata.md shows it); seen: how a file without edgekit
# metadata is recognised as this format (``recognise``: the function that does it).
DECODERS.register("classification", "edgekit.vision.classify:decode",
                  doc="logits or probabilities (B, classes) -> top-k", seen="edgekit metadata only")
DECODERS.register("centernet", "edgekit.vision.centernet:decode",
                  doc="edgekit's detector: heatmap (B, C, h, w) + regression (B, 4, h, w)", seen="edgekit metadata only")
DECODERS.register("yolov5", "edgekit.vision.yolo:decode_v5", recognise="edgekit.vision.yolo:recognise",
                  doc="Ultralytics YOLOv5 (B, N, 5 + C): cx, cy, w, h, objectness, scores; NMS",
                  seen="Ultralytics metadata_props (names, stride) + output shape")
DECODERS.register("yolov8", "edgekit.vision.yolo:decode_v8",
                  doc="Ultralytics YOLOv8 / YOLO11 / YOLO26 / YOLOv10 one-to-many (B, 4 + C, N); NMS",
                  seen="Ultralytics metadata_props + output shape")
DECODERS.register("yolo_end2end", "edgekit.vision.yolo:decode_end2end",
                  doc="NMS-free (B, K, 6) x1, y1, x2, y2, score, class in input pixels (YOLOv10, YOLO26, nms=True)",
                  seen="Ultralytics metadata_props (end2end, or a (1, K, 6) output)")
DECODERS.register("rtdetr", "edgekit.vision.rtdetr:decode",
                  doc="Ultralytics RT-DETR (B, 300, 4 + C) or (B, K, 6), cx, cy, w, h normalised; no NMS",
                  seen="Ultralytics metadata_props (head RTDETRDecoder, or rtdetr in the description)")
DECODERS.register("yolox", "edgekit.vision.yolox:decode", recognise="edgekit.vision.yolox:recognise",
                  doc="YOLOX (B, A, 5 + C), raw grid outputs (strides 8/16/32) or decoded; obj x cls; NMS",
                  seen="output signature: one (1, A, 5 + C), A = the cells of strides 8/16/32 (raw form)")
DECODERS.register("gfl", "edgekit.vision.gfl:decode", recognise="edgekit.vision.gfl:recognise",
                  doc="GFL heads (NanoDet-Plus, PP-PicoDet): scores + 4 x (reg_max + 1) distributions per anchor, "
                      "one output or two per level; NMS",
                  seen="output signature: A = the cells of strides 8/16/32/64, 32 distribution values")
DECODERS.register("ssd", "edgekit.vision.ssd:decode_ssd", recognise="edgekit.vision.ssd:recognise_ssd",
                  doc="jetson-inference / pytorch-ssd: scores (B, A, C incl. background), boxes (B, A, 4) "
                      "normalised corners; NMS",
                  seen="output names scores and boxes")
DECODERS.register("torchvision", "edgekit.vision.ssd:decode_torchvision",
                  recognise="edgekit.vision.ssd:recognise_torchvision",
                  doc="torchvision detection export with its post-processing: boxes (K, 4), scores (K), labels (K)",
                  seen="output signature: a (3, H, W) input and (K, 4), (K), (K) outputs")

def names():
    return DECODERS.names()


def get_decoder(name):
    return DECODERS.load(name)


def decode(outputs, meta, infos=None):
    return get_decoder(meta.decoder["type"])(outputs, meta, infos)
