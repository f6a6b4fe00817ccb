"""Per-layer times: ORT's profiler trace (real, on a tiny model) and TensorRT's IProfiler (stand-in)."""

import numpy as np
import pytest

from edgekit.errors import ConfigError
from edgekit.profiler import layers


def event(name, dur, ts, op="Conv", cat="Node"):
    return {"cat": cat, "name": name, "dur": dur, "ts": ts, "args": {"op_name": op, "provider": "CPUExecutionProvider"}}


def test_parse_by_hand_skips_the_first_run():
    events = [
        {"cat": "Session", "name": "model_run", "ts": 0, "dur": 100},
        event("conv_kernel_time", 90, 5),                 # first run: dropped
        {"cat": "Session", "name": "model_run", "ts": 200, "dur": 100},
        event("conv_kernel_time", 300, 210), event("conv_fence_before", 999, 209), event("fc_kernel_time", 100, 250, "Gemm"),
        {"cat": "Session", "name": "model_run", "ts": 400, "dur": 100},
        event("conv_kernel_time", 500, 410), event("fc_kernel_time", 100, 450, "Gemm"),
    ]
    report = layers.parse_ort_profile(events)
    assert report["runs"] == 2
    by = dict((x["name"], x) for x in report["layers"])
    assert by["conv"]["ms"] == pytest.approx(0.4) and by["conv"]["calls"] == 2 and by["conv"]["op"] == "Conv"
    assert by["fc"]["ms"] == pytest.approx(0.1)
    assert [x["name"] for x in report["layers"]] == ["conv", "fc"]            # slowest first
    assert by["conv"]["share"] == pytest.approx(0.8)
    cut = layers.keep_top(report, 1)
    assert len(cut["layers"]) == 1 and cut["others_ms"] == pytest.approx(0.1) and cut["others_count"] == 1
    assert layers.keep_top(report, None) is report


def test_real_ort_trace_on_a_tiny_model(tiny_model):
    feed = {"images": np.zeros((1, 3, 32, 32), np.float32)}
    report = layers.profile_layers(tiny_model, "onnxruntime", feed, {"threads": 1}, top=None, runs=5)
    assert report["runs"] == 5 and report["backend"] == "onnxruntime"
    ops = set(x["op"] for x in report["layers"])
    assert "Conv" in ops and report["total_ms"] > 0
    assert all(x["calls"] == 5 for x in report["layers"])
    assert sum(x["share"] for x in report["layers"]) == pytest.approx(1.0)


def test_other_backends_are_refused(tiny_model):
    with pytest.raises(ConfigError, match="--layers"):
        layers.profile_layers(tiny_model, "opencv", {}, top=3)


class StandInTrt(object):
    """Stand-in for the two TensorRT calls the layer profiler uses: the ``IProfiler`` base class and
    ``IExecutionContext.profiler`` (TensorRT calls ``report_layer_time(name, ms)`` per layer)."""

    class IProfiler(object):
        def __init__(self):
            pass


class StandInContext(object):
    def __init__(self):
        self.profiler = None


class StandInRunner(object):
    """An active TensorRT runner as trt_layers sees it: ``context`` and ``infer``."""

    LAYERS = (("conv1 + relu1", 0.5), ("fc", 0.25))

    def __init__(self):
        self.context = StandInContext()

    def infer(self, feed, check=True):
        for name, ms in self.LAYERS:
            if self.context.profiler is not None:
                self.context.profiler.report_layer_time(name, ms)


def test_tensorrt_layer_profiler_on_a_stand_in():
    runner = StandInRunner()
    report = layers.trt_layers(runner, {}, runs=4, trt=StandInTrt)
    assert runner.context.profiler is None              # detached afterwards
    by = dict((x["name"], x) for x in report["layers"])
    assert by["conv1 + relu1"]["ms"] == pytest.approx(0.5) and by["conv1 + relu1"]["calls"] == 4
    assert report["total_ms"] == pytest.approx(0.75) and report["runs"] == 4
