"""edgekit.engine.build against the TensorRT/pycuda STAND-INS (tests/standins), in both API shapes.

These test control flow, cache keys, invalidation, atomic writes and errors -- not TensorRT itself.
"""

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from standins import install  # noqa: E402
from standins.models import tiny_classifier  # noqa: E402

from edgekit.engine import build as build_mod  # noqa: E402
from edgekit.engine import cache, memory  # noqa: E402
from edgekit.engine.build import build_engine, parse_shapes, trtexec_command  # noqa: E402
from edgekit.errors import BackendUnavailable, ConfigError, ModelError, PrecisionError  # noqa: E402

NANO_MEMINFO = """MemTotal:        4059272 kB
MemFree:          812344 kB
MemAvailable:    2310552 kB
Buffers:           86220 kB
Cached:          1397564 kB
SwapCached:            0 kB
SwapTotal:       2029632 kB
SwapFree:        2029632 kB
"""
CALIB = b"TRT-8201-EntropyCalibration2\nimages: 3c010a14\nlogits: 3d9a5e2c\n"
CALIB_10 = CALIB.replace(b"TRT-8201", b"TRT-100300")          # the same scales, written for TensorRT 10.3.0


@pytest.fixture
def model(tmp_path):
    return tiny_classifier(tmp_path / "tiny.onnx")


@pytest.fixture
def logs():
    return []


def build(path, tmp_path, logs, **kw):
    kw.setdefault("cache_dir", str(tmp_path / "cache"))
    return build_engine(path, log=logs.append, **kw)


@pytest.mark.parametrize("api,cuda", [("8.2", "pycuda"), ("10", "pycuda"), ("10", "cuda-python")])
def test_build_then_cache_hit(tmp_path, monkeypatch, model, logs, api, cuda):
    standin = install(monkeypatch, api=api, cuda=cuda)
    first = build(model, tmp_path, logs)
    assert first.built and os.path.exists(first.path) and os.path.exists(first.sidecar)
    assert first.key["tensorrt"] == standin.trt.__version__ and first.key["gpu"] == "NVIDIA Tegra X1"
    assert first.key["compute_capability"] == "5.3" and first.key["cuda"] == "10.2"
    assert first.key_hash == cache.key_hash(first.key) and first.key_hash in first.path
    second = build(model, tmp_path, logs)
    assert not second.built and second.path == first.path
    assert sum(1 for name, _ in standin.calls if name == "build_serialized_network") == 1
    assert any("engine from cache" in m for m in logs)
    assert not standin.gpu.context_stack          # every context made was popped


def test_sidecar_carries_meta_with_the_engine_precision(tmp_path, monkeypatch, model, logs):
    install(monkeypatch, api="8.2")
    record = build(model, tmp_path, logs, precision="fp16")
    from edgekit.meta import read_meta

    meta = read_meta(record.path)
    assert meta.precision == "fp16" and meta.labels == ["a", "b", "c", "d"]
    with open(record.sidecar) as handle:
        data = json.load(handle)
    assert data["format"] == cache.FORMAT and data["key"] == record.key
    assert data["engine_bytes"] == os.path.getsize(record.path)


@pytest.mark.parametrize("api,expected", [("8.2", "max_workspace_size"), ("10", "set_memory_pool_limit")])
def test_workspace_through_the_api_of_each_release(tmp_path, monkeypatch, model, logs, api, expected):
    standin = install(monkeypatch, api=api)
    monkeypatch.setattr(memory, "read_meminfo", lambda path="/proc/meminfo": memory.parse_meminfo(NANO_MEMINFO))
    record = build(model, tmp_path, logs)
    with open(record.sidecar) as handle:
        data = json.load(handle)
    assert data["workspace_api"] == expected and data["workspace_mib"] == 256
    built = [d for name, d in standin.calls if name == "build_serialized_network"][0]
    assert built["workspace"] == 256 * 1024 ** 2
    assert any("workspace capped at 256 MiB" in m for m in logs)


