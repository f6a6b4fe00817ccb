"""Accuracy of an ONNX model over a dataset, and agreement between two models, on ONNX Runtime CPU.

Images go through ``Preprocessor.from_meta`` once; both models run through ``Predictor`` (the
shared runner + decoder path the daemon uses). Measures:

- classification with labels (ImageFolder): top-1 accuracy;
- detection with labels (YOLO data.yaml): mAP@0.5 (``edgekit.vision.metrics.evaluate_detections``)
  over detections scoring at least 0.05 (as training evaluates; ``eval_meta``);
- always, between a reference and a candidate model: ``top1`` agreement (same top class; for
  detectors, same class of the best detection above the served score threshold with IoU >= 0.5,
  or both empty) and ``cosine``
  (mean over images of the cosine similarity of all raw outputs).
"""

import os
import statistics
import time

import numpy as np

from edgekit.errors import DatasetError
from edgekit.progress import progress, say


class EvalSet(object):
    """Preprocessed images plus optional targets (class index per image, or gt boxes per image)."""

    def __init__(self, items, targets=None, kind="unlabelled", source=None, paths=None):
        self.items = items              # [(tensor 1xCxHxW, LetterboxInfo, (h, w))]
        self.targets = targets          # None, [model class index], or [[(cls, x1, y1, x2, y2)]]
        self.kind = kind                # "imagefolder" | "yolo" | "unlabelled"
        self.source = source
        self.paths = paths or []

    def __len__(self):
        return len(self.items)

    @property
    def labelled(self):
        return self.targets is not None

    def subset(self, n):
        return EvalSet(self.items[:n], None if self.targets is None else self.targets[:n], self.kind,
                       self.source, self.paths[:n])


# -- datasets -----------------------------------------------------------------------------------
def _label_map(dataset_names, model_labels, source):
    """Dataset class index -> model class index, by name. DatasetError when names do not match."""
    index = dict((name, i) for i, name in enumerate(model_labels))
    unknown = [name for name in dataset_names if name not in index]
    if unknown:
        raise DatasetError("validation labels do not match the model's: %s has %s, which the model does not "
                           "know (model labels: %s)" % (source, ", ".join(repr(u) for u in unknown[:3]),
                                                        ", ".join(model_labels[:8])),
                           hint="validate with a set labelled with the model's classes")
    return [index[name] for name in dataset_names]


def _is_yolo(path):
    return (os.path.isfile(path) and path.endswith((".yaml", ".yml"))) or \
        os.path.isfile(os.path.join(path, "data.yaml"))


def load_val(val, meta, show=True):
    """--val DIR -> labelled EvalSet: ImageFolder for classifiers, YOLO (data.yaml) for detectors."""
    from edgekit.desktop.data import datasets as data
    from edgekit.desktop.quantize.calibration import load_tensors

    val = os.fspath(val)
    if not os.path.exists(val):
        raise DatasetError("validation set not found: %s" % val, hint="check --val")
    if meta.task == "detection":
        from edgekit.desktop.data.annotations import detect_format, load_detection

        try:
            fmt = detect_format(val)
        except DatasetError:
            raise DatasetError("%s is not a detection dataset (YOLO data.yaml, COCO JSON or Pascal VOC); a detector "
                               "is validated on one" % val,
                               hint="give --val the folder holding data.yaml, COCO annotations or VOC Annotations/")
        samples, names = load_detection(val, split="val", fmt=fmt)
        mapping = _label_map(names, meta.labels, val)
        paths = [s[0] for s in samples]
        items = load_tensors(paths, meta, what="validation", show=show)
        targets = []
        for (_path, labels), (_, _, (h, w)) in zip(samples, items):
            boxes = []
            for cls, cx, cy, bw, bh in labels.tolist():
                boxes.append((mapping[int(cls)], (cx - bw / 2) * w, (cy - bh / 2) * h,
                              (cx + bw / 2) * w, (cy + bh / 2) * h))
            targets.append(boxes)
        return EvalSet(items, targets, fmt, val, paths)
    if _is_yolo(val):
        raise DatasetError("%s is a YOLO detection set but the model is a classifier" % val,
                           hint="give --val an ImageFolder (VAL/<class>/<image>)")
    root = val
    if os.path.isdir(os.path.join(val, "val")) and os.path.isdir(os.path.join(val, "train")):
        root = os.path.join(val, "val")
        say("validation: using %s (the val split of %s)" % (root, val))
    samples, names = data.list_image_folder(root)
    mapping = _label_map(names, meta.labels, root)
    paths = [s[0] for s in samples]
    items = load_tensors(paths, meta, what="validation", show=show)
    return EvalSet(items, [mapping[s[1]] for s in samples], "imagefolder", root, paths)


def from_images(paths, meta, show=True):
    from edgekit.desktop.quantize.calibration import load_tensors

    return EvalSet(load_tensors(paths, meta, what="held-out", show=show), None, "unlabelled", None, list(paths))


# -- running ------------------------------------------------------------------------------------
MAP_SCORE_THRESHOLD = 0.05     # detections kept for mAP (as training's evaluation does)


