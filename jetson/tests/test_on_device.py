"""The on-device suite: engine build and cache, parity with a CPU reference, zero-copy, dynamic
shapes, latency, one camera frame. Runs on a Jetson (jetson/selftest); skips elsewhere."""

import os
import time

import numpy as np
import pytest

STANDIN = os.environ.get("EDGEKIT_SELFTEST_STANDIN") == "1"

pytestmark = pytest.mark.jetson
QUIET = dict(log=lambda message: None)
TOLERANCE = dict(rtol=2e-2, atol=2e-2)           # FP16 engine vs FP32 reference


def reference_outputs(model, feed, report=None):
    """ONNX Runtime when installed, else OpenCV's dnn (JetPack has cv2): (outputs, backend name). Without
    either, the report says "parity not checked" (selftest then exits 4), never a silent skip."""
    from edgekit.runners import open_runner

    for backend in ("onnxruntime", "opencv"):
        try:
            with open_runner(backend, model) as runner:
                return runner.infer(feed), backend
        except Exception as exc:  # backend missing or cannot load this model: try the next
            last = exc
    if report is not None:
        not_checked(report, "parity", "no CPU reference for %s: %s (install the Jetson Zoo onnxruntime wheel: "
                    "jetson/setup.sh --onnxruntime WHEEL)" % (os.path.basename(model), last))
    pytest.skip("parity not checked: no CPU reference backend: %s" % last)


def not_checked(report, what, why):
    """Record something the suite could not check, for the report's "not checked" section."""
    report.setdefault("not_checked", {})[what] = why


REAL_MODEL_HOWTO = ("on the desktop: edgekit export torchvision:resnet18 --target jetson-nano --input-size 224 "
                    "--out resnet18.onnx, copy it to jetson/assets/resnet18.onnx (or set EDGEKIT_SELFTEST_MODEL)")


@pytest.fixture(scope="session")
def real_model():
    """A real-sized model (torchvision resnet18, 224x224, about 45 MB): EDGEKIT_SELFTEST_MODEL or
    jetson/assets/resnet18.onnx, made on the desktop (REAL_MODEL_HOWTO). None when absent."""
    path = os.environ.get("EDGEKIT_SELFTEST_MODEL") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "resnet18.onnx")
    return path if os.path.exists(path) else None


def random_feed(shape, seed=0):
    return {"images": np.random.RandomState(seed).rand(*shape).astype(np.float32)}


@pytest.mark.skipif(STANDIN, reason="reads the real board")
def test_board_is_ready(report):
    from edgekit.doctor import diagnose

    result = diagnose()
    report["doctor"] = result
    checks = dict((c["name"], c) for c in result["checks"])
    assert result["jetson"], checks["board"]["value"]
    assert checks["tensorrt"]["status"] == "ok" and checks["pycuda"]["status"] == "ok"


def test_build_engine_then_serve_it_from_the_cache(tiny, cache_dir, report):
    from edgekit.engine.build import build_engine

    first = build_engine(tiny, precision="fp16", cache_dir=cache_dir, **QUIET)
    second = build_engine(tiny, precision="fp16", cache_dir=cache_dir, **QUIET)
    assert first.built and not second.built and second.path == first.path
    report["build"] = {"seconds": first.build_seconds, "key": first.key, "engine_bytes": os.path.getsize(first.path),
                       "warnings": first.warnings}


def test_precision_the_gpu_cannot_run_fast_is_refused(tiny, cache_dir, report):
    import tensorrt as trt

    from edgekit.engine.build import build_engine
    from edgekit.errors import PrecisionError

    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    report["fast"] = {"fp16": builder.platform_has_fast_fp16, "int8": builder.platform_has_fast_int8}
    if builder.platform_has_fast_int8:
        pytest.skip("this GPU has fast INT8")
    with pytest.raises(PrecisionError):
        build_engine(tiny, precision="int8", cache_dir=cache_dir, **QUIET)


@pytest.mark.parametrize("zero_copy", [False, True], ids=["copies", "zero-copy"])
def test_tensorrt_matches_the_cpu_reference(tiny, cache_dir, report, zero_copy):
    from edgekit.runners import open_runner

    feed = random_feed((1, 3, 32, 32))
    expected, backend = reference_outputs(tiny, feed, report)
    with open_runner("tensorrt", tiny, cache_dir=cache_dir, precision="fp16", zero_copy=zero_copy) as runner:
        got = runner.infer(feed)
    err = float(np.max(np.abs(got["logits"] - expected["logits"])))
    report.setdefault("parity", {})["zero_copy" if zero_copy else "copies"] = {"reference": backend, "max_abs": err}
    np.testing.assert_allclose(got["logits"], expected["logits"], **TOLERANCE)


