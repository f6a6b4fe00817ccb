"""The classification decoder against the plain definition: softmax over every class, full sort."""

import numpy as np
import pytest

from edgekit.vision.classify import decode, softmax


class Meta(object):
    """The two fields the decoder reads from a ModelMeta."""

    def __init__(self, labels, decoder):
        self.labels, self.decoder = labels, decoder


def meta(classes, **decoder):
    decoder.setdefault("type", "classification")
    return Meta(["c%d" % i for i in range(classes)], decoder)


def reference(row, k, probabilities=False):
    scores = row if probabilities else softmax(row[None])[0]
    order = sorted(range(len(row)), key=lambda i: (-row[i], i))[:k]
    return [(i, float(scores[i])) for i in order]


@pytest.mark.parametrize("classes,k", [(1000, 5), (10, 3), (4, 10), (2, 1)])
def test_matches_softmax_and_full_sort(classes, k):
    rng = np.random.RandomState(classes)
    logits = rng.randn(3, classes).astype(np.float32) * 4
    results = decode({"logits": logits}, meta(classes, top_k=k))
    assert len(results) == 3
    for row, result in zip(logits, results):
        got = [(t["index"], t["score"]) for t in result["top"]]
        want = reference(row, min(k, classes))
        assert [i for i, _ in got] == [i for i, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want], rtol=1e-5, atol=1e-7)
        assert all(t["label"] == "c%d" % t["index"] for t in result["top"])
        assert all(isinstance(t["index"], int) and isinstance(t["score"], float) for t in result["top"])


def test_ties_come_in_class_order_and_probabilities_pass_through():
    row = np.array([[0.1, 0.3, 0.3, 0.05, 0.25]], dtype=np.float32)
    result = decode(row, meta(5, top_k=3, softmax_applied=True))[0]
    assert [t["index"] for t in result["top"]] == [1, 2, 4]
    assert np.allclose([t["score"] for t in result["top"]], [0.3, 0.3, 0.25])
    flat = decode(np.zeros((1, 1000), np.float16), meta(1000))[0]     # random-weight models: all equal
    assert [t["index"] for t in flat["top"]] == [0, 1, 2, 3, 4]
    assert np.allclose([t["score"] for t in flat["top"]], 0.001)


def test_unlabelled_index_and_4d_output():
    logits = np.zeros((1, 12, 1, 1), np.float32)
    logits[0, 11] = 20.0
    top = decode(logits, meta(10, top_k=1))[0]["top"]
    assert top == [{"index": 11, "label": "11", "score": pytest.approx(1.0, abs=1e-3)}]