def test_tensorrt_upgrade_invalidates_and_replaces_the_engine(tmp_path, monkeypatch, model, logs):
    install(monkeypatch, api="8.2")
    old = build(model, tmp_path, logs)
    install(monkeypatch, api="10")
    new = build(model, tmp_path, logs)
    assert new.built and new.path != old.path
    assert any("no longer matches (tensorrt 8.2.1.8 -> 10.3.0.26)" in m for m in logs)
    assert not os.path.exists(old.path) and not os.path.exists(old.sidecar)
    assert [e.engine for e in cache.entries(str(tmp_path / "cache"))] == [new.path]


def test_other_gpu_changes_the_key(tmp_path, monkeypatch, model, logs):
    install(monkeypatch, api="10")
    a = build(model, tmp_path, logs)
    install(monkeypatch, api="10", name="NVIDIA Orin", compute_capability=(8, 7))
    b = build(model, tmp_path, logs)
    assert a.key_hash != b.key_hash and b.built
    assert any("gpu NVIDIA Tegra X1 -> NVIDIA Orin" in m and "compute_capability 5.3 -> 8.7" in m for m in logs)


def test_damaged_engine_is_rebuilt(tmp_path, monkeypatch, model, logs):
    install(monkeypatch, api="8.2")
    record = build(model, tmp_path, logs)
    with open(record.path, "r+b") as handle:
        handle.truncate(10)
    again = build(model, tmp_path, logs)
    assert again.built and any("damaged" in m for m in logs)


def test_engine_that_fails_to_deserialize_is_rebuilt(tmp_path, monkeypatch, model, logs):
    install(monkeypatch, api="8.2")
    record = build(model, tmp_path, logs)
    garbage = b"not an engine"
    with open(record.path, "wb") as handle:
        handle.write(garbage)
    with open(record.sidecar) as handle:
        data = json.load(handle)
    data["engine_sha256"] = build_mod.fsutil.sha256_bytes(garbage)
    with open(record.sidecar, "w") as handle:
        json.dump(data, handle)
    again = build(model, tmp_path, logs)
    assert again.built and any("fails to deserialize" in m for m in logs)


def test_int8_on_a_nano_is_refused_not_dropped(tmp_path, monkeypatch, model, logs):
    install(monkeypatch, api="8.2", fast_int8=False)
    calib = tmp_path / "calib.cache"
    calib.write_bytes(CALIB)
    with pytest.raises(PrecisionError) as exc:
        build(model, tmp_path, logs, precision="int8", calib_cache=str(calib))
    assert "platform_has_fast_int8" in str(exc.value) and "--precision fp16" in str(exc.value)
    assert not os.path.exists(str(tmp_path / "cache")) or not cache.entries(str(tmp_path / "cache"))
    forced = build(model, tmp_path, logs, precision="int8", calib_cache=str(calib), force=True)
    assert forced.built and forced.warnings and "--force" in forced.warnings[-1]


def test_fp16_without_fast_fp16_is_refused(tmp_path, monkeypatch, model, logs):
    install(monkeypatch, api="10", fast_fp16=False)
    with pytest.raises(PrecisionError, match="no fast FP16"):
        build(model, tmp_path, logs, precision="fp16")
    assert build(model, tmp_path, logs, precision="fp32").built


def test_int8_with_calibration_cache_keys_on_its_hash(tmp_path, monkeypatch, model, logs):
    standin = install(monkeypatch, api="10", fast_int8=True)
    calib = tmp_path / "calib.cache"
    calib.write_bytes(CALIB_10)
    a = build(model, tmp_path, logs, precision="int8", calib_cache=str(calib))
    assert a.key["calib_sha256"] == build_mod.fsutil.sha256_file(str(calib))
    flags = [d["flags"] for n, d in standin.calls if n == "build_serialized_network"][-1]
    assert flags == ["BuilderFlag.FP16", "BuilderFlag.INT8"]
    calib.write_bytes(CALIB_10.replace(b"3d9a5e2c", b"3d9a5e2d"))
    b = build(model, tmp_path, logs, precision="int8", calib_cache=str(calib))
    assert b.built and b.key_hash != a.key_hash and any("calib file changed" in m for m in logs)


