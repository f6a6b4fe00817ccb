"""The generated scenes set: deterministic per seed, 10 classes, varied scale, YOLO and COCO agreeing."""

import os

import numpy as np

from edgekit.desktop.data.annotations import load_detection
from edgekit.desktop.data.scenes import CLASSES, make_scenes, scene


def tree_bytes(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as handle:
                out[os.path.relpath(os.path.join(dirpath, name), root)] = handle.read()
    return out


def test_scenes_are_deterministic_per_seed(tmp_path):
    a = make_scenes(tmp_path / "a", train=3, val=2, size=96, seed=4)
    b = make_scenes(tmp_path / "b", train=3, val=2, size=96, seed=4)
    c = make_scenes(tmp_path / "c", train=3, val=2, size=96, seed=5)
    assert tree_bytes(a) == tree_bytes(b) and tree_bytes(a) != tree_bytes(c)


def test_yolo_and_coco_outputs_describe_the_same_boxes(tmp_path):
    root = make_scenes(tmp_path / "s", train=4, val=3, size=128, seed=0)
    for split in ("train", "val"):
        yolo, names = load_detection(root, split, fmt="yolo")
        coco, coco_names = load_detection(root, split, fmt="coco")
        assert names == coco_names == list(CLASSES)
        assert [p for p, _ in yolo] == [p for p, _ in coco]
        for (_, a), (_, b) in zip(yolo, coco):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_scenes_are_varied_and_boxes_hold_visible_pixels():
    sizes, classes, counts = [], set(), []
    for i in range(40):
        img, boxes = scene(np.random.default_rng([1, i]), 320, 240)
        assert img.shape == (240, 320, 3)
        counts.append(len(boxes))
        for cls, x1, y1, x2, y2 in boxes:
            assert 0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 240
            sizes.append(max(x2 - x1, y2 - y1) / 320.0)
            classes.add(cls)
    assert classes == set(range(10))
    assert min(sizes) < 0.05 and max(sizes) > 0.4           # tiny to half-frame
    assert max(counts) >= 5 and min(counts) >= 1
