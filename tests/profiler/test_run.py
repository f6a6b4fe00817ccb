"""Model runs: the measurement loop, the result schema, sweeps, and flag checking."""

import json

import pytest

from edgekit.errors import ConfigError, ModelError
from edgekit.profiler import report, run

FAST = dict(warmup_ms=20, duration_s=0.15, min_iters=30, telemetry=False, log=lambda m: None)


def test_measure_keeps_warmup_and_first_call_apart():
    calls = []
    timings = iter(range(10 ** 6))

    def fn():
        calls.append(1)

    out = run.measure(fn, warmup_ms=0, duration_s=0, min_iters=7, timing=lambda: {"compute": next(timings)})
    # 1 first call + MIN_WARMUP_RUNS warm-up calls + 7 timed calls
    assert len(calls) == 1 + run.MIN_WARMUP_RUNS + 7
    assert out["warmup_runs"] == run.MIN_WARMUP_RUNS
    assert len(out["samples"]) == 7 and out["first_ms"] >= 0
    assert out["stages"]["compute"] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]     # timed calls only


def test_measure_meets_both_duration_and_count():
    out = run.measure(lambda: None, warmup_ms=0, duration_s=0.05, min_iters=3)
    assert len(out["samples"]) > 3 and out["wall_s"] >= 0.05


def test_profile_model_result_schema(tiny_model):
    result = run.profile_model(tiny_model, backend="onnxruntime", threads=1, **FAST)
    assert result["schema_version"] == 1 and result["kind"] == "model"
    lat = result["latency_ms"]
    assert {"min", "mean", "std", "p50", "p90", "p95", "p99", "max", "samples"} <= set(lat)
    assert len(lat["samples"]) == result["iterations"] >= 30
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert result["throughput_fps"] == pytest.approx(result["iterations"] / result["wall_s"])
    ctx = result["context"]
    assert ctx["backend"] == "onnxruntime" and ctx["provider"] == "CPUExecutionProvider"
    assert ctx["threads"] == 1 and ctx["precision"] == "fp32" and ctx["batch"] == 1
    assert ctx["input_shapes"] == {"images": [1, 3, 32, 32]} and ctx["cpu_count"] >= 1
    assert result["first_inference_ms"] > 0
    # fewer than 662 samples cannot back p99: warned exactly then
    assert any("too few to back" in w and "p99" in w for w in result["warnings"]) == (result["iterations"] < 662)


def test_json_round_trip(tiny_model, tmp_path):
    result = run.profile_model(tiny_model, backend="onnxruntime", batch=2, **FAST)
    path = str(tmp_path / "r.json")
    report.write_json(path, result)
    back = report.load_json(path)
    assert back["latency_ms"]["samples"] == result["latency_ms"]["samples"]
    assert back["context"]["input_shapes"] == {"images": [2, 3, 32, 32]}
    assert back["throughput_fps"] == pytest.approx(2 * back["iterations"] / back["wall_s"])


def test_load_json_refuses_other_files(tmp_path):
    cases = {"a.json": "not json", "b.json": json.dumps({"x": 1}),
             "c.json": json.dumps({"schema_version": 99, "kind": "model", "latency_ms": {}})}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError):
            report.load_json(str(tmp_path / name))


def test_sweep_one_row_per_batch_and_thread(tiny_model):
    result = run.profile_sweep(tiny_model, batches=[1, 2], threads=[1, 2], backend="onnxruntime", **FAST)
    keys = [(r["context"]["batch"], r["context"]["threads"]) for r in result["runs"]]
    assert keys == [(1, 1), (1, 2), (2, 1), (2, 2)]
    csv_lines = report.csv_text(result).strip().splitlines()
    assert len(csv_lines) == 5 and csv_lines[0].startswith("batch,threads,first ms")


def test_fixed_batch_and_bad_flags_are_user_errors(fixed_batch_model, tiny_model):
    with pytest.raises(ConfigError, match="fixed batch of 1"):
        run.profile_model(fixed_batch_model, backend="onnxruntime", batch=4, **FAST)
    with pytest.raises(ConfigError, match="runs the model file as it is"):
        run.profile_model(tiny_model, backend="onnxruntime", precision="fp16", **FAST)
    with pytest.raises(ConfigError, match="model's input names"):
        run.profile_model(tiny_model, backend="onnxruntime", input_shapes={"x": [1, 3, 8, 8]}, **FAST)
    with pytest.raises(ModelError):
        run.profile_model("/nonexistent.onnx", backend="onnxruntime", **FAST)
    assert run.parse_input_shapes(["images:1x3x64x64"]) == {"images": [1, 3, 64, 64]}
    for bad in (["images"], ["images:1xAx3"], [":1x3"], ["images:0x3"]):
        with pytest.raises(ConfigError):
            run.parse_input_shapes(bad)
    with pytest.raises(ConfigError):
        run.parse_int_list("1,x", "--batch")


def test_input_shape_sets_dynamic_dims_only(tiny_model):
    result = run.profile_model(tiny_model, backend="onnxruntime", input_shapes={"images": [3, 3, 32, 32]}, **FAST)
    assert result["context"]["input_shapes"] == {"images": [3, 3, 32, 32]}
    with pytest.raises(ConfigError, match="does not fit"):
        run.profile_model(tiny_model, backend="onnxruntime", input_shapes={"images": [1, 3, 16, 16]}, **FAST)


def test_clock_warnings_on_a_jetson():
    assert run.clock_warnings({}) == []
    unpinned = {"jetson": {"clocks": {"pinned": False}}}
    assert "jetson_clocks" in run.clock_warnings(unpinned)[0]
    assert run.clock_warnings({"jetson": {"clocks": {"pinned": True}}}) == []
    assert "could not tell" in run.clock_warnings({"jetson": {"clocks": {"pinned": None}}})[0]


def test_tensorrt_timing_split_and_zero_copy_rows_on_the_stand_in(tmp_path, monkeypatch):
    """On the TensorRT/pycuda STAND-INS (tests/standins; not TensorRT itself): the runner's
    h2d/compute/d2h split lands in backend_timing_ms, and --zero-copy both gives a row each."""
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from standins import install
    from standins.models import tiny_classifier

    install(monkeypatch, api="8.2", copy_ms_per_mb=1000.0, compute_ms=3.0)
    model = tiny_classifier(tmp_path / "m.onnx", size=32)
    result = run.profile_sweep(model, zero_copy=[False, True], backend="tensorrt",
                               runner_options={"cache_dir": str(tmp_path / "c")}, **FAST)
    copies, mapped = result["runs"]
    assert copies["context"]["precision"] == "fp16" and copies["context"]["runner"]["zero_copy"] is False
    assert copies["backend_timing_ms"]["compute"]["p50"] == pytest.approx(3.0)
    assert copies["backend_timing_ms"]["h2d"]["p50"] == pytest.approx(3 * 32 * 32 * 4 / 1e6 * 1000.0)
    assert mapped["context"]["runner"]["zero_copy"] is True
    assert mapped["backend_timing_ms"]["h2d"]["max"] == 0.0
    table = report.text(result)
    assert "zero-copy" in table.splitlines()[3]
