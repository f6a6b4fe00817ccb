"""COCO mAP through pycocotools, and edgekit's own device-side scorer (edgekit/vision/metrics.py) against it
on the same detections."""

import numpy as np
import pytest

pytest.importorskip("pycocotools")

from edgekit.desktop.data.scoring import coco_map  # noqa: E402
from edgekit.vision.metrics import evaluate_detections  # noqa: E402


def random_case(seed, images=12, classes=4):
    rng = np.random.default_rng(seed)
    preds, gts = [], []
    for _ in range(images):
        g = []
        for _ in range(int(rng.integers(0, 6))):
            x1, y1 = rng.uniform(0, 200, size=2)
            w, h = rng.uniform(4, 80, size=2)
            g.append((int(rng.integers(classes)), x1, y1, x1 + w, y1 + h))
        p = []
        for c, x1, y1, x2, y2 in g:                    # jittered hits, sometimes missed or mislabelled
            if rng.random() < 0.8:
                j = rng.normal(0, 0.08 * (x2 - x1), size=4)
                p.append((c if rng.random() < 0.9 else int(rng.integers(classes)), float(rng.uniform(0.05, 1)),
                          x1 + j[0], y1 + j[1], x2 + j[2], y2 + j[3]))
        for _ in range(int(rng.integers(0, 5))):     # false positives
            x1, y1 = rng.uniform(0, 200, size=2)
            p.append((int(rng.integers(classes)), float(rng.uniform(0.05, 1)), x1, y1, x1 + 30, y1 + 20))
        preds.append(p)
        gts.append(g)
    return preds, gts


@pytest.mark.parametrize("seed", range(12))
def test_edgekit_scorer_matches_pycocotools(seed):
    preds, gts = random_case(seed)
    ours = evaluate_detections(preds, gts, 4)
    ref = coco_map(preds, gts, 4)
    assert ref["scorer"].startswith("pycocotools")
    assert ours["map50_95"] == pytest.approx(ref["map50_95"], abs=1e-6)
    assert ours["map50"] == pytest.approx(ref["map50"], abs=1e-6)
    for a, b in zip(ours["per_class"], ref["per_class"]):
        if b["ap50_95"] is None:
            assert a["ap50_95"] is None
        else:
            assert a["ap50_95"] == pytest.approx(b["ap50_95"], abs=1e-6)
            assert a["ap50"] == pytest.approx(b["ap50"], abs=1e-6)


def test_perfect_empty_and_classes_without_ground_truth():
    gts = [[(0, 10, 10, 50, 50)], [(0, 5, 5, 20, 30)]]
    perfect = [[(0, 0.9, 10, 10, 50, 50)], [(0, 0.8, 5, 5, 20, 30)]]
    r = coco_map(perfect, gts, 3, labels=["a", "b", "c"])
    assert r["map50_95"] == pytest.approx(1.0) and r["map50"] == pytest.approx(1.0)
    assert r["per_class"][1]["ap50_95"] is None and r["per_class"][0]["label"] == "a"
    assert coco_map([[], []], gts, 3)["map50_95"] == 0.0
