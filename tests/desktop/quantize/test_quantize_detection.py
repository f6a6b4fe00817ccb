"""quantize on a detector: mAP@0.5 on a YOLO val set, label checks. Tiny untrained CenterNet, 64x64."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))     # quantize_helpers.py
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")
torch = pytest.importorskip("torch")

from edgekit.errors import DatasetError  # noqa: E402
from edgekit.meta import read_meta  # noqa: E402


def _detector(path, labels):
    import onnx

    from edgekit.desktop.train.models import build_model
    from edgekit.meta import ModelMeta, attach_to_onnx

    torch.manual_seed(0)
    model = build_model("tiny_centernet", num_classes=len(labels), width=4).eval()
    torch.onnx.export(model, torch.zeros(1, 3, 64, 64), path, input_names=["images"],
                      output_names=["heatmap", "regression"], opset_version=13, dynamo=False)
    proto = onnx.load(path)
    attach_to_onnx(proto, ModelMeta(
        task="detection", labels=labels, input={"name": "images", "shape": [1, 3, 64, 64]},
        preprocess={"color": "RGB", "resize": "letterbox", "mean": [0.485, 0.456, 0.406],
                    "std": [0.229, 0.224, 0.225]},
        decoder={"type": "centernet", "stride": 4, "score_threshold": 0.3, "top_k": 20}))
    onnx.save(proto, path)
    return path


@pytest.fixture(scope="module")
def yolo(tmp_path_factory):
    from edgekit.desktop.data.datasets import SHAPE_CLASSES, make_shapes

    root = tmp_path_factory.mktemp("det")
    data = make_shapes(str(root / "shapes"), task="detection", train=3, val=4, size=64, seed=1)
    return {"data": data, "labels": list(SHAPE_CLASSES), "root": root}


def test_detector_reports_map50_and_agreement(yolo, tmp_path):
    from edgekit.desktop.quantize.run import quantize

    model = _detector(str(tmp_path / "det.onnx"), yolo["labels"])
    calib = os.path.join(yolo["data"], "images", "train")
    if not os.path.isdir(calib):
        calib = yolo["data"]
    out = str(tmp_path / "det.int8.onnx")
    report = quantize(model, out, "int8", "x86-cpu", calib=calib, val=yolo["data"], show=False)
    assert report["evaluation"]["on"] == "val" and report["evaluation"]["images"] == 4
    for side in ("reference", "quantized"):
        assert 0.0 <= report[side]["map50_95"] <= report[side]["map50"] <= 1.0
        assert "accuracy" not in report[side]
    assert report["drop_basis"] == "map50_95"                 # COCO mAP (pycocotools) gates detectors
    assert 0.0 <= report["quantized"]["agreement"]["top1"] <= 1.0
    meta = read_meta(out)
    assert meta.decoder["score_threshold"] == 0.3      # the served threshold is kept; mAP used 0.05


def test_yolo_names_must_match_the_model(yolo, tmp_path):
    from edgekit.desktop.quantize.run import quantize

    model = _detector(str(tmp_path / "det.onnx"), ["car", "person", "bike", "dog", "cat"])
    with pytest.raises(DatasetError, match="do not match"):
        quantize(model, str(tmp_path / "o.onnx"), "fp16", "jetson-nano", val=yolo["data"], show=False)


def test_classifier_refuses_a_yolo_val_set(yolo, tmp_path):
    import quantize_helpers as helpers

    from edgekit.desktop.quantize.run import quantize

    model = helpers.build_classifier(str(tmp_path / "c.onnx"))
    with pytest.raises(DatasetError, match="YOLO detection set but the model is a classifier"):
        quantize(model, str(tmp_path / "o.onnx"), "fp16", "jetson-nano", val=yolo["data"], show=False)
