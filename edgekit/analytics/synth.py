"""Generated scenes with known identities, for the tracker's tests and benchmarks (numpy only).

A scene lives in continuous time: each object has a box size, a start point, a velocity in pixels
per second and a life span, and bounces off the frame's borders, so objects cross and hide one
another. ``sample(scene, fps, ...)`` reads it at any frame rate and adds a detector's noise:
missed detections, box jitter (a fraction of the box size), false positives, lower scores for boxes
another object covers, and an occluder band where nothing is detected (objects walk behind it and
come back). The same scene at 5 and at 30 frames/s shows the same objects at the same times.
"""

import numpy as np


class Scene(object):
    """Objects: ``start``/``end`` (s), ``xy`` (centre at ``start``), ``v`` (px/s), ``wh``; ``size``
    (width, height) of the frame; ``occluder`` (x1, x2) or None; ``duration`` in seconds."""

    def __init__(self, start, end, xy, v, wh, size, duration, occluder=None):
        self.start, self.end, self.xy, self.v, self.wh = start, end, xy, v, wh
        self.size, self.duration, self.occluder = size, duration, occluder

    def __len__(self):
        return len(self.start)

    def boxes_at(self, t):
        """(ids 1.., boxes K x 4) of the objects present at time ``t``."""
        alive = np.flatnonzero((self.start <= t) & (t < self.end))
        half = self.wh[alive] / 2
        lo = half
        hi = np.array(self.size, dtype=np.float64)[None, :] - half
        raw = self.xy[alive] + self.v[alive] * (t - self.start[alive])[:, None]
        span = hi - lo
        phase = np.mod(raw - lo, 2 * span)                 # bounce: a triangle wave between lo and hi
        pos = lo + np.where(phase > span, 2 * span - phase, phase)
        boxes = np.concatenate([pos - half, pos + half], axis=1)
        return alive + 1, boxes


def make_scene(n_objects=20, duration=20.0, size=(1280, 720), seed=0, speed=(40.0, 160.0), occluder=True):
    """A scene of ``n_objects`` people-shaped boxes (20-45 px wide, 2-2.6 x as tall), about two
    thirds present the whole time and the others coming and going."""
    rng = np.random.RandomState(seed)
    w = rng.uniform(20, 45, n_objects)
    wh = np.stack([w, w * rng.uniform(2.0, 2.6, n_objects)], axis=1)
    xy = np.stack([rng.uniform(0.1, 0.9, n_objects) * size[0], rng.uniform(0.15, 0.85, n_objects) * size[1]], axis=1)
    angle = rng.uniform(0, 2 * np.pi, n_objects)
    s = rng.uniform(speed[0], speed[1], n_objects)
    v = np.stack([np.cos(angle) * s, np.sin(angle) * s], axis=1)
    start = np.zeros(n_objects)
    end = np.full(n_objects, float(duration) + 1.0)
    coming = rng.rand(n_objects) < 1.0 / 3
    start[coming] = rng.uniform(0, duration * 0.5, coming.sum())
    end[coming] = start[coming] + rng.uniform(duration * 0.3, duration * 0.6, coming.sum())
    occ = (0.48 * size[0], 0.48 * size[0] + 40.0) if occluder else None
    return Scene(start, end, xy, v, wh, size, float(duration), occ)


def sample(scene, fps=30.0, miss=0.1, jitter=0.05, fp=0.5, seed=1, score=(0.6, 0.95), covered_score=(0.2, 0.55)):
    """Frames of ``scene`` at ``fps``: a list of dicts {frame (1..), t, gt (K x 5: x1 y1 x2 y2 id),
    dets (N x 6: x1 y1 x2 y2 score class)}. ``miss`` is the chance a visible object is not detected,
    ``jitter`` the standard deviation of each box edge as a fraction of the box size, ``fp`` the mean
    number of false positives per frame. A box more than 40 % covered by a box nearer the camera
    (lower on the image) scores in ``covered_score``."""
    rng = np.random.RandomState(seed)
    frames = []
    n = int(round(scene.duration * fps))
    for k in range(n):
        t = k / float(fps)
        ids, boxes = scene.boxes_at(t)
        gt = np.concatenate([boxes, ids[:, None].astype(np.float64)], axis=1)
        visible = np.ones(len(ids), dtype=bool)
        if scene.occluder is not None and len(ids):
            cx = (boxes[:, 0] + boxes[:, 2]) / 2
            visible &= ~((cx >= scene.occluder[0]) & (cx <= scene.occluder[1]))
        visible &= rng.rand(len(ids)) >= miss
        det_boxes = boxes[visible]
        wh = np.concatenate([det_boxes[:, 2:] - det_boxes[:, :2]] * 2, axis=1)
        det_boxes = det_boxes + rng.randn(*det_boxes.shape) * jitter * wh
        scores = rng.uniform(score[0], score[1], len(det_boxes))
        covered = _covered(boxes[visible], boxes)
        scores[covered] = rng.uniform(covered_score[0], covered_score[1], int(covered.sum()))
        n_fp = rng.poisson(fp)
        fw = rng.uniform(20, 45, n_fp)
        fxy = rng.uniform(0, 1, (n_fp, 2)) * np.array(scene.size)
        fboxes = np.stack([fxy[:, 0], fxy[:, 1], fxy[:, 0] + fw, fxy[:, 1] + 2.3 * fw], axis=1)
        fscores = rng.uniform(0.1, 0.65, n_fp)
        dets = np.concatenate([np.concatenate([det_boxes, scores[:, None], np.zeros((len(scores), 1))], axis=1),
                               np.concatenate([fboxes, fscores[:, None], np.zeros((n_fp, 1))], axis=1)])
        order = rng.permutation(len(dets))
        frames.append({"frame": k + 1, "t": t, "gt": gt, "dets": dets[order]})
    return frames


