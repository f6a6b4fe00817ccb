"""Detectors on torchvision backbones: build, a few training steps on generated scenes, export lint-clean for
the Jetson Nano with the CenterNet decoder in the metadata, and --weights with fitting and unfitting files."""


import numpy as np
import pytest
import torch

from edgekit.desktop.train.models import build_model, load_pretrained
from edgekit.desktop.train.recipe import load_recipe
from edgekit.desktop.train.run import train
from edgekit.errors import ModelError

torch.set_num_threads(1)
BACKBONES = ("mobilenet_v3_large", "mobilenet_v3_small", "resnet18")


def tiny(backbone, **over):
    rec = {"name": "tiny-" + backbone, "task": "detection", "model": {"arch": "centernet_" + backbone,
                                                                      "kwargs": {"neck": 16}},
           "input": {"size": [64, 64]}, "preprocess": {"resize": "letterbox"}, "epochs": 1, "batch": 4,
           "augment": {"hflip": 0.5, "hsv": [0.01, 0.3, 0.3], "scale": [0.7, 1.3], "mosaic": "auto"},
           "decoder": {"nms_iou": 0.6}, "eval": {"metric": "map50_95"},
           "data": {"scenes": {"train": 8, "val": 4, "size": 64}}}
    rec.update(over)
    return rec


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from edgekit.desktop.data.scenes import make_scenes

    return make_scenes(tmp_path_factory.mktemp("scenes") / "s", train=8, val=4, size=64, seed=0)


def test_recipes_in_models_load_for_each_backbone_and_size():
    for backbone in BACKBONES:
        for size in (320, 416):
            rec = load_recipe("det-%s-%d" % (backbone, size))
            assert rec["model"]["arch"] == "centernet_" + backbone and rec["input"]["size"] == [size, size]
            assert rec["decoder"]["type"] == "centernet" and rec["decoder"]["stride"] == 8


@pytest.mark.parametrize("backbone", BACKBONES)
def test_a_few_training_steps_then_export_lint_clean_for_the_nano(backbone, scenes, tmp_path):
    from edgekit.desktop.export.run import export_model
    from edgekit.meta import read_meta

    result = train(tiny(backbone), scenes, tmp_path / "run", device="cpu", progress=False)
    best = result["best"]
    assert best["metric"] == "map50_95" and 0.0 <= best["value"] <= best["metrics"]["map50"] + 1e-9
    assert len(result["history"][0]["per_class_ap50_95"]) == 10
    report = export_model(result["best_path"], str(tmp_path / "det.onnx"), target="jetson-nano", log=lambda s: None)
    assert report["opset"] == 13
    assert report["lint"]["problems"] == [], report["lint"]["problems"]
    assert report["outputs"] == {"heatmap": [1, 10, 8, 8], "regression": [1, 4, 8, 8]}
    meta = read_meta(str(tmp_path / "det.onnx"))
    assert meta.decoder["type"] == "centernet" and meta.decoder["stride"] == 8 and meta.labels[0] == "circle"


def test_mosaic_is_on_from_scratch_and_off_with_weights(scenes, tmp_path):
    import torchvision

    from edgekit.desktop.train import run as run_mod

    seen = []
    original = run_mod._Run._loop

    def spy(self, loader, start, root):
        seen.append(self.train_ds.mosaic_p)
        return original(self, loader, start, root)

    path = str(tmp_path / "mnv3s.pth")
    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), path)
    run_mod._Run._loop = spy
    try:
        train(tiny("mobilenet_v3_small"), scenes, tmp_path / "a", device="cpu", progress=False)
        train(tiny("mobilenet_v3_small"), scenes, tmp_path / "b", device="cpu", progress=False, weights=path)
    finally:
        run_mod._Run._loop = original
    assert seen == [1.0, 0.0]


@pytest.mark.parametrize("backbone", ("mobilenet_v3_large", "resnet18"))
def test_weights_from_a_torchvision_state_dict(backbone, tmp_path):
    import torchvision

    torch.manual_seed(1)
    source = getattr(torchvision.models, backbone)(weights=None)
    path = str(tmp_path / "backbone.pth")
    torch.save(source.state_dict(), path)
    model = build_model("centernet_" + backbone, num_classes=3, neck=16)
    loaded, unused = load_pretrained(model, path)
    assert unused > 0                                     # the classifier (and MobileNet's last 1x1 conv)
    for key, value in model.body.state_dict().items():
        assert torch.equal(value, source.state_dict()[key]), key


def test_weights_that_do_not_fit_name_the_expected_keys(tmp_path):
    import torchvision

    model = build_model("centernet_resnet18", num_classes=3, neck=16)
    other = str(tmp_path / "mnv3.pth")
    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), other)
    with pytest.raises(ModelError, match=r"does not fit the resnet18 backbone: 1\d\d of 1\d\d expected tensors "
                                         r"missing \(e.g. conv1.weight, bn1.weight"):
        load_pretrained(model, other)
    wide = torchvision.models.resnet18(weights=None).state_dict()
    wide["conv1.weight"] = torch.zeros(32, 3, 7, 7)
    bad = str(tmp_path / "wide.pth")
    torch.save(wide, bad)
    with pytest.raises(ModelError, match=r"1 with another shape \(e.g. conv1.weight \(file \[32, 3, 7, 7\], "
                                         r"expected \[64, 3, 7, 7\]\)"):
        load_pretrained(model, bad)
    junk = str(tmp_path / "junk.pth")
    torch.save({"a": 1}, junk)
    with pytest.raises(ModelError, match="holds no state_dict of tensors"):
        load_pretrained(model, junk)


def test_input_size_must_reach_stride_32():
    from edgekit.errors import ConfigError

    with pytest.raises(ConfigError, match="multiple of 32"):
        load_recipe(tiny("resnet18", input={"size": [48, 48]}))


def test_outputs_at_stride_8_for_each_backbone():
    for backbone in BACKBONES:
        model = build_model("centernet_" + backbone, num_classes=5, neck=16).eval()
        with torch.no_grad():
            heat, reg = model(torch.zeros(1, 3, 96, 64))
        assert heat.shape == (1, 5, 12, 8) and reg.shape == (1, 4, 12, 8)
        assert float(heat.min()) >= 0 and float(heat.max()) <= 1
        assert np.isfinite(reg.numpy()).all()


def test_time_budget_stops_training_and_validates_once(scenes, tmp_path):
    result = train(tiny("mobilenet_v3_small", epochs=500), scenes, tmp_path / "t", device="cpu", progress=False,
                   time_budget=1.0)
    assert "time budget" in result["stopped_early"]
    assert result["epochs_run"] == 1 and result["best"]["metric"] == "map50_95"      # one scored record
    with pytest.raises(Exception, match="--time-budget must be a positive number"):
        train(tiny("mobilenet_v3_small"), scenes, tmp_path / "u", device="cpu", progress=False, time_budget=-1)
