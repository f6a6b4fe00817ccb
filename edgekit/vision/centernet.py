"""Decoder for edgekit's tiny CenterNet-style detector (device side: NumPy only, Python 3.6).

Model outputs (ONNX / TensorRT / torch, by name or in this order):
  heatmap     N x C x h x w  float, class-centre probabilities in 0..1 (sigmoid applied in the graph)
  regression  N x 4 x h x w  float, per cell [dx, dy, w, h]: the centre's offset inside the cell
              (0..1) and the box width and height, all in cells (multiply by the stride for pixels)
where h = H / stride and w = W / stride of the model input (stride 4 for ``tiny_centernet``).

Peak extraction is done here, not in the graph: a cell is a detection when its score is the maximum
of its 3x3 neighbourhood (CenterNet's max-pool "NMS") and at least ``score_threshold``. The graph then
holds only ops every TensorRT accepts, and the decoding is one NumPy path for every backend.
An optional box NMS (``nms_iou`` in the decoder metadata; off by default) uses
``edgekit.vision.nms``: per class, or across classes with ``class_agnostic: true`` (one object whose
centre peaks in two class heatmaps then keeps only its best class).

Decoder metadata (``meta.decoder``): {"type": "centernet", "stride": 4, "score_threshold": 0.3,
"top_k": 100, "nms_iou": null, "class_agnostic": false}.
Result per image (edgekit.vision.decoders format): {"task": "detection", "detections": [{"index",
"label", "score", "box": [x1, y1, x2, y2]}]}, boxes in source-frame pixels (via LetterboxInfo).
"""

import numpy as np

from edgekit.vision.nms import nms

OUTPUT_NAMES = ("heatmap", "regression")


def _outputs(outputs):
    if isinstance(outputs, dict):
        if all(name in outputs for name in OUTPUT_NAMES):
            return [np.asarray(outputs[name]) for name in OUTPUT_NAMES]
        outputs = list(outputs.values())
    outputs = [np.asarray(o) for o in outputs]
    if len(outputs) != 2:
        from edgekit.errors import ModelError

        raise ModelError("centernet decoder expects 2 outputs (heatmap, regression), got %d" % len(outputs),
                         hint="check the model's decoder metadata")
    heat, reg = outputs
    if heat.ndim == 4 and reg.ndim == 4 and heat.shape[1] == 4 and reg.shape[1] != 4:
        heat, reg = reg, heat
    return heat, reg


def max_pool3(heat):
    """3x3 max-pool with stride 1 and -inf padding over the last two axes."""
    h, w = heat.shape[-2:]
    padded = np.full(heat.shape[:-2] + (h + 2, w + 2), -np.inf, dtype=heat.dtype)
    padded[..., 1:h + 1, 1:w + 1] = heat
    out = padded[..., 0:h, 0:w].copy()
    for dy in range(3):
        for dx in range(3):
            np.maximum(out, padded[..., dy:dy + h, dx:dx + w], out=out)
    return out


def peaks(heat, score_threshold, top_k):
    """One image's heatmap C x h x w -> (classes, ys, xs, scores) of local maxima, best first."""
    keep = (heat >= max_pool3(heat)) & (heat >= score_threshold)
    cls, ys, xs = np.nonzero(keep)
    scores = heat[cls, ys, xs]
    order = np.argsort(-scores, kind="mergesort")[:top_k]
    return cls[order], ys[order], xs[order], scores[order]


def decode_image(heat, reg, stride=4, score_threshold=0.3, top_k=100, nms_iou=None, class_agnostic=False):
    """One image -> (boxes Kx4 in model-input pixels, scores K, classes K)."""
    heat = np.asarray(heat, dtype=np.float32)
    reg = np.asarray(reg, dtype=np.float32)
    cls, ys, xs, scores = peaks(heat, score_threshold, top_k)
    dx, dy, bw, bh = (reg[i, ys, xs] for i in range(4))
    cx = (xs + dx) * stride
    cy = (ys + dy) * stride
    half_w = np.maximum(bw, 0) * stride / 2.0
    half_h = np.maximum(bh, 0) * stride / 2.0
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1).astype(np.float32)
    if nms_iou is not None and len(boxes):
        kept = nms(boxes, scores, float(nms_iou), classes=None if class_agnostic else cls)
        boxes, scores, cls = boxes[kept], scores[kept], cls[kept]
    return boxes.reshape(-1, 4), scores.astype(np.float32), cls.astype(np.int64)


def decode(outputs, meta, infos=None, score_threshold=None, top_k=None):
    """Model outputs for a batch -> one detection result per image (boxes in frame pixels)."""
    params = meta.decoder
    stride = int(params.get("stride", 4))
    threshold = float(params.get("score_threshold", 0.3) if score_threshold is None else score_threshold)
    k = int(top_k or params.get("top_k", 100))
    nms_iou = params.get("nms_iou")
    agnostic = bool(params.get("class_agnostic", False))
    heat, reg = _outputs(outputs)
    labels = meta.labels
    results = []
    for i in range(heat.shape[0]):
        boxes, scores, classes = decode_image(heat[i], reg[i], stride, threshold, k, nms_iou, agnostic)
        if infos is not None and infos[i] is not None:
            boxes = infos[i].to_frame(boxes)
        results.append({"task": "detection", "detections": [
            {"index": int(c), "label": labels[c] if 0 <= c < len(labels) else str(int(c)),
             "score": float(s), "box": [float(v) for v in b]}
            for b, s, c in zip(boxes, scores, classes)]})
    return results


def to_eval_tuples(result):
    """A decoder result -> [(cls, score, x1, y1, x2, y2)] as ``edgekit.vision.metrics`` takes."""
    return [(d["index"], d["score"]) + tuple(d["box"]) for d in result["detections"]]
