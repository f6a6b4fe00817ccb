"""Non-maximum suppression in NumPy (device side: numpy 1.19 API, no torch, no cv2).

``nms(boxes, scores, iou_threshold, classes=None, max_det=None) -> indices`` keeps, per class
when ``classes`` is given, the highest-scoring box of every group of boxes overlapping by more
than ``iou_threshold``. Returned indices point into the inputs, best score first.

Class-aware suppression uses the usual offset trick: each class's boxes are shifted by
``class_id * (max coordinate + 1)`` so boxes of different classes never overlap, and one pass of
plain NMS does the work of one pass per class.
"""

import numpy as np


def box_iou(box, boxes):
    """IoU of one box (4,) against many (N, 4), all (x1, y1, x2, y2)."""
    box = np.asarray(box, dtype=np.float32)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    ix1 = np.maximum(box[0], boxes[:, 0])
    iy1 = np.maximum(box[1], boxes[:, 1])
    ix2 = np.minimum(box[2], boxes[:, 2])
    iy2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = max(float(box[2] - box[0]), 0.0) * max(float(box[3] - box[1]), 0.0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


def iou_matrix(a, b):
    """IoU of every box of ``a`` (K, 4) against every box of ``b`` (R, 4) -> (K, R)."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes, scores, iou_threshold=0.45, classes=None, max_det=None, block=64):
    """Indices of the boxes kept, highest score first.

    boxes: (N, 4) x1, y1, x2, y2; scores: (N,); classes: (N,) ints for class-aware NMS
    (boxes of different classes never suppress each other) or None for class-agnostic.

    Exactly the greedy algorithm, done a block of ``block`` boxes at a time: greedy inside the
    block (a small IoU matrix), then the block's survivors suppress all later boxes in one matrix
    operation. Far fewer NumPy calls than one pass per kept box when thousands of candidates come in.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if boxes.shape[0] != scores.shape[0]:
        raise ValueError("nms: %d boxes but %d scores" % (boxes.shape[0], scores.shape[0]))
    if boxes.shape[0] == 0:
        return np.zeros((0,), dtype=np.int64)
    if classes is not None:
        classes = np.asarray(classes).reshape(-1)
        if classes.shape[0] != boxes.shape[0]:
            raise ValueError("nms: %d boxes but %d classes" % (boxes.shape[0], classes.shape[0]))
        span = float(np.abs(boxes).max()) + 1.0
        boxes = boxes + (classes.astype(np.float32) * span)[:, None]
    limit = boxes.shape[0] if max_det is None else int(max_det)
    order = np.argsort(-scores, kind="mergesort")     # stable: equal scores keep input order
    boxes = boxes[order]
    alive = np.ones(boxes.shape[0], dtype=bool)
    keep = []
    start = 0
    while start < boxes.shape[0] and len(keep) < limit:
        idx = np.nonzero(alive[start:])[0][:block] + start
        if idx.size == 0:
            break
        kept = _greedy_block(_overlaps(boxes[idx], boxes[idx], iou_threshold), limit - len(keep))
        kept_idx = idx[kept]
        keep.extend(kept_idx.tolist())
        start = int(idx[-1]) + 1
        rest = np.nonzero(alive[start:])[0] + start
        if rest.size and kept_idx.size:
            suppressed = _overlaps(boxes[kept_idx], boxes[rest], iou_threshold).any(axis=0)
            alive[rest[suppressed]] = False
    return order[np.asarray(keep, dtype=np.int64)]


def _overlaps(a, b, threshold):
    """(K, R) booleans: IoU(a_k, b_r) > threshold, without a division:
    inter / (area_a + area_b - inter) > t  <=>  inter * (1 + t) > t * (area_a + area_b)."""
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    np.clip(iw, 0, None, out=iw)
    np.clip(ih, 0, None, out=ih)
    iw *= ih
    iw *= np.float32(1.0 + threshold)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    return iw > np.float32(threshold) * (area_a[:, None] + area_b[None, :])


def _greedy_block(overlaps, room):
    """Greedy NMS inside one block (``overlaps`` (B, B), boxes in score order)."""
    suppressed = np.zeros(overlaps.shape[0], dtype=bool)
    kept = []
    for j in range(overlaps.shape[0]):
        if suppressed[j]:
            continue
        kept.append(j)
        if len(kept) >= room:
            break
        suppressed |= overlaps[j]
    return np.asarray(kept, dtype=np.int64)


def xywh_to_xyxy(boxes):
    """(N, 4) centre x, centre y, width, height -> x1, y1, x2, y2."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    out = np.empty_like(boxes)
    half_w = boxes[:, 2] / 2.0
    half_h = boxes[:, 3] / 2.0
    out[:, 0] = boxes[:, 0] - half_w
    out[:, 1] = boxes[:, 1] - half_h
    out[:, 2] = boxes[:, 0] + half_w
    out[:, 3] = boxes[:, 1] + half_h
    return out


DEDUPE_IOU = 0.7      # two boxes of different classes this close are one object seen twice


def dedupe_classes(result, iou_threshold=DEDUPE_IOU):
    """One box per object: drop a detection that overlaps a higher-scoring one of another class by
    ``iou_threshold`` or more (class-agnostic suppression after a per-class decoder). A decoder that
    keeps per-class peaks, such as CenterNet without NMS, reports one shape under two classes; a
    tracker would make two tracks of it and count it twice. Returns a new result; others untouched."""
    dets = result.get("detections") if isinstance(result, dict) else None
    if not dets or len(dets) < 2:
        return result
    boxes = np.array([d["box"] for d in dets], dtype=np.float32).reshape(-1, 4)
    scores = np.array([float(d.get("score", 0.0)) for d in dets], dtype=np.float32)
    kept = sorted(nms(boxes, scores, iou_threshold).tolist())
    if len(kept) == len(dets):
        return result
    out = dict(result)
    out["detections"] = [dets[i] for i in kept]
    return out
