"""The built-in synthetic ``shapes`` dataset: coloured shapes on noisy textured backgrounds.

Deterministic per seed: every image is drawn from its own ``numpy`` generator seeded by
(seed, split, index), so the same call always writes the same pixels. Classification is written
as an ImageFolder (``train/<class>/*.png``, ``val/<class>/*.png``); detection in YOLO layout
(``images/<split>/*.png``, ``labels/<split>/*.txt``, ``data.yaml``) with 1-4 objects per image.
"""

import json
import os
import shutil
import tempfile

import numpy as np

CLASSES = ("circle", "square", "triangle", "star", "cross")
SPLITS = ("train", "val")
MARKER = ".edgekit-shapes.json"


def textured_background(rng, size):
    """A textured noisy background: low-frequency colour blobs + stripes + pixel noise."""
    import cv2

    base = rng.integers(0, 256, size=3)
    grid = rng.integers(4, 9)
    low = rng.normal(0, 40, size=(grid, grid, 3)).astype(np.float32)
    low = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
    img = base[None, None, :].astype(np.float32) + low
    if rng.random() < 0.5:                                   # faint stripes
        period = rng.uniform(4, 16)
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
        img += stripes[:, :, None] * rng.uniform(5, 20)
    img += rng.normal(0, rng.uniform(4, 14), size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def contrasting_colour(rng, background):
    mean = background.reshape(-1, 3).mean(axis=0)
    for _ in range(20):
        colour = rng.integers(0, 256, size=3)
        if np.abs(colour - mean).sum() > 160:
            break
    return tuple(int(c) for c in colour)


def _polygon(kind, cx, cy, r, angle):
    if kind == "square":
        angles = angle + np.pi / 4 + np.arange(4) * np.pi / 2
        radii = np.full(4, r)
    elif kind == "triangle":
        angles = angle - np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        radii = np.full(3, r)
    elif kind == "star":
        angles = angle - np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.42)
    elif kind == "cross":
        arm = 0.36
        pts = np.array([(-arm, -1), (arm, -1), (arm, -arm), (1, -arm), (1, arm), (arm, arm), (arm, 1),
                        (-arm, 1), (-arm, arm), (-1, arm), (-1, -arm), (-arm, -arm)], dtype=np.float64) * r
        c, s = np.cos(angle), np.sin(angle)
        rot = pts @ np.array([[c, s], [-s, c]])
        return rot + np.array([cx, cy])
    else:
        raise ValueError(kind)
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)


def draw_shape(img, kind, cx, cy, r, angle, colour):
    """Draw one filled shape; returns its tight box (x1, y1, x2, y2) in pixels."""
    import cv2

    if kind == "circle":
        cv2.circle(img, (int(round(cx * 16)), int(round(cy * 16))), int(round(r * 16)), colour, -1,
                   lineType=cv2.LINE_AA, shift=4)
        box = (cx - r, cy - r, cx + r, cy + r)
    else:
        pts = _polygon(kind, cx, cy, r, angle)
        cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], colour, lineType=cv2.LINE_AA, shift=4)
        box = (pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())
    h, w = img.shape[:2]
    return (max(0.0, box[0]), max(0.0, box[1]), min(float(w), box[2]), min(float(h), box[3]))


def classification_image(rng, size, label):
    img = textured_background(rng, size)
    r = rng.uniform(0.16, 0.34) * size
    cx, cy = rng.uniform(r, size - r, size=2)
    draw_shape(img, CLASSES[label], cx, cy, r, rng.uniform(0, 2 * np.pi), contrasting_colour(rng, img))
    return img, label


