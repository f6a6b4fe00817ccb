"""Scoring tracks against MOTChallenge ground truth with py-motmetrics (``pip install 'edgekit[analytics-eval]'``).

The CLEAR MOT and identity metrics come from motmetrics; edgekit only reads the files and gives it
the IoU distance of every ground-truth box to every track box per frame (1 - IoU, pairs below IoU
0.5 impossible: the MOTChallenge rule). motmetrics 1.4.0's own ``iou_matrix`` calls ``np.asfarray``,
which numpy 2 removed, hence the distance here. motmetrics 1.4.0 has no HOTA.
"""

import numpy as np

from edgekit.errors import UserError

METRICS = ("num_frames", "mota", "motp", "idf1", "idp", "idr", "num_switches", "num_false_positives",
           "num_misses", "mostly_tracked", "mostly_lost", "precision", "recall", "num_unique_objects")


def _motmetrics():
    try:
        import motmetrics
    except ImportError:
        raise UserError("--eval needs py-motmetrics", hint="pip install 'edgekit[analytics-eval]' (motmetrics==1.4.0)")
    return motmetrics


def gt_by_frame(rows):
    """MOTChallenge GT rows -> {frame: (ids, boxes xyxy)}; rows whose flag (column 7) is 0 are
    ignored, as the benchmark does."""
    if rows.shape[1] >= 7:
        rows = rows[rows[:, 6] != 0]
    return _by_frame(rows)


def _by_frame(rows):
    out = {}
    for frame in np.unique(rows[:, 0]).astype(np.int64).tolist():
        sel = rows[rows[:, 0] == frame]
        boxes = np.stack([sel[:, 2], sel[:, 3], sel[:, 2] + sel[:, 4], sel[:, 3] + sel[:, 5]], axis=1)
        out[frame] = (sel[:, 1].astype(np.int64), boxes)
    return out


def evaluate(gt, hyp, name="tracks", iou_threshold=0.5):
    """``gt`` and ``hyp``: {frame: (ids, boxes N x 4 xyxy)}. Returns {metric: value} (MOTA, IDF1, ID
    switches, ...) computed by motmetrics."""
    from edgekit.analytics.tracker import iou_matrix

    mm = _motmetrics()
    acc = mm.MOTAccumulator(auto_id=False)
    empty = (np.zeros(0, dtype=np.int64), np.zeros((0, 4)))
    for frame in sorted(set(gt) | set(hyp)):
        g_ids, g_boxes = gt.get(frame, empty)
        h_ids, h_boxes = hyp.get(frame, empty)
        dist = 1.0 - iou_matrix(g_boxes, h_boxes)
        dist[dist > 1.0 - iou_threshold] = np.nan
        acc.update(g_ids.tolist(), h_ids.tolist(), dist, frameid=int(frame))
    summary = mm.metrics.create().compute(acc, metrics=list(METRICS), name=name)
    row = summary.loc[name]
    out = {}
    for key in METRICS:
        value = row[key]
        out[key] = int(value) if key.startswith("num_") or key.startswith("mostly_") else float(value)
    out["hota"] = None
    return out


def evaluate_files(gt_path, tracks_path):
    from edgekit.analytics.io import read_mot_rows

    gt = gt_by_frame(read_mot_rows(gt_path, "GT"))
    hyp = _by_frame(read_mot_rows(tracks_path, "TRACKS"))
    return evaluate(gt, hyp)


def frames_to_mot(frames_rows):
    """[(frame, tracks M x 7)] -> {frame: (ids, boxes)} for ``evaluate``."""
    return dict((int(f), (t[:, 4].astype(np.int64), t[:, :4])) for f, t in frames_rows)
