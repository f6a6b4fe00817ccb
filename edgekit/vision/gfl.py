"""Decoder for GFL-style heads: NanoDet-Plus and PP-PicoDet (device side: NumPy only, Python 3.6).

Per anchor: class scores (already through a sigmoid in both exports) and, per box side (left, top, right,
bottom), a distribution over ``reg_max + 1`` bins (Distribution Focal Loss): the side's distance is the
softmax-weighted mean bin times the level's stride, from the anchor centre ``((col + cell_offset) * s,
(row + cell_offset) * s)``. Levels at strides (8, 16, 32, 64), ceil(H / s) x ceil(W / s) cells each,
row-major. Boxes then go through class-aware NMS.

Two output forms, told apart by the number of outputs:
  single  (B, A, C + 4 * (reg_max + 1)): NanoDet-Plus' ``export_onnx.py`` (scores first, then the
          distributions), A over all levels concatenated;
  per level: 2 outputs per level, (B, A_l, C) scores and (B, A_l, 4 * (reg_max + 1)) distributions
          (PaddleDetection's PicoDet exported without post-processing), levels ordered by A_l, largest
          first; which of each pair is which is read from the last dimension.

Conventions (set by recognition, all overridable in ``--meta``): NanoDet-Plus: BGR, mean (103.53, 116.28,
123.675) / 255, std (57.375, 57.12, 58.395) / 255, stretch, ``cell_offset: 0``; PicoDet: RGB, ImageNet
mean/std, stretch, ``cell_offset: 0.5``.

Decoder parameters: score_threshold (0.35), iou_threshold (0.6), max_detections (100), class_agnostic,
max_candidates, strides ([8, 16, 32, 64]), reg_max (7), cell_offset (0), sigmoid (false: apply a sigmoid
to the scores first, for exports that leave logits).
"""

import numpy as np

from edgekit.errors import ModelError
from edgekit.vision.yolo import finish_detections, info_at
from edgekit.vision.yolox import anchor_count, grid

DEFAULTS = {"score_threshold": 0.35, "iou_threshold": 0.6, "max_detections": 100, "class_agnostic": False,
            "max_candidates": 3000, "strides": [8, 16, 32, 64], "reg_max": 7, "cell_offset": 0.0,
            "sigmoid": False}
NANODET_PREPROCESS = {"color": "BGR", "resize": "stretch", "mean": [103.53 / 255, 116.28 / 255, 123.675 / 255],
                      "std": [57.375 / 255, 57.12 / 255, 58.395 / 255]}
PICODET_PREPROCESS = {"color": "RGB", "resize": "stretch", "mean": [0.485, 0.456, 0.406],
                      "std": [0.229, 0.224, 0.225]}


def _arrays(outputs):
    if isinstance(outputs, dict):
        return [np.asarray(v) for v in outputs.values()]
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(v) for v in outputs]
    return [np.asarray(outputs)]


def split_outputs(arrays, num_classes, bins):
    """The outputs -> (scores (B, A, C), distributions (B, A, 4 * bins)), levels concatenated."""
    if len(arrays) == 1:
        array = arrays[0]
        if array.ndim != 3 or array.shape[2] != num_classes + 4 * bins:
            raise ModelError("GFL output must be (batch, anchors, %d classes + 4 x %d bins), got shape %s"
                             % (num_classes, bins, array.shape),
                             hint="check labels and decoder.reg_max in the model metadata")
        return array[:, :, :num_classes], array[:, :, num_classes:]
    if num_classes == 4 * bins:
        raise ModelError("per-level GFL outputs with %d classes and 4 x %d bins cannot be told apart"
                         % (num_classes, bins), hint="export the single-output form")
    scores = [a for a in arrays if a.ndim == 3 and a.shape[2] == num_classes]
    dists = [a for a in arrays if a.ndim == 3 and a.shape[2] == 4 * bins]
    if len(scores) != len(dists) or len(scores) + len(dists) != len(arrays):
        raise ModelError("per-level GFL outputs must pair (batch, A, %d) scores with (batch, A, %d) distributions, "
                         "got shapes %s" % (num_classes, 4 * bins, [a.shape for a in arrays]),
                         hint="check labels and decoder.reg_max in the model metadata")
    scores.sort(key=lambda a: -a.shape[1])
    dists.sort(key=lambda a: -a.shape[1])
    if [a.shape[1] for a in scores] != [a.shape[1] for a in dists]:
        raise ModelError("per-level GFL scores and distributions differ in anchors: %s vs %s"
                         % ([a.shape[1] for a in scores], [a.shape[1] for a in dists]))
    return np.concatenate(scores, axis=1), np.concatenate(dists, axis=1)


