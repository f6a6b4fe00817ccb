"""Detection metrics: COCO-style mAP@0.5 and mAP@0.5:0.95 (device side: NumPy only, Python 3.6).

``evaluate_detections(preds, gts, num_classes)``:
  preds[i] = [(cls, score, x1, y1, x2, y2), ...]  detections of image i (pixels)
  gts[i]   = [(cls, x1, y1, x2, y2), ...]         ground truth of image i (same pixels)
returns {"map50", "map50_95", "per_class": [{"class", "ap50", "ap50_95", "gts", "preds"}],
         "iou_thresholds": [...]}

Per class and IoU threshold, detections are sorted by score (stable), each is matched greedily to the
unmatched ground-truth box of the same image with the highest IoU (a match needs IoU >= threshold);
AP is the area under the precision envelope sampled at 101 recall points (COCO). The mean is taken
over classes that have ground truth; classes that have none are listed with ap = None.
Detections with a negative area (x2 < x1 xor y2 < y1) are ignored, as pycocotools ignores them.
tests/desktop/data/test_scoring.py checks this scorer against pycocotools on the same detections.
"""

import numpy as np

IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def iou_matrix(a, b):
    """IoU of every box in a (N, 4) with every box in b (M, 4) -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def average_precision(tp, num_gt):
    """COCO AP from true-positive flags of detections sorted by score, given the ground-truth count."""
    if num_gt == 0:
        return None
    if len(tp) == 0:
        return 0.0
    tp = np.asarray(tp, dtype=np.float64)
    ctp = np.cumsum(tp)
    cfp = np.cumsum(1.0 - tp)
    recall = ctp / num_gt
    precision = ctp / np.maximum(ctp + cfp, 1e-12)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]       # best precision at recall >= r
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)], 0.0)
    return float(sampled.mean())


def _class_ap(dets, gt_boxes, thresholds):
    """dets: [(image, score, box)] of one class; gt_boxes: {image: (M, 4)} -> [AP per threshold]."""
    num_gt = sum(len(b) for b in gt_boxes.values())
    order = sorted(range(len(dets)), key=lambda j: -dets[j][1])
    ious = []
    for j in order:
        image, _, box = dets[j]
        gt = gt_boxes.get(image)
        ious.append(iou_matrix([box], gt)[0] if gt is not None and len(gt) else np.zeros(0))
    aps = []
    for t in thresholds:
        used = dict((image, np.zeros(len(b), dtype=bool)) for image, b in gt_boxes.items())
        tp = np.zeros(len(order))
        for rank, j in enumerate(order):
            image = dets[j][0]
            row = ious[rank]
            if not len(row):
                continue
            candidates = np.where(used[image], -1.0, row)
            best = int(np.argmax(candidates))
            if candidates[best] >= t:
                used[image][best] = True
                tp[rank] = 1.0
        aps.append(average_precision(tp, num_gt))
    return aps, num_gt


def evaluate_detections(preds, gts, num_classes, iou_thresholds=IOU_THRESHOLDS):
    """COCO-style mAP@0.5 and mAP@0.5:0.95 over images (see the module docstring)."""
    if len(preds) != len(gts):
        raise ValueError("evaluate_detections: %d prediction lists for %d images" % (len(preds), len(gts)))
    thresholds = list(iou_thresholds)
    dets = [[] for _ in range(num_classes)]
    gt_boxes = [dict() for _ in range(num_classes)]
    for image, (p_list, g_list) in enumerate(zip(preds, gts)):
        for g in g_list:
            c = int(g[0])
            if 0 <= c < num_classes:
                gt_boxes[c].setdefault(image, []).append([float(v) for v in g[1:5]])
        for p in p_list:
            c = int(p[0])
            if (float(p[4]) - float(p[2])) * (float(p[5]) - float(p[3])) < 0:
                continue        # a negative area is outside COCO's area range: pycocotools ignores it too
            if 0 <= c < num_classes:
                dets[c].append((image, float(p[1]), [float(v) for v in p[2:6]]))
    per_class = []
    ap50s, aps = [], []
    for c in range(num_classes):
        boxes = dict((image, np.asarray(b, dtype=np.float64)) for image, b in gt_boxes[c].items())
        class_aps, num_gt = _class_ap(dets[c], boxes, thresholds)
        if num_gt:
            ap50 = class_aps[thresholds.index(0.5)] if 0.5 in thresholds else class_aps[0]
            ap_all = float(np.mean(class_aps))
            ap50s.append(ap50)
            aps.append(ap_all)
        else:
            ap50 = ap_all = None
        per_class.append({"class": c, "ap50": ap50, "ap50_95": ap_all, "gts": num_gt, "preds": len(dets[c])})
    return {"map50": float(np.mean(ap50s)) if ap50s else 0.0,
            "map50_95": float(np.mean(aps)) if aps else 0.0,
            "per_class": per_class, "iou_thresholds": thresholds}
