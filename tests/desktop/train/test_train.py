"""Training end to end on tiny data: outputs, checkpoint format (C1), resume, determinism, detector."""

import json
import os

import numpy as np
import pytest
import torch

from edgekit.desktop.data.datasets import make_shapes
from edgekit.desktop.train.models import FORMAT, build_model, load_checkpoint, load_pretrained
from edgekit.desktop.train.run import train
from edgekit.errors import ConfigError, ModelError

torch.set_num_threads(1)


def tiny_recipe(task, **over):
    if task == "classification":
        rec = {"name": "tiny-cls", "task": task, "model": {"arch": "tiny_cnn", "kwargs": {"width": 4}},
               "input": {"size": [32, 32]}, "epochs": 2, "batch": 8, "optimizer": {"lr": 0.01},
               "augment": {"hflip": 0.5, "brightness": 0.1}, "data": {"shapes": {"train": 24, "val": 10, "size": 32}}}
    else:
        rec = {"name": "tiny-det", "task": task, "model": {"arch": "tiny_centernet", "kwargs": {"width": 4}},
               "input": {"size": [48, 48]}, "preprocess": {"resize": "letterbox"}, "epochs": 1, "batch": 8,
               "augment": {"hflip": 0.5, "scale": [0.9, 1.1]}, "data": {"shapes": {"train": 12, "val": 6, "size": 48}}}
    rec.update(over)
    return rec


@pytest.fixture(scope="module")
def cls_data(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("cls") / "shapes", "classification", train=24, val=10, size=32)


@pytest.fixture(scope="module")
def cls_run(tmp_path_factory, cls_data):
    out = tmp_path_factory.mktemp("cls_run")
    return train(tiny_recipe("classification"), cls_data, out, progress=False)


def test_classifier_outputs(cls_run):
    out = cls_run["out"]
    for name in ("best.pt", "last.pt", "metrics.json", "curves.png", "labels.txt"):
        assert os.path.isfile(os.path.join(out, name)), name
    with open(os.path.join(out, "curves.png"), "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(out, "metrics.json")) as handle:
        doc = json.load(handle)
    assert [e["epoch"] for e in doc["epochs"]] == [0, 1]
    assert doc["metric"] == "accuracy" and doc["best"]["metric"] == "accuracy"
    assert 0.0 <= doc["best"]["value"] <= 1.0
    assert all({"train_loss", "accuracy", "val_loss", "images_per_s", "lr"} <= set(e) for e in doc["epochs"])
    with open(os.path.join(out, "labels.txt")) as handle:
        assert handle.read().split() == doc["labels"]
    assert cls_run["epochs_run"] == 2 and cls_run["best"]["value"] == doc["best"]["value"]


def test_checkpoint_format_loads_weights_only(cls_run):
    from edgekit.meta import ModelMeta

    ckpt = torch.load(cls_run["best_path"], weights_only=True)
    assert ckpt["format"] == FORMAT and ckpt["arch"]["name"] == "tiny_cnn"
    assert ckpt["output_names"] == ["logits"] and ckpt["recipe"]["name"] == "tiny-cls"
    meta = ModelMeta.from_dict(ckpt["meta"])
    assert meta.input == {"name": "images", "shape": [1, 3, 32, 32], "layout": "NCHW", "dtype": "float32"}
    assert meta.precision == "fp32" and meta.decoder["type"] == "classification"
    assert meta.source["recipe"] == "tiny-cls" and meta.source["framework"] == "torch"
    assert "optimizer" not in ckpt
    last = torch.load(cls_run["last_path"], weights_only=True)
    assert {"optimizer", "scheduler", "rng", "history", "best"} <= set(last)
    model, loaded = load_checkpoint(cls_run["best_path"])
    assert not model.training
    logits = model(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, len(meta.labels))


def test_bad_checkpoints_are_model_errors(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="not a loadable PyTorch checkpoint"):
        load_checkpoint(junk)
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not an edgekit checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, cls_data, cls_run, monkeypatch):
    from edgekit.desktop.train import run as train_module

    def crash(self, epoch, record):
        raise KeyboardInterrupt                      # killed right after epoch 1 was saved

    out = tmp_path / "resumed"
    with monkeypatch.context() as patch:
        patch.setattr(train_module._Run, "_should_stop", crash)
        with pytest.raises(KeyboardInterrupt):
            train(tiny_recipe("classification"), cls_data, out, progress=False)
    assert len(torch.load(out / "last.pt", weights_only=True)["history"]) == 1
    resumed = train("ignored-on-resume", cls_data, out, resume=True, progress=False)
    assert [e["epoch"] for e in resumed["history"]] == [0, 1]
    # seeded determinism: 1 + 1 resumed epochs == the 2-epoch run of the fixture, bit for bit
    assert resumed["weights_sha256"] == cls_run["weights_sha256"]
    assert resumed["history"][1]["train_loss"] == cls_run["history"][1]["train_loss"]