def test_dynamic_batch_through_a_profile(tiny, tiny_dynamic, cache_dir, report):
    """tiny_dynamic.onnx has tiny.onnx's weights: the reference runs the static model image by image
    (OpenCV 4.1.1's dnn, the fallback reference, does not take a dynamic batch)."""
    from edgekit.runners import open_runner

    opts = dict(cache_dir=cache_dir, precision="fp16", shapes=["images:1x3x32x32/2x3x32x32/4x3x32x32"])
    with open_runner("tensorrt", tiny_dynamic, **opts) as runner:
        for batch in (1, 4, 3):
            feed = random_feed((batch, 3, 32, 32), seed=batch)
            rows = [reference_outputs(tiny, {"images": feed["images"][i:i + 1]})[0]["logits"] for i in range(batch)]
            expected = {"logits": np.concatenate(rows)}
            got = runner.infer(feed)
            assert got["logits"].shape == (batch, 4)
            np.testing.assert_allclose(got["logits"], expected["logits"], **TOLERANCE)


def _measure(runner, feed, iters):
    for _ in range(10):
        runner.infer(feed)
    samples, splits = [], []
    for _ in range(iters):
        start = time.perf_counter()
        runner.infer(feed, check=False)
        samples.append((time.perf_counter() - start) * 1000.0)
        splits.append(dict(runner.last_timing))
    samples.sort()
    return {"p50_ms": samples[len(samples) // 2], "p90_ms": samples[int(len(samples) * 0.9)],
            "h2d_ms": float(np.mean([s["h2d"] for s in splits])),
            "compute_ms": float(np.mean([s["compute"] for s in splits])),
            "d2h_ms": float(np.mean([s["d2h"] for s in splits])), "iters": iters}


def test_latency_copies_vs_zero_copy(tiny, cache_dir, report):
    from edgekit.runners import open_runner

    feed = random_feed((1, 3, 32, 32))
    figures = {}
    for zero_copy in (False, True):
        with open_runner("tensorrt", tiny, cache_dir=cache_dir, precision="fp16", zero_copy=zero_copy) as runner:
            figures["zero_copy" if zero_copy else "copies"] = _measure(runner, feed, 200)
    report["latency"] = figures
    assert all(f["p50_ms"] > 0 and f["compute_ms"] >= 0 for f in figures.values())
    assert figures["zero_copy"]["h2d_ms"] == 0.0 or figures["zero_copy"]["h2d_ms"] < 0.01


def _without_samples(value):
    """The report is pasted into an issue: keep the statistics, drop the raw samples."""
    if isinstance(value, dict):
        return dict((k, _without_samples(v)) for k, v in value.items() if k != "samples")
    if isinstance(value, list):
        return [_without_samples(v) for v in value]
    return value


def test_edgekit_profile_on_the_engine(tiny, cache_dir, report):
    """The profiler's own path (`edgekit profile --backend tensorrt --layers`) on the board."""
    try:
        from edgekit.profiler.run import profile_model
    except ImportError as exc:
        pytest.skip("edgekit's profiler is not importable: %s" % exc)
    result = profile_model(tiny, backend="tensorrt", warmup_ms=100, duration_s=1.0, layers=3, telemetry=not STANDIN,
                           runner_options={"cache_dir": cache_dir}, log=lambda message: None)
    report["profile"] = _without_samples({"latency_ms": result["latency_ms"], "backend_timing_ms": result.get("backend_timing_ms"),
                         "context": result["context"], "layers": result.get("layers"),
                         "telemetry": result.get("telemetry"), "warnings": result.get("warnings")})
    assert result["iterations"] > 0 and result["context"]["backend"] == "tensorrt"


def test_one_camera_frame(report, tmp_path):
    import camera_check

    cams = camera_check.list_cameras()
    if STANDIN or not cams:
        pytest.skip("no camera on this board" if not STANDIN else "stand-in run: no camera")
    frame, seconds, error = camera_check.grab(cams[0])
    report["camera"] = {"device": cams[0]["device"], "kind": cams[0]["kind"], "name": cams[0]["name"],
                        "error": error, "first_frame_s": seconds,
                        "shape": list(frame.shape) if frame is not None else None}
    assert error is None, error
    assert frame.ndim == 3 and frame.shape[2] == 3


def test_inference_from_a_second_thread(tiny, cache_dir, report):
    """The daemon loads the engine on one thread and infers on another: same answer as on the loading thread."""
    import threading

    from edgekit.runners import open_runner

    feed = random_feed((1, 3, 32, 32), seed=3)
    with open_runner("tensorrt", tiny, cache_dir=cache_dir, precision="fp16") as runner:
        here = runner.infer(feed)["logits"]
        out = {}

        def work():
            try:
                out["logits"] = runner.infer(feed)["logits"]
            except Exception as exc:     # reported below, not lost in the thread
                out["error"] = repr(exc)
        thread = threading.Thread(target=work, name="selftest-infer")
        thread.start()
        thread.join()
    report["second_thread"] = {"error": out.get("error")}
    assert "error" not in out, out.get("error")
    np.testing.assert_array_equal(out["logits"], here)


TRTEXEC = os.environ.get("EDGEKIT_TRTEXEC", "/usr/src/tensorrt/bin/trtexec")     # JetPack's place for it


def test_runner_latency_against_trtexec(tiny, real_model, cache_dir, report):
    """The runner's GPU compute time (CUDA events around the enqueue) against trtexec's "GPU Compute Time" on
    the same engine file. Goal: within 5%. Both figures go into the report; the goal is reported, not asserted
    (timings are not test verdicts)."""
    import re
    import subprocess

    from edgekit.engine.build import build_engine
    from edgekit.runners import open_runner

    if not os.path.exists(TRTEXEC):
        not_checked(report, "trtexec", "no %s here (JetPack's tensorrt samples: sudo apt install "
                    "libnvinfer-bin)" % TRTEXEC)
        pytest.skip("no trtexec at %s" % TRTEXEC)
    model = real_model or tiny
    record = build_engine(model, precision="fp16", cache_dir=cache_dir, **QUIET)
    proc = subprocess.Popen([TRTEXEC, "--loadEngine=%s" % record.path, "--iterations=300", "--warmUp=1000",
                             "--duration=0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    out = proc.communicate()[0]
    match = re.search(r"GPU Compute Time: min = ([\d.]+) ms, max = ([\d.]+) ms, mean = ([\d.]+) ms, "
                      r"median = ([\d.]+) ms", out)
    assert proc.returncode == 0 and match, out[-1500:]
    trtexec_mean, trtexec_median = float(match.group(3)), float(match.group(4))
    with open_runner("tensorrt", record.path) as runner:
        shape = [d if d > 0 else 1 for d in runner.input_specs()[0].shape]
        figures = _measure(runner, {runner.input_specs()[0].name: np.random.RandomState(0).rand(*shape).astype(
            np.float32)}, 300)
    ratio = figures["compute_ms"] / trtexec_mean if trtexec_mean > 0 else None       # mean against mean
    report["vs_trtexec"] = {"model": os.path.basename(model), "trtexec_gpu_compute_mean_ms": trtexec_mean,
                            "trtexec_gpu_compute_median_ms": trtexec_median,
                            "runner_compute_mean_ms": figures["compute_ms"], "runner_p50_ms": figures["p50_ms"],
                            "ratio": ratio, "goal": "within 5%",
                            "goal_met": ratio is not None and abs(ratio - 1.0) <= 0.05}
    assert figures["compute_ms"] > 0 and trtexec_mean > 0


def test_real_sized_model_fp16(real_model, cache_dir, report):
    """resnet18 at 224x224 (a model of the size users deploy): the memory guard's plan for it, an FP16 build,
    parity with the CPU reference and latency."""
    from edgekit.engine import memory
    from edgekit.engine.build import build_engine
    from edgekit.runners import open_runner

    if real_model is None:
        not_checked(report, "real-sized model", "no resnet18.onnx: " + REAL_MODEL_HOWTO)
        pytest.skip("no real-sized model: " + REAL_MODEL_HOWTO)
    plan = memory.plan_build(memory.read_meminfo(), os.path.getsize(real_model), None, memory.read_swaps())
    record = build_engine(real_model, precision="fp16", cache_dir=cache_dir, **QUIET)
    feed = random_feed((1, 3, 224, 224), seed=5)
    with open_runner("tensorrt", record.path) as runner:
        name = runner.input_specs()[0].name
        feed = {name: feed["images"]}
        got = runner.infer(feed)
        figures = _measure(runner, feed, 100)
    entry = {"model": os.path.basename(real_model), "onnx_mib": round(os.path.getsize(real_model) / 2.0 ** 20, 1),
             "memory_plan": plan.as_dict(), "build_seconds": record.build_seconds, "latency": figures}
    expected, backend = reference_outputs(real_model, feed, report)
    out = sorted(got)[0]
    entry["parity"] = {"reference": backend, "max_abs": float(np.max(np.abs(got[out] - expected[out])))}
    report["real_model"] = entry
    np.testing.assert_allclose(got[out], expected[out], rtol=5e-2, atol=5e-2)       # FP16 over 18 layers


def test_int8_build_from_a_calibration_cache(real_model, tiny, cache_dir, report):
    """Boards with fast INT8 (Xavier, Orin): an INT8 engine from a calibration cache written on the desktop for
    this TensorRT (EDGEKIT_SELFTEST_CALIB, from `edgekit quantize --precision int8 --target ...`). The Nano has no
    fast INT8: skipped there with that reason."""
    import tensorrt as trt

    from edgekit.engine.build import build_engine

    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    if not builder.platform_has_fast_int8:
        pytest.skip("this GPU has no fast INT8 (a Nano): FP16 is its precision")
    calib = os.environ.get("EDGEKIT_SELFTEST_CALIB")
    if not calib or not os.path.exists(calib):
        not_checked(report, "int8", "no calibration cache for this TensorRT: set EDGEKIT_SELFTEST_CALIB to one made "
                    "on the desktop with `edgekit quantize --precision int8 --target <this board>`")
        pytest.skip("no calibration cache (EDGEKIT_SELFTEST_CALIB)")
    record = build_engine(real_model or tiny, precision="int8", calib_cache=calib, cache_dir=cache_dir, **QUIET)
    report["int8"] = {"built": record.built, "key": record.key, "warnings": record.warnings}
    assert os.path.exists(record.path)
