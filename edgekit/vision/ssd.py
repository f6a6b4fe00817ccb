"""Decoders for SSD exports (device side: NumPy only, Python 3.6).

``ssd``: jetson-inference's ONNX layout (pytorch-ssd ``train_ssd.py`` + ``onnx_export.py``): outputs
  ``scores`` (B, A, C) class probabilities after a softmax, class 0 the background, and ``boxes``
  (B, A, 4) already decoded from the priors to corners x1, y1, x2, y2 normalised to 0..1. Per class
  (the background skipped) scores above the threshold, then class-aware NMS. ``labels`` list every
  class including the background, as jetson-inference's labels.txt does (``BACKGROUND`` first).
  Preprocessing as jetson-inference feeds it: RGB, (pixel - 127) / 128, stretch to the input size.
  Recognised from the output names ``scores`` and ``boxes`` and their shapes.
  Parameters: score_threshold (0.5, jetson-inference's default), iou_threshold (0.45), max_detections
  (100), background (0; null when there is none), class_agnostic, max_candidates, normalized (true).

``torchvision``: a torchvision detection model exported with its post-processing inside
  (``ssdlite320_mobilenet_v3_large`` and ``ssd300_vgg16``: ``torch.onnx.export(model, ([image],))``):
  input one image (3, H, W) in 0..1 RGB, no batch axis (``layout: CHW``; resizing and normalisation are
  in the graph), outputs ``boxes`` (K, 4) x1, y1, x2, y2 in input pixels, ``scores`` (K,), ``labels``
  (K,) int64 class ids, torchvision's own NMS already done. The decoder thresholds and sorts; labels
  index torchvision's category list (COCO's 91 with ``__background__`` and ``N/A``). Recognised from a
  3-D image input and outputs (K, 4), (K,), (K,).
  Parameters: score_threshold (0.3), max_detections (100).
"""

import numpy as np

from edgekit.errors import ModelError
from edgekit.vision.yolo import detection_result, finish_detections, info_at

SSD_DEFAULTS = {"score_threshold": 0.5, "iou_threshold": 0.45, "max_detections": 100, "background": 0,
                "class_agnostic": False, "max_candidates": 3000, "normalized": True}
SSD_PREPROCESS = {"color": "RGB", "resize": "stretch", "mean": [127.0 / 255] * 3, "std": [128.0 / 255] * 3}


def _named(outputs, names, ranks):
    """Arrays by name, else by position; a clear error when the shapes do not fit."""
    if isinstance(outputs, dict) and all(n in outputs for n in names):
        return [np.asarray(outputs[n]) for n in names]
    arrays = list(outputs.values()) if isinstance(outputs, dict) else list(outputs)
    arrays = [np.asarray(a) for a in arrays]
    if len(arrays) != len(names) or [a.ndim for a in arrays] != list(ranks):
        raise ModelError("expected outputs %s of ranks %s, got shapes %s"
                         % (", ".join(names), list(ranks), [a.shape for a in arrays]),
                         hint="check decoder.type in the model metadata")
    return arrays


def decode_ssd(outputs, meta, infos=None):
    params = dict(SSD_DEFAULTS)
    params.update({k: v for k, v in meta.decoder.items() if k != "background" and v is not None})
    background = meta.decoder.get("background", 0)
    scores_all, boxes_all = _named(outputs, ("scores", "boxes"), (3, 3))
    if scores_all.shape[2] == 4 and boxes_all.shape[2] != 4:
        scores_all, boxes_all = boxes_all, scores_all
    if boxes_all.shape[2] != 4 or boxes_all.shape[:2] != scores_all.shape[:2]:
        raise ModelError("SSD outputs must be scores (B, A, C) and boxes (B, A, 4), got %s and %s"
                         % (scores_all.shape, boxes_all.shape))
    h, w = meta.input_hw
    scale = np.array([w, h, w, h], np.float32) if params["normalized"] else np.ones(4, np.float32)
    threshold = float(params["score_threshold"])
    results = []
    for i in range(scores_all.shape[0]):
        scores = scores_all[i].astype(np.float32)
        if background is not None:
            scores = scores.copy()
            scores[:, int(background)] = 0.0
        anchors, classes = np.nonzero(scores > threshold)          # every class above threshold, as SSD does
        boxes = boxes_all[i][anchors].astype(np.float32) * scale
        results.append(finish_detections(boxes, scores[anchors, classes], classes, meta, params, info_at(infos, i)))
    return results


def decode_torchvision(outputs, meta, infos=None):
    params = {"score_threshold": 0.3, "max_detections": 100}
    params.update({k: v for k, v in meta.decoder.items() if v is not None})
    boxes, scores, labels = _named(outputs, ("boxes", "scores", "labels"), (2, 1, 1))
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ModelError("torchvision boxes must be (K, 4), got %s" % (boxes.shape,))
    keep = np.nonzero(scores > float(params["score_threshold"]))[0]
    keep = keep[np.argsort(-scores[keep], kind="mergesort")][:int(params["max_detections"])]
    result = detection_result(boxes[keep].astype(np.float32), scores[keep].astype(np.float32),
                     labels[keep].astype(np.int64), meta, info_at(infos, 0))
    return [result]


def recognise_ssd(props, inputs, outputs):
    from edgekit.vision.recognise import build_meta, fixed_hw

    shapes = dict(outputs)
    if set(shapes) != {"scores", "boxes"} or not inputs:
        return None
    scores, boxes = shapes["scores"], shapes["boxes"]
    hw = fixed_hw(inputs[0][1])
    if hw is None or len(scores) != 3 or len(boxes) != 3 or boxes[2] != 4 or not isinstance(scores[2], int):
        return None
    count = scores[2]
    labels = ["BACKGROUND"] + ["class%d" % i for i in range(1, count)]
    how = ("output signature: scores %s and boxes %s (jetson-inference / pytorch-ssd layout, class 0 the "
           "background); labels: BACKGROUND, class1..class%d (give labels.txt's names with --meta FILE.yaml)"
           % (scores, boxes, count - 1))
    return build_meta(labels, inputs[0][0], hw, dict(SSD_PREPROCESS), dict(SSD_DEFAULTS, type="ssd"),
                      "pytorch-ssd", how)


def recognise_torchvision(props, inputs, outputs):
    from edgekit.vision.recognise import build_meta, coco91, fixed_hw

    if len(inputs) != 1 or len(outputs) != 3:
        return None
    ranks = [len(s) for _, s in outputs]
    hw = fixed_hw(inputs[0][1], rank=3)
    if hw is None or inputs[0][1][0] != 3 or ranks != [2, 1, 1] or outputs[0][1][1] != 4:
        return None
    how = ("output signature: a 3-D image input %s and outputs %s: a torchvision detection model exported with "
           "its post-processing; labels: torchvision's COCO categories (give others with --meta FILE.yaml)"
           % (inputs[0][1], ", ".join("%s %s" % o for o in outputs)))
    preprocess = {"color": "RGB", "resize": "stretch", "mean": [0.0] * 3, "std": [1.0] * 3}
    return build_meta(coco91(), inputs[0][0], hw, preprocess, {"type": "torchvision", "score_threshold": 0.3,
                                                                "max_detections": 100},
                      "torchvision", how, layout="CHW")
