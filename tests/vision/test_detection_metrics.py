"""mAP@0.5 and mAP@0.5:0.95 (edgekit.vision.metrics), checked against hand-computed cases."""

import pytest

from edgekit.vision.metrics import average_precision, evaluate_detections, iou_matrix


def test_iou_matrix():
    m = iou_matrix([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    assert m[0].tolist() == pytest.approx([1.0, 1 / 3, 0.0])


def test_perfect_predictions_score_one():
    gts = [[(0, 10, 10, 50, 50), (1, 60, 60, 90, 90)], [(1, 0, 0, 20, 20)]]
    preds = [[(c, 0.9) + tuple(b) for c, *b in g] for g in gts]
    r = evaluate_detections(preds, gts, num_classes=3)
    assert r["map50"] == pytest.approx(1.0) and r["map50_95"] == pytest.approx(1.0)
    assert r["per_class"][2]["ap50"] is None and r["per_class"][1]["gts"] == 2


def test_wrong_class_and_missed_objects_score_zero():
    gts = [[(0, 10, 10, 50, 50)]]
    assert evaluate_detections([[(1, 0.9, 10, 10, 50, 50)]], gts, 2)["map50"] == 0.0
    assert evaluate_detections([[]], gts, 2)["map50"] == 0.0


def test_iou_between_thresholds():
    # IoU 0.75 exactly: a true positive at 0.50..0.75 (6 of 10 thresholds)
    gts = [[(0, 0, 0, 100, 100)]]
    preds = [[(0, 0.9, 0, 0, 100, 75)]]
    r = evaluate_detections(preds, gts, 1)
    assert r["map50"] == pytest.approx(1.0)
    assert r["map50_95"] == pytest.approx(0.6)


def test_false_positive_ranked_first_halves_precision():
    # one FP with a higher score than the TP: precision 0.5 at recall 1 -> AP 0.5
    gts = [[(0, 0, 0, 10, 10)]]
    preds = [[(0, 0.9, 50, 50, 60, 60), (0, 0.8, 0, 0, 10, 10)]]
    assert evaluate_detections(preds, gts, 1)["map50"] == pytest.approx(0.5)
    # the same FP ranked after the TP costs nothing
    preds = [[(0, 0.7, 50, 50, 60, 60), (0, 0.8, 0, 0, 10, 10)]]
    assert evaluate_detections(preds, gts, 1)["map50"] == pytest.approx(1.0)


def test_duplicate_detection_counts_once():
    gts = [[(0, 0, 0, 10, 10), (0, 20, 20, 30, 30)]]
    preds = [[(0, 0.9, 0, 0, 10, 10), (0, 0.8, 0, 0, 10, 10)]]     # second is a duplicate of the first
    r = evaluate_detections(preds, gts, 1)
    assert r["map50"] == pytest.approx(0.5, abs=0.01)              # recall reaches only 0.5


def test_average_precision_edge_cases_and_length_check():
    assert average_precision([], 3) == 0.0
    assert average_precision([1, 0], 0) is None
    with pytest.raises(ValueError):
        evaluate_detections([[]], [[], []], 1)
