"""Decoder for YOLOX ONNX exports (Megvii's tools/export_onnx.py; device side: NumPy only, Python 3.6).

Output (B, A, 5 + C), rows [x, y, w, h, objectness, class scores...], objectness and class scores already
through a sigmoid in the graph; A = sum over the strides (8, 16, 32) of (H / s) * (W / s), the levels
concatenated, each level's cells row by row.
  raw (the default export, ``decoded: false``): x, y are offsets in cells and w, h log sizes in cells:
      cx = (x + col) * s, cy = (y + row) * s, w = exp(w) * s, h = exp(h) * s;
  decoded (exported with ``--decode_in_inference``, ``decoded: true``): x, y, w, h already centre and size
      in model-input pixels.
Score = objectness * class score; class-aware NMS (``class_agnostic`` to suppress across classes).

YOLOX's own preprocessing: BGR, pixel values 0..255 (no mean/std: ``std`` 1/255 here), letterbox with the
image at the top-left corner and 114 padding (``pad_position: top_left``). Recognised from the signature:
one rank-3 output whose A matches three levels at strides 8/16/32 of the fixed input size (YOLOv5 has three
anchors per cell, so 3 A) -- the raw form; a decoded export looks the same and needs
``decoder: {type: yolox, decoded: true}`` in ``--meta``.

Decoder parameters (``meta.decoder``): score_threshold (0.25), iou_threshold (0.45), max_detections (100),
class_agnostic, max_candidates, strides ([8, 16, 32]), decoded (false), output.
"""

import numpy as np

from edgekit.errors import ModelError
from edgekit.vision.yolo import finish_detections, info_at, pick_output

DEFAULTS = {"score_threshold": 0.25, "iou_threshold": 0.45, "max_detections": 100, "class_agnostic": False,
            "max_candidates": 3000, "strides": [8, 16, 32], "decoded": False}
YOLOX_PREPROCESS = {"color": "BGR", "resize": "letterbox", "mean": [0.0, 0.0, 0.0], "std": [1.0 / 255] * 3,
                    "pad_value": 114, "pad_position": "top_left"}


def grid(hw, strides, ceil=False):
    """(A, 2) cell column, row and (A,) stride for every anchor, levels in order, row-major inside each."""
    cells, level_strides = [], []
    for s in strides:
        gh, gw = (-(-hw[0] // s), -(-hw[1] // s)) if ceil else (hw[0] // s, hw[1] // s)
        rows, cols = np.meshgrid(np.arange(gh, dtype=np.float32), np.arange(gw, dtype=np.float32), indexing="ij")
        cells.append(np.stack([cols.reshape(-1), rows.reshape(-1)], axis=1))
        level_strides.append(np.full(gh * gw, s, dtype=np.float32))
    return np.concatenate(cells), np.concatenate(level_strides)


def anchor_count(hw, strides, ceil=False):
    if ceil:
        return sum((-(-hw[0] // s)) * (-(-hw[1] // s)) for s in strides)
    return sum((hw[0] // s) * (hw[1] // s) for s in strides)


def decode(outputs, meta, infos=None):
    params = dict(DEFAULTS)
    params.update({k: v for k, v in meta.decoder.items() if v is not None})
    array = pick_output(outputs, params).astype(np.float32, copy=False)
    if array.ndim != 3 or array.shape[2] < 6:
        raise ModelError("YOLOX output must be (batch, anchors, 5 + classes), got shape %s" % (array.shape,),
                         hint="check decoder.type in the model metadata")
    cells = strides = None
    if not params["decoded"]:
        cells, strides = grid(meta.input_hw, [int(s) for s in params["strides"]])
        if cells.shape[0] != array.shape[1]:
            raise ModelError("YOLOX output has %d anchors but strides %s of a %dx%d input give %d"
                             % (array.shape[1], params["strides"], meta.input_hw[0], meta.input_hw[1], cells.shape[0]),
                             hint="set decoder.strides, or decoder.decoded: true for a --decode_in_inference export")
    threshold = float(params["score_threshold"])
    results = []
    for i in range(array.shape[0]):
        rows = array[i]
        keep = np.nonzero(rows[:, 4] > threshold)[0]                 # obj * cls <= obj: a safe pre-filter
        rows = rows[keep]
        cls_scores = rows[:, 5:] * rows[:, 4:5]
        classes = cls_scores.argmax(axis=1) if rows.shape[0] else np.zeros((0,), np.int64)
        scores = cls_scores[np.arange(rows.shape[0]), classes]
        mask = scores > threshold
        xywh = rows[mask, :4]
        if cells is not None:
            s = strides[keep][mask][:, None]
            xywh = np.concatenate([(xywh[:, :2] + cells[keep][mask]) * s, np.exp(xywh[:, 2:4]) * s], axis=1)
        boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:4] / 2.0, xywh[:, :2] + xywh[:, 2:4] / 2.0], axis=1)
        results.append(finish_detections(boxes.astype(np.float32), scores[mask].astype(np.float32), classes[mask], meta,
                               params, info_at(infos, i)))
    return results


def recognise(props, inputs, outputs):
    """One rank-3 output (1, A, 5 + C) with A = the three levels 8/16/32 of a fixed input: raw YOLOX."""
    from edgekit.vision.recognise import build_meta, default_labels, fixed_hw

    if len(outputs) != 1 or not inputs:
        return None
    hw = fixed_hw(inputs[0][1])
    shape = outputs[0][1]
    if hw is None or len(shape) != 3 or not all(isinstance(d, int) for d in shape[1:]) or shape[2] < 6:
        return None
    if shape[1] != anchor_count(hw, DEFAULTS["strides"]):
        return None
    labels, note = default_labels(shape[2] - 5)
    how = ("output signature: %s %s = (1, anchors of strides 8/16/32 at %dx%d, 5 + %d classes): YOLOX, raw grid "
           "outputs assumed (a --decode_in_inference export needs decoder.decoded: true); %s"
           % (outputs[0][0], shape, hw[0], hw[1], shape[2] - 5, note))
    decoder = dict(DEFAULTS, type="yolox")
    return build_meta(labels, inputs[0][0], hw, dict(YOLOX_PREPROCESS), decoder, "yolox", how)