def _covered(boxes, all_boxes):
    """Whether each of ``boxes`` is more than 40 % covered by another of ``all_boxes`` nearer the
    camera (bottom edge lower)."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=bool)
    ix = np.clip(np.minimum(boxes[:, None, 2], all_boxes[None, :, 2]) - np.maximum(boxes[:, None, 0], all_boxes[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(boxes[:, None, 3], all_boxes[None, :, 3]) - np.maximum(boxes[:, None, 1], all_boxes[None, :, 1]), 0, None)
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[:, None]
    nearer = all_boxes[None, :, 3] > boxes[:, None, 3] + 1e-9
    return ((ix * iy / area > 0.4) & nearer).any(axis=1)


def crossing_scene(n=200, seed=0, fps=15.0, size=(1280, 720), line_y=400.0, line_x=(400.0, 880.0),
                   speed=150.0, decoys=True):
    """People walking up or down across a horizontal door line from (line_x[0], line_y) to
    (line_x[1], line_y): ``n`` crossings inside the segment in four lanes (so walkers never overlap),
    and with ``decoys`` as many again that must count nothing: walkers crossing beside the segment and
    people standing with their feet on the line. Returns (scene, expected) with expected
    {"in": crossings downwards, "out": upwards, "walkers": {object id: "in" or "out"}} for a line
    whose "in" side is below it (the ids of ``Scene.boxes_at``; decoys have the ids after ``n``)."""
    rng = np.random.RandomState(seed)
    lanes = np.linspace(line_x[0] + 50, line_x[1] - 50, 4)
    starts, ends, xy, v, wh = [], [], [], [], []
    expected = {"in": 0, "out": 0, "walkers": {}}
    gap = 0.7
    travel = 300.0
    for k in range(n):
        t0 = k * gap
        w = rng.uniform(28, 40)
        h = w * 2.4
        down = rng.rand() < 0.5
        x = lanes[k % 4] + rng.uniform(-15, 15)
        y_feet = line_y - travel / 2 if down else line_y + travel / 2
        starts.append(t0)
        ends.append(t0 + travel / speed)
        xy.append((x, y_feet - h / 2))
        v.append((0.0, speed if down else -speed))
        wh.append((w, h))
        expected["in" if down else "out"] += 1
        expected["walkers"][k + 1] = "in" if down else "out"
    if decoys:
        outside = np.concatenate([np.linspace(60, line_x[0] - 60, 3), np.linspace(line_x[1] + 60, size[0] - 60, 3)])
        for k in range(n // 2):
            t0 = k * gap * 2 + gap / 2
            w = rng.uniform(28, 40)
            h = w * 2.4
            down = rng.rand() < 0.5
            y_feet = line_y - travel / 2 if down else line_y + travel / 2
            starts.append(t0)
            ends.append(t0 + travel / speed)
            xy.append((outside[k % len(outside)], y_feet - h / 2))
            v.append((0.0, speed if down else -speed))
            wh.append((w, h))
        for k in range(n // 10):                     # standing on the line between the lanes, 3 s each
            t0 = k * gap * 10 + gap / 3
            w = 34.0
            h = w * 2.4
            starts.append(t0)
            ends.append(t0 + 3.0)
            xy.append(((lanes[k % 3] + lanes[k % 3 + 1]) / 2, line_y - h / 2))
            v.append((0.0, 0.0))
            wh.append((w, h))
    duration = max(ends) + 0.5
    scene = Scene(np.array(starts), np.array(ends), np.array(xy), np.array(v), np.array(wh), size, duration, None)
    return scene, expected


def mot_text(frames, what="dets"):
    """The frames of ``sample`` as MOTChallenge text: ``dets`` (frame,-1,x,y,w,h,conf,-1,-1,-1) or
    ``gt`` (frame,id,x,y,w,h,1,1,1)."""
    out = []
    for f in frames:
        if what == "gt":
            for x1, y1, x2, y2, tid in f["gt"].tolist():
                out.append("%d,%d,%.2f,%.2f,%.2f,%.2f,1,1,1\n" % (f["frame"], tid, x1, y1, x2 - x1, y2 - y1))
        else:
            for x1, y1, x2, y2, score, _ in f["dets"].tolist():
                out.append("%d,-1,%.2f,%.2f,%.2f,%.2f,%.4f,-1,-1,-1\n" % (f["frame"], x1, y1, x2 - x1, y2 - y1, score))
    return "".join(out)
