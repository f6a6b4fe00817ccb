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


def nms(boxes, scores, iou_threshold=0.45, classes=None, max_det=None):
    """Indices of the boxes kept, highest score first.

    boxes: (N, 4) x1, y1, x2, y2; scores: (N,); classes: (N,) ints for class-aware NMS
    (boxes of different classes never suppress each other) or None for class-agnostic.
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
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    order = np.argsort(-scores, kind="mergesort")     # stable: equal scores keep input order
    keep = []
    while order.size > 0 and len(keep) < limit:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        ix1 = np.maximum(x1[i], x1[rest])
        iy1 = np.maximum(y1[i], y1[rest])
        ix2 = np.minimum(x2[i], x2[rest])
        iy2 = np.minimum(y2[i], y2[rest])
        inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
        union = areas[i] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


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
