"""Concrete sizes for dynamic inputs (device side, no onnx): metadata, --input-size, the --shapes advice."""

import pytest

from edgekit import inputsize
from edgekit.errors import ConfigError

P2O = ["p2o.DynamicDimension.0", 3, "p2o.DynamicDimension.1", "p2o.DynamicDimension.2"]


def test_size_from_the_models_metadata():
    assert inputsize.size_from_props({"imgsz": "[640, 480]"}) == (640, 480, "the model's metadata (imgsz)")
    assert inputsize.size_from_props({"imgsz": "320"})[:2] == (320, 320)
    edgekit = '{"input": {"shape": [1, 3, 224, 256]}}'
    assert inputsize.size_from_props({"edgekit": edgekit})[:2] == (224, 256)
    for bad in ({}, {"imgsz": "not a literal"}, {"imgsz": "[0, 640]"}, {"edgekit": "{"}):
        assert inputsize.size_from_props(bad) is None


def test_resolve_and_choose():
    assert inputsize.resolve(P2O, (320, 256)) == [1, 3, 320, 256]
    assert inputsize.resolve(P2O) == [1, 3, "p2o.DynamicDimension.1", "p2o.DynamicDimension.2"]
    assert inputsize.resolve(["n", "c", 8, 8]) == [1, 3, 8, 8]
    assert inputsize.dynamic_hw(P2O) and not inputsize.dynamic_hw([1, 3, 8, 8])
    assert inputsize.choose(P2O, "96x128", {"imgsz": "[640, 640]"}) == (96, 128, "--input-size")   # the flag wins
    assert inputsize.choose(P2O, None, {"imgsz": "[640, 640]"})[:2] == (640, 640)
    with pytest.raises(ConfigError, match="--input-size"):
        inputsize.choose(P2O, "big", None)


def test_profile_example_is_concrete():
    assert inputsize.profile_example("x", P2O) == "x:1x3x640x640/4x3x640x640/8x3x640x640"
    assert inputsize.profile_example("images", [1, 3, "height", "width"], (320, 320)) == \
        "images:1x3x320x320/1x3x320x320/1x3x320x320"
    assert inputsize.profile_example("tokens", ["batch", "seq"]) == "tokens:1x1/4x1/8x1"
    assert "example" in inputsize.example_note(False) and inputsize.example_note(True) == ""
