import numpy as np
import pytest

from edgekit.vision.nms import box_iou, nms, xywh_to_xyxy


def test_iou_known_values():
    iou = box_iou([0, 0, 10, 10], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]])
    np.testing.assert_allclose(iou, [1.0, 50.0 / 150.0, 0.0, 0.0], rtol=1e-6)


def test_suppresses_overlaps_keeps_best_first():
    boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0.5, 0, 10.5, 10]]
    scores = [0.8, 0.9, 0.7, 0.6]
    keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [1, 2]


def test_threshold_is_respected():
    boxes = [[0, 0, 10, 10], [5, 0, 15, 10]]     # IoU 1/3
    assert nms(boxes, [0.9, 0.8], iou_threshold=0.3).tolist() == [0]
    assert nms(boxes, [0.9, 0.8], iou_threshold=0.4).tolist() == [0, 1]


def test_class_aware_keeps_overlapping_boxes_of_other_classes():
    boxes = [[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]]
    scores = [0.9, 0.8, 0.7]
    assert nms(boxes, scores, 0.5).tolist() == [0]
    assert nms(boxes, scores, 0.5, classes=[0, 1, 0]).tolist() == [0, 1]


def test_class_aware_with_negative_and_large_coordinates():
    boxes = [[-20, -20, 5, 5], [1000, 1000, 1100, 1100], [-19, -20, 5, 5]]
    keep = nms(boxes, [0.5, 0.9, 0.4], 0.5, classes=[3, 2, 3])
    assert keep.tolist() == [1, 0]


def test_max_det_and_empty():
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(10)], dtype=np.float32)
    scores = np.linspace(0.1, 1.0, 10)
    keep = nms(boxes, scores, 0.5, max_det=3)
    assert keep.tolist() == [9, 8, 7]
    assert nms(np.zeros((0, 4)), np.zeros((0,))).shape == (0,)


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError):
        nms([[0, 0, 1, 1]], [0.1, 0.2])


def test_matches_bruteforce_reference():
    rng = np.random.RandomState(0)
    xy = rng.uniform(0, 100, size=(200, 2))
    wh = rng.uniform(5, 40, size=(200, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.uniform(size=200)
    classes = rng.randint(0, 3, size=200)
    keep = nms(boxes, scores, 0.45, classes=classes)
    # reference: greedy per class, pairwise IoU
    expected = []
    for c in range(3):
        idx = [int(i) for i in np.argsort(-scores) if classes[i] == c]
        kept = []
        for i in idx:
            if all(box_iou(boxes[i], boxes[j:j + 1])[0] <= 0.45 for j in kept):
                kept.append(i)
        expected.extend(kept)
    assert sorted(keep.tolist()) == sorted(expected)
    assert list(scores[keep]) == sorted(scores[keep], reverse=True)


def test_xywh_to_xyxy():
    np.testing.assert_allclose(xywh_to_xyxy([[10, 20, 4, 6]]), [[8, 17, 12, 23]])


@pytest.mark.parametrize("block", [1, 7, 64, 5000])
def test_block_size_never_changes_the_result(block):
    rng = np.random.RandomState(1)
    xy = rng.uniform(0, 200, size=(500, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 60, size=(500, 2))], axis=1)
    scores = rng.uniform(size=500)
    classes = rng.randint(0, 4, size=500)
    reference = nms(boxes, scores, 0.5, classes=classes, block=1)
    assert nms(boxes, scores, 0.5, classes=classes, block=block).tolist() == reference.tolist()
    capped = nms(boxes, scores, 0.5, classes=classes, max_det=37, block=block)
    assert capped.tolist() == reference[:37].tolist()


def _d(index, box, score):
    return {"index": index, "label": "c%d" % index, "score": score, "box": box}


def test_dedupe_classes_keeps_one_box_per_object():
    from edgekit.vision.nms import dedupe_classes

    result = {"task": "detection", "detections": [
        _d(1, [10, 10, 50, 50], 0.6), _d(0, [11, 10, 50, 51], 0.9),      # one object, two classes
        _d(1, [100, 100, 140, 150], 0.5),                                  # another object
        _d(0, [30, 10, 70, 50], 0.8)]}                                     # overlaps the first by IoU 0.33
    out = dedupe_classes(result)
    assert [(d["index"], d["score"]) for d in out["detections"]] == [(0, 0.9), (1, 0.5), (0, 0.8)]
    assert len(result["detections"]) == 4                                  # the input is not changed
    assert dedupe_classes({"task": "classification", "top": []}) == {"task": "classification", "top": []}


def test_predictor_class_agnostic_setting():
    from edgekit.meta import ModelMeta
    from edgekit.predictor import Predictor

    def meta(**decoder):
        params = {"type": "centernet", "stride": 4, "score_threshold": 0.3, "top_k": 100, "nms_iou": None}
        params.update(decoder)
        return ModelMeta(task="detection", labels=["a", "b"], input={"name": "images", "shape": [1, 3, 64, 64]},
                         preprocess={"resize": "letterbox"}, decoder=params)

    heat = np.zeros((1, 2, 16, 16), np.float32)
    reg = np.zeros((1, 4, 16, 16), np.float32)
    heat[0, 0, 4, 4], heat[0, 1, 4, 4] = 0.9, 0.7       # one object peaking in both class maps
    reg[0, :, 4, 4] = (0, 0, 4, 4)
    outputs = {"heatmap": heat, "regression": reg}
    plain = Predictor(None, meta())
    assert plain.set_class_agnostic("auto") is False
    assert len(plain.postprocess(outputs, None)["detections"]) == 2
    assert plain.set_class_agnostic("auto", tracking=True) is True
    assert [d["index"] for d in plain.postprocess(outputs, None)["detections"]] == [0]
    assert plain.set_class_agnostic(False, tracking=True) is False
    assert Predictor(None, meta(class_agnostic=True)).set_class_agnostic("auto") is True