def _iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def detection_image(rng, size, max_objects=4):
    """An image with 1..max_objects shapes that overlap little; returns (img, [(cls, x1, y1, x2, y2)])."""
    img = textured_background(rng, size)
    objects = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            r = rng.uniform(0.07, 0.17) * size
            cx, cy = rng.uniform(r, size - r, size=2)
            box = (cx - r, cy - r, cx + r, cy + r)
            if all(_iou(box, o[1]) < 0.05 for o in objects):
                break
        else:
            continue
        label = int(rng.integers(len(CLASSES)))
        tight = draw_shape(img, CLASSES[label], cx, cy, r, rng.uniform(0, 2 * np.pi),
                           contrasting_colour(rng, img))
        objects.append((label, box, tight))
    return img, [(label, *tight) for label, _, tight in objects]


def _params(task, train, val, size, seed):
    return {"task": task, "train": int(train), "val": int(val), "size": int(size), "seed": int(seed),
            "classes": list(CLASSES), "version": 1}


def make_shapes(out_dir, task="classification", train=2000, val=400, size=None, seed=0):
    """Write the shapes dataset to ``out_dir`` (reused when already written with the same parameters).

    Returns ``out_dir`` (classification: the ImageFolder root with train/ and val/; detection: the
    YOLO root holding data.yaml).
    """
    if task not in ("classification", "detection"):
        from edgekit.errors import ConfigError

        raise ConfigError("shapes task must be classification or detection, got %r" % (task,))
    size = int(size or (64 if task == "classification" else 128))
    out_dir = os.path.abspath(os.fspath(out_dir))
    params = _params(task, train, val, size, seed)
    writer = _write_classification if task == "classification" else _write_detection

    def fill(tmp):
        for split_index, split in enumerate(SPLITS):
            writer(tmp, split, params[split], size, seed, split_index)

    return write_once(out_dir, params, MARKER, fill)


def write_once(out_dir, params, marker_name, fill):
    """A generated dataset written whole or not at all: ``fill(tmp_dir)`` writes it into a temporary folder
    beside ``out_dir`` that then replaces it, with a marker holding ``params``; when the marker in ``out_dir``
    already holds the same ``params`` nothing is written. Returns ``out_dir``."""
    marker = os.path.join(out_dir, marker_name)
    if os.path.exists(marker):
        with open(marker) as handle:
            if json.load(handle) == params:
                return out_dir
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(out_dir) + "-", dir=parent)
    try:
        fill(tmp)
        with open(os.path.join(tmp, marker_name), "w") as handle:
            json.dump(params, handle)
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _write_classification(root, split, count, size, seed, split_index):
    import cv2

    for i in range(count):
        rng = np.random.default_rng([seed, split_index, i])
        label = i % len(CLASSES)                   # balanced classes
        img, label = classification_image(rng, size, label)
        os.makedirs(os.path.join(root, split, CLASSES[label]), exist_ok=True)
        cv2.imwrite(os.path.join(root, split, CLASSES[label], "%05d.png" % i), img)


def _write_detection(root, split, count, size, seed, split_index):
    import cv2

    img_dir = os.path.join(root, "images", split)
    lbl_dir = os.path.join(root, "labels", split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(lbl_dir, exist_ok=True)
    for i in range(count):
        rng = np.random.default_rng([seed, split_index, i])
        img, objects = detection_image(rng, size)
        cv2.imwrite(os.path.join(img_dir, "%05d.png" % i), img)
        lines = ["%d %.6f %.6f %.6f %.6f" % (c, (x1 + x2) / 2 / size, (y1 + y2) / 2 / size,
                                             (x2 - x1) / size, (y2 - y1) / size)
                 for c, x1, y1, x2, y2 in objects]
        with open(os.path.join(lbl_dir, "%05d.txt" % i), "w") as handle:
            handle.write("\n".join(lines) + ("\n" if lines else ""))
    if split == SPLITS[-1]:
        with open(os.path.join(root, "data.yaml"), "w") as handle:
            handle.write("# edgekit synthetic shapes (detection)\npath: .\ntrain: images/train\nval: images/val\n"
                         "nc: %d\nnames: [%s]\n" % (len(CLASSES), ", ".join(CLASSES)))