def eval_meta(meta):
    """The metadata evaluation runs with: a detector's score threshold lowered to 0.05 for mAP."""
    threshold = meta.decoder.get("score_threshold")
    if meta.task != "detection" or threshold is None or threshold <= MAP_SCORE_THRESHOLD:
        return meta
    decoder = dict(meta.decoder)
    decoder["score_threshold"] = MAP_SCORE_THRESHOLD
    return meta.replace(decoder=decoder)


class Run(object):
    """Raw outputs and decoded results of one model over an EvalSet."""

    def __init__(self, outputs, results):
        self.outputs = outputs          # [ {name: array} ]
        self.results = results          # [ decoder result dict ]


def run_model(model_path, meta, evalset, desc="evaluating", show=True):
    from edgekit.predictor import Predictor

    outputs, results = [], []
    with Predictor.open(str(model_path), backend="onnxruntime", meta=meta) as predictor:
        name = predictor.input_name
        with progress(total=len(evalset), desc=desc, disable=None if show else True) as bar:
            for tensor, info, _ in evalset.items:
                out = predictor.infer({name: tensor})
                outputs.append(out)
                results.append(predictor.postprocess(out, info))
                bar.update(1)
    return Run(outputs, results)


def _top(result, min_score=None):
    if result.get("task") == "classification":
        return result["top"][0]["index"] if result["top"] else None
    dets = [d for d in result.get("detections") or [] if min_score is None or d["score"] >= min_score]
    return max(dets, key=lambda d: d["score"]) if dets else None


def _iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _same_top(ref, cand, min_score=None):
    a, b = _top(ref, min_score), _top(cand, min_score)
    if a is None or b is None or not isinstance(a, dict):
        return a == b
    return a["index"] == b["index"] and _iou(a["box"], b["box"]) >= 0.5


def cosine(a, b):
    a = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in a])
    b = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in b])
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(np.dot(a, b) / (na * nb))


def agreement(ref, cand, min_score=None):
    """{"top1": share of images with the same top prediction, "cosine": mean output cosine, "images"}.

    ``min_score``: for detectors, only detections the served model would report (its own
    score threshold) compete for the top; both empty counts as agreeing."""
    n = len(ref.results)
    same = sum(1 for r, c in zip(ref.results, cand.results) if _same_top(r, c, min_score))
    cos = [cosine([o[k] for k in sorted(o)], [q[k] for k in sorted(q)]) for o, q in zip(ref.outputs, cand.outputs)]
    return {"top1": same / float(n) if n else None, "cosine": float(np.mean(cos)) if cos else None, "images": n}


def noise(ref, cand):
    """Mean relative output error ||cand - ref||^2 / ||ref||^2 (the sensitivity score)."""
    values = []
    for o, q in zip(ref.outputs, cand.outputs):
        a = np.concatenate([np.asarray(o[k], dtype=np.float64).ravel() for k in sorted(o)])
        b = np.concatenate([np.asarray(q[k], dtype=np.float64).ravel() for k in sorted(q)])
        values.append(float(np.sum((a - b) ** 2) / max(np.sum(a ** 2), 1e-12)))
    return float(np.mean(values)) if values else 0.0


def metric(run, evalset, meta):
    """{"accuracy": x} or {"map50_95", "map50", "per_class_ap50_95"} (0..1, COCO mAP by pycocotools) when the
    set is labelled, else {}."""
    if not evalset.labelled:
        return {}
    if meta.task == "classification":
        hits = sum(1 for r, t in zip(run.results, evalset.targets) if _top(r) == t)
        return {"accuracy": hits / float(len(evalset))}
    from edgekit.desktop.data.scoring import coco_map

    preds = [[(d["index"], d["score"]) + tuple(d["box"]) for d in r.get("detections") or []] for r in run.results]
    scores = coco_map(preds, evalset.targets, meta.num_classes, labels=meta.labels)        # pycocotools
    return {"map50_95": float(scores["map50_95"]), "map50": float(scores["map50"]),
            "per_class_ap50_95": [c["ap50_95"] for c in scores["per_class"]]}


# -- latency ------------------------------------------------------------------------------------
def latency_side_by_side(paths, feed, repeats=5, block_ms=100.0, threads=None):
    """ONNX Runtime CPU latency of several models, measured alternately (A, B, A, B...).

    ``paths``: {name: model path}. Each block runs one model enough times to last about
    ``block_ms``; the figure per model is the median over blocks of the block's mean (ms).
    """
    import onnxruntime as ort

    sessions = {}
    for name, path in paths.items():
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = int(threads)
        sessions[name] = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    iters = {}
    for name, sess in sessions.items():
        input_name = sess.get_inputs()[0].name
        for _ in range(3):
            sess.run(None, {input_name: feed})
        start = time.perf_counter()
        sess.run(None, {input_name: feed})
        one = (time.perf_counter() - start) * 1000.0
        iters[name] = max(3, min(200, int(block_ms / max(one, 1e-3))))
    samples = dict((name, []) for name in sessions)
    for _ in range(repeats):
        for name, sess in sessions.items():
            input_name = sess.get_inputs()[0].name
            start = time.perf_counter()
            for _ in range(iters[name]):
                sess.run(None, {input_name: feed})
            samples[name].append((time.perf_counter() - start) * 1000.0 / iters[name])
    return dict((name, statistics.median(values)) for name, values in samples.items())
