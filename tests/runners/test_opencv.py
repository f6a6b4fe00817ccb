"""The cv2.dnn runner on a tiny ONNX model, with ONNX Runtime as the reference."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from standins.models import tiny_classifier  # noqa: E402

from edgekit.errors import ConfigError, ModelError, UserError  # noqa: E402
from edgekit.runners import open_runner  # noqa: E402
from edgekit.runners.opencv import OpenCVRunner, onnx_io  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_classifier(tmp_path_factory.mktemp("cv") / "tiny.onnx", size=16)


def test_matches_onnxruntime(model):
    import onnxruntime as ort

    x = np.random.RandomState(0).rand(1, 3, 16, 16).astype(np.float32)
    expected = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    with open_runner("opencv", model, threads=1) as runner:
        out = runner.infer({"images": x})
        info = runner.describe()
    assert list(out) == ["logits"]
    np.testing.assert_allclose(out["logits"], expected, rtol=1e-4, atol=1e-5)
    assert info["backend"] == "opencv" and info["threads"] == 1


def test_io_read_without_onnx(model):
    inputs, outputs = onnx_io(model)
    assert [(s.name, s.shape, str(s.dtype)) for s in inputs] == [("images", [1, 3, 16, 16], "float32")]
    assert [(s.name, s.shape) for s in outputs] == [("logits", [1, 4])]


def test_dynamic_dims_are_named(tmp_path):
    inputs, _ = onnx_io(tiny_classifier(tmp_path / "d.onnx", dynamic_batch=True))
    assert inputs[0].shape == ["N", 3, 8, 8] and inputs[0].is_dynamic


def test_errors(tmp_path, model):
    with pytest.raises(ConfigError):
        with open_runner("opencv", model, target="tpu"):
            pass
    with pytest.raises(UserError):
        with open_runner("opencv", model) as runner:
            runner.infer({"images": np.zeros((1, 3, 8, 8), np.float32)})
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07\x12\xff\xff")
    with pytest.raises(ModelError):
        with open_runner("opencv", str(broken)):
            pass


def test_available_here():
    assert OpenCVRunner.available() is True


def test_opencv_error_message_is_the_last_error_line():
    from edgekit.runners.opencv import _cv_message

    text = ("OpenCV(4.6.0) onnx_importer.cpp:1040: error: (-2:Unspecified error) in function 'handleNode'\n"
            "> Node [Conv]: parse error: OpenCV(4.6.0) layers_common.cpp:106: error: (-5:Bad argument) "
            "kernel_size not specified\n> \n")
    assert _cv_message(Exception(text)) == "(-5:Bad argument) kernel_size not specified"