def test_int8_without_calibration_is_an_error(tmp_path, monkeypatch, model, logs):
    install(monkeypatch, api="10", fast_int8=True)
    with pytest.raises(PrecisionError, match="calibration cache"):
        build(model, tmp_path, logs, precision="int8")


def test_dynamic_input_needs_shapes_and_they_enter_the_key(tmp_path, monkeypatch, logs):
    install(monkeypatch, api="8.2")
    model = tiny_classifier(tmp_path / "dyn.onnx", dynamic_batch=True)
    with pytest.raises(ConfigError, match="dynamic dimensions"):
        build(model, tmp_path, logs)
    with pytest.raises(ConfigError, match="not inputs"):
        build(model, tmp_path, logs, shapes=["input:1x3x8x8"])
    with pytest.raises(ConfigError, match="does not fit"):
        build(model, tmp_path, logs, shapes=["images:1x3x9x8"])
    a = build(model, tmp_path, logs, shapes=["images:1x3x8x8/2x3x8x8/4x3x8x8"])
    assert a.key["shapes"] == {"images": [[1, 3, 8, 8], [2, 3, 8, 8], [4, 3, 8, 8]]}
    b = build(model, tmp_path, logs, shapes={"images": [[1, 3, 8, 8], [1, 3, 8, 8], [8, 3, 8, 8]]})
    assert b.key_hash != a.key_hash


def test_tensorrt_82_parses_a_newer_opset_when_it_has_the_operators(tmp_path, monkeypatch, logs):
    """onnx-tensorrt 8.2-GA has no opset ceiling (it warns below opset 7): opset 17 with 8.2's operators parses."""
    model = tiny_classifier(tmp_path / "new.onnx", opset=17)
    install(monkeypatch, api="8.2")
    assert build(model, tmp_path, logs).built
    install(monkeypatch, api="10")
    assert build(model, tmp_path, logs).built


def test_operator_tensorrt_82_lacks_is_a_model_error_naming_it(tmp_path, monkeypatch, logs):
    model = tiny_classifier(tmp_path / "hardmax.onnx", opset=13, tail_op="Hardmax")    # no 8.2 importer
    install(monkeypatch, api="8.2")
    with pytest.raises(ModelError) as exc:
        build(model, tmp_path, logs)
    text = str(exc.value) + " " + (exc.value.hint or "")
    assert "Hardmax" in text and "Plugin not found" in text and "lists them per operator" in text
    assert "opset <= 13" not in text
    install(monkeypatch, api="10")
    assert build(model, tmp_path, logs).built


def test_out_of_memory_during_build_leaves_nothing_behind(tmp_path, monkeypatch, model, logs):
    standin = install(monkeypatch, api="8.2")

    def boom(self, network, config):
        raise MemoryError()
    monkeypatch.setattr(standin.trt.Builder, "build_serialized_network", boom)
    with pytest.raises(memory.MemoryShortage) as exc:
        build(model, tmp_path, logs)
    assert "multi-user.target" in str(exc.value) and "--workspace" in str(exc.value)
    leftovers = [n for n in os.listdir(str(tmp_path / "cache")) if not n.startswith("timing-")] \
        if os.path.isdir(str(tmp_path / "cache")) else []
    assert leftovers == []


def test_failed_sidecar_write_removes_the_engine(tmp_path, monkeypatch, model, logs):
    install(monkeypatch, api="10")

    def fail(path, obj):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(cache.fsutil, "atomic_write_json", fail)
    with pytest.raises(OSError):
        build(model, tmp_path, logs)
    names = os.listdir(str(tmp_path / "cache"))
    assert not [n for n in names if n.endswith(".engine") or n.endswith(".tmp")]


def test_timing_cache_is_reused_across_builds(tmp_path, monkeypatch, model, logs):
    standin = install(monkeypatch, api="8.2")
    timing = str(tmp_path / "timing.cache")
    build(model, tmp_path, logs, timing_cache=timing, precision="fp16")
    build(model, tmp_path, logs, timing_cache=timing, precision="fp32")
    loaded = [d for n, d in standin.calls if n == "create_timing_cache"]
    assert loaded == [0, 1]
    with open(timing, "rb") as handle:
        assert handle.read() == b"STANDIN-TIMING:2"