def test_early_stopping_on_target(tmp_path, cls_data):
    rec = tiny_recipe("classification", epochs=5, early_stop={"target": 0.0})
    result = train(rec, cls_data, tmp_path / "es", progress=False)
    assert result["epochs_run"] == 1 and "target" in result["stopped_early"]


def test_detector_trains_and_decodes(tmp_path):
    from edgekit.desktop.data.datasets import load_yolo
    from edgekit.meta import ModelMeta
    from edgekit.vision.centernet import decode
    from edgekit.vision.preprocess import Preprocessor, read_image

    out = tmp_path / "det"
    result = train(tiny_recipe("detection"), "shapes", out, progress=False, data_cache=tmp_path / "cache")
    assert result["best"]["metric"] == "map50"
    metrics = result["history"][0]
    assert 0.0 <= metrics["map50"] <= 1.0 and 0.0 <= metrics["map50_95"] <= metrics["map50"] + 1e-9
    model, ckpt = load_checkpoint(result["best_path"])
    assert ckpt["output_names"] == ["heatmap", "regression"]
    meta = ModelMeta.from_dict(ckpt["meta"])
    assert meta.decoder["type"] == "centernet" and meta.decoder["stride"] == 8
    assert meta.preprocess["resize"] == "letterbox"
    # the runtime path: read -> Preprocessor -> model -> shared decoder, boxes in frame pixels
    image_path = load_yolo(result["data"], "val")[0][0][0]
    frame = read_image(image_path)
    tensor, info = Preprocessor.from_meta(meta)(frame)
    with torch.no_grad():
        heat, reg = model(torch.from_numpy(tensor))
    assert heat.shape == (1, 5, 6, 6) and reg.shape == (1, 4, 6, 6)
    assert 0.0 <= float(heat.min()) and float(heat.max()) <= 1.0
    res = decode({"heatmap": heat.numpy(), "regression": reg.numpy()}, meta, [info], score_threshold=0.0)[0]
    assert res["task"] == "detection" and len(res["detections"]) > 0
    for det in res["detections"]:
        x1, y1, x2, y2 = det["box"]
        assert 0 <= x1 <= x2 <= frame.shape[1] and 0 <= y1 <= y2 <= frame.shape[0]


TRT82_OPS = {"Conv", "BatchNormalization", "Relu", "MaxPool", "Resize", "Add", "Concat", "Sigmoid", "Constant",
             "GlobalMaxPool", "Flatten", "Gemm", "Reshape", "Identity"}


@pytest.mark.parametrize("arch, shape", [("tiny_centernet", (1, 3, 64, 64)), ("tiny_cnn", (1, 3, 32, 32))])
def test_tiny_models_export_to_opset_13_with_tensorrt_82_ops(tmp_path, arch, shape):
    onnx = pytest.importorskip("onnx")
    model = build_model(arch, num_classes=3, width=4).eval()
    path = str(tmp_path / "m.onnx")
    torch.onnx.export(model, torch.zeros(shape), path, opset_version=13, input_names=["images"], dynamo=False)
    graph = onnx.load(path).graph
    ops = {node.op_type for node in graph.node}
    assert ops <= TRT82_OPS, ops - TRT82_OPS
    if arch == "tiny_centernet":
        resize = [n for n in graph.node if n.op_type == "Resize"]
        assert resize and all(a.s == b"nearest" for n in resize for a in n.attribute if a.name == "mode")


