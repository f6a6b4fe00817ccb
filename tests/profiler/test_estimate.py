"""The roofline estimate (C3): calibration on the two published Jetson Nano figures reproduces them,
the fitted constants in estimate.py are the ones fit() derives, and the method's parts behave."""

import io
import warnings

import pytest

from edgekit.errors import ConfigError
from edgekit.profiler import estimate as est
from edgekit.targets import get_target


@pytest.fixture(scope="module")
def resnet_costs():
    """layer_costs of torchvision ResNet-18/50 at 224 (random weights: they do not change the estimate)."""
    import onnx
    import torch
    import torchvision

    from edgekit.desktop.export.graph import layer_costs

    out = {}
    for name in ("resnet18", "resnet50"):
        model = getattr(torchvision.models, name)().eval()
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, torch.zeros(1, 3, 224, 224), buf, dynamo=False, opset_version=13,
                              input_names=["images"], output_names=["logits"])
        out[name] = layer_costs(onnx.load_from_string(buf.getvalue()))
    return out


def test_reproduces_the_nano_calibration_figures(resnet_costs):
    published = get_target("jetson-nano").latency_calibration
    for name in ("resnet18", "resnet50"):
        result = est.estimate(resnet_costs[name], "jetson-nano", "fp16")
        assert result["latency_ms"] == pytest.approx(published[name + "@224"], rel=0.02), name
        assert result["target"] == "jetson-nano" and result["precision"] == "fp16"
        assert {"name", "op", "ms", "bound"} <= set(result["layers"][0])
        assert "unvalidated" in result["error_note"]


def test_stored_constants_are_what_fit_derives(resnet_costs):
    published = get_target("jetson-nano").latency_calibration
    fitted = est.fit([(resnet_costs["resnet18"], published["resnet18@224"]),
                      (resnet_costs["resnet50"], published["resnet50@224"])])
    assert fitted["spatial"] == pytest.approx(est.EFFICIENCY["spatial"], abs=0.005)
    assert fitted["other"] == pytest.approx(est.EFFICIENCY["other"], abs=0.005)
    assert 0 < fitted["other"] < fitted["spatial"] < 1          # physical: below peak


def test_one_factor_model_misses_resnet50_as_documented(resnet_costs):
    """The docstring says a single efficiency fitted on ResNet-18 predicts ResNet-50 14% low."""
    def total(costs, e):
        return sum(x["ms"] for x in est.layer_times(costs, 472e9, 25.6e9, 2, {"spatial": e, "other": e}))

    e = est._bisect(lambda v: total(resnet_costs["resnet18"], v) - 11.4, 0.01, 5.0)
    assert total(resnet_costs["resnet50"], e) / 29.8 - 1 == pytest.approx(-0.14, abs=0.01)


def layer(op, flops, elems_in, elems_out, params=0, **extra):
    d = {"name": op.lower(), "op": op, "flops": flops, "params": params, "input_elements": elems_in,
         "output_elements": elems_out, "weight_bytes": 4 * params, "input_bytes": 4 * elems_in,
         "output_bytes": 4 * elems_out}
    d.update(extra)
    return d


def test_roofline_parts():
    conv = layer("Conv", 472e6, 1000, 1000, kernel=[3, 3], stride=[1, 1], group=1)
    fc = layer("Gemm", 2e6, 1000, 1000, params=1000 * 1000)
    relu = layer("Relu", 1000, 1000, 1000)
    r = est.estimate([conv, relu, fc], "jetson-nano", "fp16")
    by = dict((x["op"], x) for x in r["layers"])
    assert "Relu" not in by                                         # fused
    assert by["Conv"]["bound"] == "compute"
    assert by["Conv"]["ms"] == pytest.approx(1000.0 * 472e6 / (est.EFFICIENCY["spatial"] * 472e9))
    assert by["Gemm"]["bound"] == "memory"                          # a weight-streaming FC layer
    assert by["Gemm"]["ms"] == pytest.approx(1000.0 * (2 * 1002000) / (est.EFF_MEMORY * 25.6e9))
    # fp32 halves the peak and doubles the bytes
    r32 = est.estimate([conv, fc], "jetson-nano", "fp32")
    assert r32["latency_ms"] == pytest.approx(2 * r["latency_ms"], rel=1e-6)
    assert est.kernel_class(layer("Conv", 1, 1, 1, kernel=[3, 3], stride=[2, 2], group=1)) == "other"
    assert est.kernel_class(layer("Conv", 1, 1, 1, kernel=[3, 3], stride=[1, 1], group=8)) == "other"


def test_targets_without_figures_and_bad_precision_are_user_errors():
    conv = layer("Conv", 1e6, 10, 10, kernel=[1, 1], stride=[1, 1], group=1)
    with pytest.raises(ConfigError, match="x86-cpu"):
        est.estimate([conv], "x86-cpu")
    with pytest.raises(ConfigError, match="int8"):
        est.estimate([conv], "jetson-nano", "int8")
    with pytest.raises(ConfigError, match="precision"):
        est.estimate([conv], "jetson-nano", "bf16")
    other = est.estimate([conv], "jetson-orin-nano", "fp16")
    assert "extrapolation" in other["error_note"]