def test_without_tensorrt_the_error_names_the_jetpack_package(tmp_path, monkeypatch, model, logs):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendUnavailable, match="python3-libnvinfer"):
        build(model, tmp_path, logs)


def test_bad_inputs_fail_before_tensorrt(tmp_path, model, logs):
    with pytest.raises(ModelError):
        build(str(tmp_path / "missing.onnx"), tmp_path, logs)
    with pytest.raises(ConfigError, match="unknown precision"):
        build(model, tmp_path, logs, precision="int4")
    bad = tmp_path / "bad.cache"
    bad.write_bytes(b"not a cache")
    with pytest.raises(ModelError, match="not a TensorRT calibration cache"):
        build(model, tmp_path, logs, precision="int8", calib_cache=str(bad))


def test_calibration_cache_is_ignored_with_a_message_for_fp16(tmp_path, monkeypatch, model, logs):
    install(monkeypatch, api="8.2")
    calib = tmp_path / "c.cache"
    calib.write_bytes(CALIB)
    record = build(model, tmp_path, logs, precision="fp16", calib_cache=str(calib))
    assert record.key["calib_sha256"] is None and any("not used: only INT8" in m for m in logs)


def test_calibration_cache_of_another_tensorrt_is_refused_up_front(tmp_path, monkeypatch, model, logs):
    standin = install(monkeypatch, api="10", fast_int8=True)
    calib = tmp_path / "c.cache"
    calib.write_bytes(CALIB)                       # written for 8.2.1
    with pytest.raises(ModelError) as exc:
        build(model, tmp_path, logs, precision="int8", calib_cache=str(calib))
    assert "TRT-8201-EntropyCalibration2" in str(exc.value) and "TRT-100300-EntropyCalibration2" in str(exc.value)
    assert "recalibrate" in str(exc.value) and "--target jetson-orin-nano" in exc.value.hint
    assert not [c for c in standin.calls if c[0] == "build_serialized_network"]
    calib.write_bytes(CALIB_10)                    # the cache for this TensorRT builds
    assert build(model, tmp_path, logs, precision="int8", calib_cache=str(calib)).built


def test_tensorrt_recalibrates_a_mismatched_cache_and_a_cache_only_calibrator_fails(monkeypatch):
    """What edgekit's up-front refusal prevents: the stand-in builder, like TensorRT, ignores a cache of
    another version, recalibrates, gets no batch from the cache-only calibrator and builds nothing."""
    standin = install(monkeypatch, api="10", fast_int8=True)
    trt = standin.trt
    for calib_bytes, built in ((CALIB, False), (CALIB_10, True)):
        builder = trt.Builder(trt.Logger())
        network = builder.create_network(0)
        network.inputs, network.outputs, network.onnx = [], [], b""
        config = builder.create_builder_config()
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = build_mod.make_cache_calibrator(trt, calib_bytes)
        assert (builder.build_serialized_network(network, config) is not None) == built
    assert ("trt.recalibrate", "TRT-8201-EntropyCalibration2") in standin.calls


@pytest.mark.parametrize("text,expected", [
    (["x:1x3x8x8"], {"x": [[1, 3, 8, 8]] * 3}),
    (["a:b:1x2/2x2/4x2"], {"a:b": [[1, 2], [2, 2], [4, 2]]}),
])
def test_parse_shapes(text, expected):
    assert parse_shapes(text) == expected


@pytest.mark.parametrize("bad", ["x", "x:1x3", "x:1x3/2x3", "x:4x3/2x3/1x3", "x:1xQ", "x:0x3"])
def test_parse_shapes_rejects(bad):
    if bad == "x:1x3":
        assert parse_shapes([bad]) == {"x": [[1, 3]] * 3}
        return
    with pytest.raises(ConfigError):
        parse_shapes([bad])