def test_torchvision_recipes_build_and_load_local_weights(tmp_path):
    from edgekit.desktop.train.recipe import load_recipe

    for name in ("mobilenet_v2", "mobilenet_v3_small", "resnet18"):
        rec = load_recipe(name)
        assert rec["model"]["arch"] == name and rec["task"] == "classification"
    source = build_model("resnet18", num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    target = build_model("resnet18", num_classes=5)
    loaded, skipped = load_pretrained(target, tmp_path / "r18.pth")
    assert skipped == 2 and loaded == len(target.state_dict()) - 2           # fc.weight, fc.bias re-initialised
    assert torch.equal(target.conv1.weight, source.conv1.weight)
    torch.save(build_model("tiny_cnn", num_classes=5).state_dict(), tmp_path / "tiny.pth")
    with pytest.raises(ModelError, match="only 1 of .* tensors"):
        load_pretrained(build_model("resnet18", num_classes=5), tmp_path / "tiny.pth")


def test_recipe_errors():
    from edgekit.desktop.train.recipe import load_recipe

    with pytest.raises(ConfigError, match="unknown recipe key 'epoch'"):
        load_recipe({"task": "classification", "model": {"arch": "tiny_cnn"}, "epoch": 3})
    with pytest.raises(ConfigError, match="task must be"):
        load_recipe({"task": "segmentation", "model": {"arch": "tiny_cnn"}})
    with pytest.raises(ConfigError, match="multiple of 16"):
        load_recipe({"task": "detection", "model": {"arch": "tiny_centernet"}, "input": {"size": [50, 50]}})
    with pytest.raises(ModelError, match="unknown architecture"):
        build_model("vgg99", num_classes=2)


def test_cli_trains_and_prints_json(tmp_path, cls_data, capsys):
    import yaml

    from edgekit import cli

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe("classification", epochs=1)))
    code = cli.main(["train", str(recipe), "--data", cls_data, "--out", str(tmp_path / "o"), "--json",
                     "--no-progress", "--seed", "3", "--batch", "6"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["epochs_run"] == 1 and os.path.isfile(doc["best_path"])
    assert torch.load(doc["best_path"], weights_only=True)["recipe"]["seed"] == 3
    assert np.isfinite(doc["best"]["value"])


def test_thread_choice(monkeypatch):
    from edgekit.desktop.train.ddp import DistInfo
    from edgekit.desktop.train.run import pick_threads

    info = DistInfo()
    assert pick_threads(3, info) == 3
    with pytest.raises(ConfigError, match="threads"):
        pick_threads(0, info)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(os, "getloadavg", lambda: (2.2, 0, 0))
    assert pick_threads("auto", info) == 2                       # 4 cores, 2.2 busy
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 0, 0))
    assert pick_threads("auto", info) == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0, 0))
    assert pick_threads("auto", DistInfo(world_size=2)) == 2     # two local processes share 4 cores


@pytest.mark.parametrize("arch", ["mobilenet_v2", "mobilenet_v3_small", "resnet18"])
def test_torchvision_recipes_train_a_step(tmp_path, cls_data, arch):
    from edgekit.desktop.train.recipe import load_recipe

    rec = load_recipe(arch)
    rec.update(input={"size": [32, 32]}, epochs=1, batch=12)
    result = train(rec, cls_data, tmp_path / arch, progress=False)
    model, ckpt = load_checkpoint(result["best_path"])
    assert ckpt["arch"]["name"] == arch and ckpt["output_names"] == ["logits"]
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 5)
