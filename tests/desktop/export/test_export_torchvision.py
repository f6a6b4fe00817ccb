"""edgekit export on real torchvision architectures (random weights, nothing downloaded)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from edgekit.desktop.export.run import export_model  # noqa: E402
from edgekit.meta import IMAGENET_MEAN, IMAGENET_STD, read_meta  # noqa: E402

QUIET = dict(log=lambda text: None)


def test_resnet18_for_jetson_nano(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join("c%d" % i for i in range(10)) + "\n")
    out = tmp_path / "resnet18.onnx"
    report = export_model("torchvision:resnet18", out, target="jetson-nano", input_size=128,
                          labels=str(labels), **QUIET)
    assert report["opset"] == 13 and report["lint"]["ok"] and report["lint"]["problems"] == []
    assert report["nodes_after"] < report["nodes_before"]           # onnxslim folded something
    assert report["parity"]["logits"]["cosine"] > 0.9999 and report["outputs"]["logits"] == [1, 10]
    meta = read_meta(str(out))
    assert meta.preprocess["mean"] == IMAGENET_MEAN and meta.preprocess["std"] == IMAGENET_STD
    assert meta.preprocess["color"] == "RGB" and meta.preprocess["resize"] == "stretch"
    assert meta.labels[-1] == "c9" and meta.source["kind"] == "torchvision" and meta.source["name"] == "resnet18"
    ops = set(n.op_type for n in onnx.load(str(out)).graph.node)
    assert "BatchNormalization" not in ops                          # folded into the convolutions


def test_mobilenet_v2_dynamic_batch_with_weights(tmp_path):
    import torchvision

    torch.manual_seed(1)
    weights = tmp_path / "mnv2.pt"
    torch.save(torchvision.models.mobilenet_v2(num_classes=4).state_dict(), str(weights))
    out = tmp_path / "mnv2.onnx"
    report = export_model("torchvision:mobilenet_v2", out, input_size="96x128", batch="dynamic",
                          weights=str(weights), labels=["a", "b", "c", "d"], **QUIET)
    assert report["lint"]["ok"]
    assert [p["op"] for p in report["lint"]["problems"]] == ["(input)"]    # the dynamic batch, a warning
    meta = read_meta(str(out))
    assert meta.input["shape"] == ["batch", 3, 96, 128]
    assert meta.source["weights_sha256"] is not None
    model = torchvision.models.mobilenet_v2(num_classes=4)
    model.load_state_dict(torch.load(str(weights), weights_only=True))
    x = np.random.default_rng(0).standard_normal((2, 3, 96, 128)).astype(np.float32)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    np.testing.assert_allclose(got, model.eval()(torch.from_numpy(x)).detach().numpy(), atol=1e-4, rtol=1e-3)