def test_trtexec_command_per_release():
    shapes = {"images": [[1, 3, 8, 8], [2, 3, 8, 8], [4, 3, 8, 8]]}
    old = trtexec_command("m.onnx", "fp16", 256, shapes, None, "t.cache", "m.engine", series="8.2")
    assert old[1:] == ["--onnx=m.onnx", "--saveEngine=m.engine", "--fp16", "--workspace=256",
                       "--minShapes=images:1x3x8x8", "--optShapes=images:2x3x8x8", "--maxShapes=images:4x3x8x8",
                       "--timingCacheFile=t.cache"]
    new = trtexec_command("m.onnx", "int8", 512, None, "c.cache", series="10")
    assert new[1:] == ["--onnx=m.onnx", "--fp16", "--int8", "--calib=c.cache", "--memPoolSize=workspace:512"]


def test_unwritable_cache_dir_is_a_config_error(tmp_path, monkeypatch, model, logs):
    install(monkeypatch, api="8.2")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="cannot create the engine cache"):
        build(model, tmp_path, logs, cache_dir=str(blocker / "cache"))


def test_qdq_model_builds_int8_without_a_calibration_cache(tmp_path, monkeypatch, logs):
    standin = install(monkeypatch, api="10", fast_int8=True)
    model = tiny_classifier(tmp_path / "qdq.onnx", qdq=True)
    record = build(model, tmp_path, logs, precision="int8")
    assert record.built and record.key["calib_sha256"] is None and record.meta["precision"] == "int8"
    flags = [d["flags"] for n, d in standin.calls if n == "build_serialized_network"][-1]
    assert "BuilderFlag.INT8" in flags


def test_a_long_build_says_it_is_still_building(tmp_path, monkeypatch, model, logs):
    import time

    standin = install(monkeypatch, api="10")
    real = standin.trt.Builder.build_serialized_network

    def slow(self, network, config):
        time.sleep(0.2)
        return real(self, network, config)
    monkeypatch.setattr(standin.trt.Builder, "build_serialized_network", slow)
    monkeypatch.setattr(build_mod.Heartbeat, "every", 0.05)
    assert build(model, tmp_path, logs).built
    assert any(m.startswith("still building (") for m in logs)


def test_one_tensorrt_logger_for_builder_and_runtime(tmp_path, monkeypatch, model, logs):
    """TensorRT warns when createInferRuntime gets another logger than the builder had: one per process."""
    from edgekit.runners import open_runner

    standin = install(monkeypatch, api="8.2")
    record = build(model, tmp_path, logs)
    with open_runner("tensorrt", record.path) as runner:
        runner.infer({"images": np.zeros((1, 3, 8, 8), np.float32)})
    assert sum(1 for name, _ in standin.calls if name == "trt.Logger") == 1


def test_tensorrt_11_builds_are_refused_with_what_is_missing(tmp_path, monkeypatch, model, logs):
    """TensorRT 11.0's Python bindings (NVIDIA/TensorRT release/11.0 pyCore.cpp) have no BuilderFlag.FP16/INT8,
    no calibrators and no platform_has_fast_*: edgekit refuses to build there instead of failing half way."""
    standin = install(monkeypatch, api="10", version="11.0.0.12")
    with pytest.raises(BackendUnavailable) as exc:
        build(model, tmp_path, logs)
    assert "TensorRT 11.0.0.12" in str(exc.value) and "BuilderFlag.FP16/INT8" in str(exc.value)
    assert "unverified" in str(exc.value) and ".engine" in exc.value.hint
    assert not [c for c in standin.calls if c[0] == "build_serialized_network"]


def test_an_engine_runs_on_tensorrt_11_through_the_tensor_name_api(tmp_path, monkeypatch, model, logs):
    from edgekit.runners import open_runner

    install(monkeypatch, api="10", version="11.0.0.12")
    trt = sys.modules["tensorrt"]
    builder = trt.Builder(trt.Logger())          # an engine built elsewhere for this TensorRT (stand-in bytes)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, trt.Logger())
    assert parser.parse(open(model, "rb").read())
    engine = tmp_path / "m.engine"
    engine.write_bytes(bytes(builder.build_serialized_network(network, builder.create_builder_config())))
    with open_runner("tensorrt", str(engine)) as runner:
        out = runner.infer({"images": np.ones((1, 3, 8, 8), np.float32)})
    assert out["logits"].shape == (1, 4) and runner.describe()["api"] == "tensor-names"
