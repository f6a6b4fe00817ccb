"""Tiny ONNX models for the profiler tests (tests/standins/models.py builds them)."""

import pytest
from standins.models import MEAN_STD, tiny_classifier


def build_classifier(path, batch="N", size=32, meta=True, precision="fp32"):
    """conv3x3 (3->8) -> relu -> GAP -> flatten -> gemm (8->2), layers named; batch dim ``batch`` (str: dynamic)."""
    return tiny_classifier(path, size=size, dynamic_batch=batch != 1, labels=["a", "b"], conv=8, head="gemm",
                           scale=0.1, named=True, ir_version=8, meta_batch=1, with_meta=meta, precision=precision,
                           preprocess=MEAN_STD, decoder={"type": "classification", "top_k": 1})


@pytest.fixture
def tiny_model(tmp_path):
    return build_classifier(tmp_path / "tiny.onnx")


@pytest.fixture
def fixed_batch_model(tmp_path):
    return build_classifier(tmp_path / "fixed.onnx", batch=1)
