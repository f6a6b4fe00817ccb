import numpy as np
import pytest

from edgekit.errors import BackendUnavailable, ConfigError, ModelError, UserError
from edgekit.predictor import Predictor
from edgekit.runners import choose_backend, open_runner, runner_class
from edgekit.runners.onnxruntime import parse_providers
from standins.models import colour_classifier

onnx = pytest.importorskip("onnx")


def test_infer_and_specs(tmp_path):
    path = colour_classifier(tmp_path / "m.onnx")
    with open_runner("onnxruntime", path, threads=1) as runner:
        spec = runner.input_specs()[0]
        assert spec.name == "images" and spec.shape == [1, 3, 16, 16]
        feed = runner.random_feed()
        out = runner.infer(feed)
        np.testing.assert_allclose(out["logits"], feed["images"].mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)
        info = runner.describe()
        assert info["backend"] == "onnxruntime" and info["providers"] == ["CPUExecutionProvider"]


def test_feed_is_checked(tmp_path):
    path = colour_classifier(tmp_path / "m.onnx")
    with open_runner("onnxruntime", path) as runner:
        with pytest.raises(UserError, match="input names"):
            runner.infer({"x": np.zeros((1, 3, 16, 16), np.float32)})
        with pytest.raises(UserError, match="shape"):
            runner.infer({"images": np.zeros((1, 3, 8, 8), np.float32)})
        with pytest.raises(UserError, match="dtype"):
            runner.infer({"images": np.zeros((1, 3, 16, 16), np.float64)})


def test_dynamic_batch_random_feed(tmp_path):
    path = colour_classifier(tmp_path / "m.onnx", dynamic_batch=True)
    with open_runner("onnxruntime", path) as runner:
        assert runner.input_specs()[0].is_dynamic
        out = runner.infer(runner.random_feed(batch=4))
        assert out["logits"].shape == (4, 3)


def test_unavailable_provider_is_said(tmp_path):
    path = colour_classifier(tmp_path / "m.onnx")
    with pytest.raises(BackendUnavailable, match="TensorrtExecutionProvider"):
        with open_runner("onnxruntime", path, providers=["tensorrt"]):
            pass


def test_corrupt_model_is_a_model_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError):
        with open_runner("onnxruntime", str(bad)):
            pass
    with pytest.raises(ModelError):
        open_runner("onnxruntime", str(tmp_path / "missing.onnx"))


def test_registry_and_auto():
    with pytest.raises(ConfigError):
        runner_class("tflite")
    assert choose_backend("auto", "x.engine")[0] == "tensorrt"
    assert choose_backend("onnxruntime", "x.onnx") == ("onnxruntime", "asked for")
    assert parse_providers("cpu, cuda") == ["cpu", "cuda"]
    with pytest.raises(ConfigError):
        parse_providers("tpu")


def test_predictor_end_to_end(tmp_path):
    path = colour_classifier(tmp_path / "m.onnx")
    frame = np.zeros((40, 30, 3), np.uint8)
    frame[:, :, 1] = 200                           # green in BGR
    with Predictor.open(path, backend="onnxruntime") as model:
        result = model.predict(frame)
    assert result["task"] == "classification"
    assert result["top"][0]["label"] == "green"
    assert len(result["top"]) == 3
    assert abs(sum(t["score"] for t in result["top"]) - 1.0) < 1e-5
