import pytest

from edgekit import targets
from edgekit.errors import ConfigError, PrecisionError


def test_required_presets_exist():
    for name in ("jetson-nano", "jetson-xavier-nx", "jetson-orin-nano", "x86-cpu"):
        t = targets.get_target(name)
        assert t.name == name
        assert t.max_opset >= 13


def test_nano_facts_match_platform_md():
    nano = targets.get_target("jetson-nano")
    assert nano.tensorrt.startswith("8.2") and nano.tensorrt_series() == "8.2"
    assert nano.max_opset == 13
    assert nano.peak_flops["fp16"] == 472e9
    assert nano.memory_bandwidth == 25.6e9
    assert nano.int8 is False and "int8" not in nano.fast_precisions
    assert nano.latency_calibration == {"resnet18@224": 11.4, "resnet50@224": 29.8}


def test_series():
    assert targets.get_target("jetson-xavier-nx").tensorrt_series() == "8.5"
    assert targets.get_target("jetson-orin-nano").tensorrt_series() == "10"
    assert targets.get_target("x86-cpu").tensorrt_series() is None


def test_nano_refuses_int8_with_advice():
    with pytest.raises(PrecisionError) as exc:
        targets.get_target("jetson-nano").check_precision("int8")
    text = exc.value.one_line()
    assert "no fast int8" in text and "--precision fp16" in text and "--force" in text


def test_force_turns_refusal_into_warning():
    warning = targets.get_target("jetson-nano").check_precision("int8", force=True)
    assert "forced" in warning
    assert targets.get_target("jetson-orin-nano").check_precision("int8") is None


def test_unknown_precision_and_target():
    with pytest.raises(PrecisionError):
        targets.get_target("x86-cpu").check_precision("int4")
    with pytest.raises(ConfigError) as exc:
        targets.get_target("nano")
    assert "jetson-nano" in str(exc.value)
