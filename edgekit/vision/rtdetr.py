"""Decoder for Ultralytics RT-DETR ONNX exports (device side: NumPy only, Python 3.6).

Output (B, K, D), boxes centre x, centre y, width, height normalised to 0..1 of the model input:
  ``columns: scores`` (Ultralytics <= 8.3): D = 4 + C, [cx, cy, w, h, class scores...], the scores already
                      through a sigmoid in the graph (K = 300 queries);
  ``columns: class``  (Ultralytics 8.4, head ``RTDETRDecoder`` in metadata_props): D = 6,
                      [cx, cy, w, h, score, class], the top-k over queries x classes done in the graph.
A DETR needs no NMS: the rows are thresholded and sorted. Ultralytics' RT-DETR predictor stretches the
frame to the input size (``scale_fill``), so recognition sets ``resize: stretch``; boxes are scaled by
the input width and height, then mapped back to source-frame pixels.

Decoder parameters (``meta.decoder``): score_threshold (0.25), max_detections (300), columns (default:
``class`` when D == 6 and there are not exactly 2 classes, else ``scores``), normalized (true), output.
"""

import numpy as np

from edgekit.errors import ModelError
from edgekit.vision.yolo import detection_result, info_at, pick_output


def decode(outputs, meta, infos=None):
    params = {"score_threshold": 0.25, "max_detections": 300, "normalized": True}
    params.update({k: v for k, v in meta.decoder.items() if v is not None})
    array = pick_output(outputs, params).astype(np.float32, copy=False)
    if array.ndim != 3 or array.shape[2] < 5:
        raise ModelError("RT-DETR output must be (batch, queries, 4 + classes) or (batch, K, 6), got shape %s"
                         % (array.shape,), hint="check decoder.type in the model metadata")
    columns = params.get("columns") or ("class" if array.shape[2] == 6 and meta.num_classes != 2 else "scores")
    if columns not in ("class", "scores"):
        raise ModelError("RT-DETR decoder.columns must be class or scores, got %r" % (columns,))
    h, w = meta.input_hw
    scale = np.array([w, h, w, h], np.float32) if params["normalized"] else np.ones(4, np.float32)
    results = []
    for i in range(array.shape[0]):
        rows = array[i]
        if columns == "class":
            scores, classes = rows[:, 4], rows[:, 5].astype(np.int64)
        else:
            classes = rows[:, 4:].argmax(axis=1)
            scores = rows[np.arange(rows.shape[0]), 4 + classes]
        keep = np.nonzero(scores > float(params["score_threshold"]))[0]
        keep = keep[np.argsort(-scores[keep], kind="mergesort")][:int(params["max_detections"])]
        xywh = rows[keep, :4] * scale
        boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2.0, xywh[:, :2] + xywh[:, 2:] / 2.0], axis=1)
        results.append(detection_result(boxes, scores[keep].astype(np.float32), classes[keep], meta, info_at(infos, i)))
    return results