def distances(dist, bins):
    """(K, 4 * bins) distributions -> (K, 4) expected distances in bins (softmax over each side's bins)."""
    logits = dist.reshape(-1, 4, bins)
    logits = logits - logits.max(axis=2, keepdims=True)
    weights = np.exp(logits)
    weights /= weights.sum(axis=2, keepdims=True)
    return (weights * np.arange(bins, dtype=np.float32)).sum(axis=2)


def decode(outputs, meta, infos=None):
    params = dict(DEFAULTS)
    params.update({k: v for k, v in meta.decoder.items() if v is not None})
    bins = int(params["reg_max"]) + 1
    scores_all, dists_all = split_outputs(_arrays(outputs), meta.num_classes, bins)
    cells, strides = grid(meta.input_hw, [int(s) for s in params["strides"]], ceil=True)
    if cells.shape[0] != scores_all.shape[1]:
        raise ModelError("GFL output has %d anchors but strides %s of a %dx%d input give %d"
                         % (scores_all.shape[1], params["strides"], meta.input_hw[0], meta.input_hw[1],
                            cells.shape[0]), hint="set decoder.strides in the model metadata")
    centres = (cells + float(params["cell_offset"])) * strides[:, None]
    threshold = float(params["score_threshold"])
    results = []
    for i in range(scores_all.shape[0]):
        scores = scores_all[i].astype(np.float32)
        if params["sigmoid"]:
            scores = 1.0 / (1.0 + np.exp(-scores))
        best = scores.max(axis=1)
        keep = np.nonzero(best > threshold)[0]
        classes = scores[keep].argmax(axis=1)
        d = distances(dists_all[i][keep].astype(np.float32), bins) * strides[keep][:, None]
        c = centres[keep]
        boxes = np.concatenate([c - d[:, :2], c + d[:, 2:]], axis=1).astype(np.float32)
        results.append(finish_detections(boxes, best[keep].astype(np.float32), classes, meta, params, info_at(infos, i)))
    return results


def recognise(props, inputs, outputs):
    """NanoDet-Plus (one output) or PicoDet (2 per level) at strides 8/16/32/64 of a fixed input, reg_max 7."""
    from edgekit.vision.recognise import build_meta, default_labels, fixed_hw

    if not inputs or not outputs:
        return None
    hw = fixed_hw(inputs[0][1])
    shapes = [s for _, s in outputs]
    if hw is None or not all(len(s) == 3 and all(isinstance(d, int) for d in s[1:]) for s in shapes):
        return None
    bins = DEFAULTS["reg_max"] + 1
    strides = DEFAULTS["strides"]
    if len(shapes) == 1:
        shape = shapes[0]
        if shape[1] != anchor_count(hw, strides, ceil=True) or shape[2] <= 4 * bins:
            return None
        count, framework, preprocess, offset = shape[2] - 4 * bins, "nanodet-plus", NANODET_PREPROCESS, 0.0
        what = "%s %s = (1, anchors of strides 8/16/32/64, classes + 4 x %d bins): NanoDet-Plus" % (
            outputs[0][0], shape, bins)
    elif len(shapes) == 2 * len(strides):
        per_level = sorted(set(s[1] for s in shapes), reverse=True)
        expected = [anchor_count(hw, [s], ceil=True) for s in strides]
        dists = [s for s in shapes if s[2] == 4 * bins]
        others = [s for s in shapes if s[2] != 4 * bins]
        if per_level != expected or len(dists) != len(strides) or len(set(s[2] for s in others)) != 1:
            return None
        count, framework, preprocess, offset = others[0][2], "picodet", PICODET_PREPROCESS, 0.5
        what = "%d outputs, scores and 4 x %d-bin distributions per level at strides 8/16/32/64: PicoDet" % (
            len(shapes), bins)
    else:
        return None
    labels, note = default_labels(count)
    decoder = dict(DEFAULTS, type="gfl", cell_offset=offset)
    how = "output signature: %s (%dx%d input); %s" % (what, hw[0], hw[1], note)
    return build_meta(labels, inputs[0][0], hw, dict(preprocess), decoder, framework, how)
