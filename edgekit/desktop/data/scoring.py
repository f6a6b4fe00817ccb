"""Detection scores the way the field computes them: COCO mAP with pycocotools (the reference scorer).

  coco_map(preds, gts, num_classes, labels=None) -> {"map50_95", "map50", "per_class": [{"class", "label",
      "ap50_95", "ap50", "gts"}], "scorer"}

Inputs are ``edgekit.vision.metrics``' format (the device-side NumPy scorer, kept for the board and tested
against this one): ``preds[i] = [(cls, score, x1, y1, x2, y2)]`` and ``gts[i] = [(cls, x1, y1, x2, y2)]``
per image, in the same pixels. Scored with COCOeval's bbox protocol unchanged: IoU 0.50:0.95, 101 recall
points, area range "all", at most 100 detections per image; a class without ground truth has AP None
and is left out of the means (COCO's -1). Training, `edgekit quantize`'s accuracy gate and the benchmarks
all call this function.
"""

import contextlib
import io

import numpy as np

MAX_DETS = 100


def _scorer():
    try:
        import pycocotools
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        from edgekit.errors import UserError

        raise UserError("pycocotools is not installed (edgekit scores detectors with it)",
                        hint="pip install 'edgekit[train]' (or pip install pycocotools==2.0.11)")
    return COCO, COCOeval, "pycocotools %s" % getattr(pycocotools, "__version__", "")


def coco_map(preds, gts, num_classes, labels=None):
    if len(preds) != len(gts):
        raise ValueError("coco_map: %d prediction lists for %d images" % (len(preds), len(gts)))
    COCO, COCOeval, name = _scorer()
    images, annotations, dets = [], [], []
    for i, (p_list, g_list) in enumerate(zip(preds, gts)):
        images.append({"id": i + 1})
        for g in g_list:
            c, x1, y1, x2, y2 = int(g[0]), float(g[1]), float(g[2]), float(g[3]), float(g[4])
            if 0 <= c < num_classes:
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": c + 1,
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                    "iscrowd": 0})
        for d in p_list:
            c = int(d[0])
            if 0 <= c < num_classes:
                x1, y1, x2, y2 = (float(v) for v in d[2:6])
                dets.append([i + 1, x1, y1, x2 - x1, y2 - y1, float(d[1]), c + 1])
    gt = COCO()
    gt.dataset = {"images": images, "annotations": annotations,
                  "categories": [{"id": c + 1, "name": str(c)} for c in range(num_classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    counts = np.bincount([a["category_id"] - 1 for a in annotations], minlength=num_classes)
    per_class = [{"class": c, "label": labels[c] if labels else str(c), "ap50_95": None, "ap50": None,
                  "gts": int(counts[c])} for c in range(num_classes)]
    for entry in per_class:
        if entry["gts"]:
            entry["ap50_95"] = entry["ap50"] = 0.0
    if not dets or not annotations:
        return {"map50_95": 0.0, "map50": 0.0, "per_class": per_class, "scorer": name}
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(np.asarray(dets, dtype=np.float64))
        ev = COCOeval(gt, dt, "bbox")
        ev.params.maxDets = [1, 10, MAX_DETS]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"]          # [T iou, R recall, K class, A area, M maxdets]
    aps, ap50s = [], []
    for k, cat in enumerate(ev.params.catIds):
        c = cat - 1
        all_t = precision[:, :, k, 0, -1]
        if not per_class[c]["gts"]:
            continue
        at50 = all_t[0]
        per_class[c]["ap50_95"] = float(np.mean(all_t[all_t > -1])) if (all_t > -1).any() else 0.0
        per_class[c]["ap50"] = float(np.mean(at50[at50 > -1])) if (at50 > -1).any() else 0.0
        aps.append(per_class[c]["ap50_95"])
        ap50s.append(per_class[c]["ap50"])
    return {"map50_95": float(np.mean(aps)) if aps else 0.0, "map50": float(np.mean(ap50s)) if ap50s else 0.0,
            "per_class": per_class, "scorer": name}
