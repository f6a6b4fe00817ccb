"""TensorRTRunner against the TensorRT/pycuda STAND-INS (tests/standins), both API shapes.

Checks the data path (page-locked buffers -> async copies -> execute -> copies back -> synchronize),
dynamic shapes through the profile, zero-copy mapped memory, the h2d/compute/d2h split from CUDA
events, context handling across threads, and errors. Not a test of TensorRT itself.
"""

import os
import sys
import threading

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from standins import install  # noqa: E402
from standins.models import tiny_classifier  # noqa: E402

from edgekit.errors import ModelError, UserError  # noqa: E402
from edgekit.runners import backend_available, open_runner  # noqa: E402
from edgekit.runners.tensorrt import TensorRTRunner  # noqa: E402


def reference(model, x):
    import onnxruntime as ort

    return ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]


@pytest.mark.parametrize("cuda", ["pycuda", "cuda-python"])
@pytest.mark.parametrize("api", ["8.2", "10"])
@pytest.mark.parametrize("zero_copy", [False, True])
def test_matches_onnxruntime_within_fp16_tolerance(tmp_path, monkeypatch, api, zero_copy, cuda):
    standin = install(monkeypatch, api=api, cuda=cuda)
    model = tiny_classifier(tmp_path / "m.onnx")
    x = np.random.RandomState(1).rand(1, 3, 8, 8).astype(np.float32)
    with open_runner("tensorrt", model, cache_dir=str(tmp_path / "c"), zero_copy=zero_copy) as runner:
        assert [s.name for s in runner.input_specs()] == ["images"]
        assert runner.output_specs()[0].shape == [1, 4]
        out = runner.infer({"images": x})
        info = runner.describe()
    np.testing.assert_allclose(out["logits"], reference(model, x), rtol=1e-2, atol=1e-2)
    assert info["api"] == ("bindings" if api == "8.2" else "tensor-names")
    assert info["precision"] == "fp16" and info["zero_copy"] is zero_copy and info["from_cache"] is False
    assert info["cuda_binding"] == cuda
    names = [n for n, _ in standin.calls]
    assert ("execute_async_v2" if api == "8.2" else "execute_async_v3") in names
    copy_call = "memcpy_htod_async" if cuda == "pycuda" else "cudaMemcpyAsync"
    assert (copy_call in names) is (not zero_copy)
    assert not standin.gpu.context_stack and not standin.gpu.memory
    if cuda == "cuda-python":
        assert not standin.cuda.host_allocations   # every cudaHostAlloc freed


@pytest.mark.parametrize("cuda", ["pycuda", "cuda-python"])
def test_timing_split_from_cuda_events(tmp_path, monkeypatch, cuda):
    standin = install(monkeypatch, api="8.2", cuda=cuda, copy_ms_per_mb=1000.0, compute_ms=3.0)
    model = tiny_classifier(tmp_path / "m.onnx", size=32)
    feed = {"images": np.ones((1, 3, 32, 32), np.float32)}
    with open_runner("tensorrt", model, cache_dir=str(tmp_path / "c")) as runner:
        runner.infer(feed)
        timing = dict(runner.last_timing)
    assert timing["compute"] == pytest.approx(3.0)
    assert timing["h2d"] == pytest.approx(3 * 32 * 32 * 4 / 1e6 * 1000.0)      # input bytes
    assert timing["d2h"] == pytest.approx(4 * 4 / 1e6 * 1000.0)                # output bytes
    with open_runner("tensorrt", model, cache_dir=str(tmp_path / "c"), zero_copy=True) as runner:
        runner.infer(feed)
        assert runner.last_timing == {"h2d": 0.0, "compute": pytest.approx(3.0), "d2h": 0.0}
    assert standin.gpu.contexts_made >= (2 if cuda == "pycuda" else 0)


@pytest.mark.parametrize("api", ["8.2", "10"])
def test_dynamic_batch_through_the_profile(tmp_path, monkeypatch, api):
    install(monkeypatch, api=api)
    model = tiny_classifier(tmp_path / "d.onnx", dynamic_batch=True)
    opts = dict(cache_dir=str(tmp_path / "c"), shapes=["images:1x3x8x8/2x3x8x8/4x3x8x8"])
    rng = np.random.RandomState(0)
    with open_runner("tensorrt", model, **opts) as runner:
        assert runner.input_specs()[0].shape == ["?", 3, 8, 8]
        for batch in (4, 1, 3):
            x = rng.rand(batch, 3, 8, 8).astype(np.float32)
            out = runner.infer({"images": x})
            assert out["logits"].shape == (batch, 4)
            np.testing.assert_allclose(out["logits"], reference(model, x), rtol=1e-2, atol=1e-2)
        with pytest.raises(UserError, match="outside the engine's profile"):
            runner.infer({"images": np.zeros((5, 3, 8, 8), np.float32)})


def infer_on_a_thread(runner, feed):
    """runner.infer(feed) on a new thread: (result, exception)."""
    out = {}

    def work():
        try:
            out["result"] = runner.infer(feed)
        except Exception as exc:          # reported to the test, not lost in the thread
            out["error"] = exc
    thread = threading.Thread(target=work, name="edgekit-infer-test")
    thread.start()
    thread.join()
    return out.get("result"), out.get("error")


@pytest.mark.parametrize("api", ["8.2", "10"])
def test_runs_from_another_thread(tmp_path, monkeypatch, api):
    """The daemon loads on one thread and infers on another: a CUDA context is current per thread, so the
    runner pushes its context on the inferring thread and pops it after."""
    standin = install(monkeypatch, api=api)
    model = tiny_classifier(tmp_path / "m.onnx")
    x = np.random.RandomState(1).rand(1, 3, 8, 8).astype(np.float32)
    with open_runner("tensorrt", model, cache_dir=str(tmp_path / "c")) as runner:
        assert standin.cuda.Context.get_current() is None          # the loading thread keeps nothing current
        result, error = infer_on_a_thread(runner, {"images": x})
        assert error is None, error
        np.testing.assert_allclose(result["logits"], reference(model, x), rtol=2e-2, atol=2e-2)
    pushes = [detail for name, detail in standin.calls if name == "context.push"]
    pops = [detail for name, detail in standin.calls if name == "context.pop"]
    assert "edgekit-infer-test" in pushes and pushes.count("edgekit-infer-test") == pops.count("edgekit-infer-test")
    assert not [c for c in standin.calls if c[0] == "cleanup failed"]


def test_context_left_current_on_the_loading_thread_fails_on_another(tmp_path, monkeypatch):
    """The classic daemon bug, reproduced on purpose: a context made current on the loading thread (never
    pushed on the inferring one) is not current there, and the first CUDA call fails as on the board."""
    from edgekit.engine import cuda_api

    standin = install(monkeypatch, api="8.2")
    model = tiny_classifier(tmp_path / "m.onnx")

    def open_and_keep_current(self, device=0, map_host=False):
        self._init(device)
        self.ctx = self.device.make_context(flags=0)       # stays current on this thread only
        self.made = False                                  # current() then pushes nothing
        return self
    monkeypatch.setattr(cuda_api.PycudaGpu, "open", open_and_keep_current)
    runner = open_runner("tensorrt", model, cache_dir=str(tmp_path / "c"))
    with runner:
        assert runner.infer({"images": np.ones((1, 3, 8, 8), np.float32)})["logits"].shape == (1, 4)   # same thread
        result, error = infer_on_a_thread(runner, {"images": np.ones((1, 3, 8, 8), np.float32)})
    assert result is None and isinstance(error, standin.cuda.LogicError)
    assert "no CUDA context is current on thread edgekit-infer-test" in str(error)


def test_pycuda_standin_contexts_are_per_thread_and_detach_leaves_the_stack(monkeypatch):
    """The stand-in against pycuda 2021.1's src/cpp/cuda.hpp: make_context pushes on the calling thread,
    pop() pops that thread's top, detach() of the current context removes it, a dead context cannot be
    pushed, and memory of a context current nowhere here cannot be freed from another thread."""
    standin = install(monkeypatch, api="8.2")
    cuda = standin.cuda
    cuda.init()
    ctx = cuda.Device(0).make_context()
    assert cuda.Context.get_current() is ctx
    seen = []
    thread = threading.Thread(target=lambda: seen.append(cuda.Context.get_current()))
    thread.start()
    thread.join()
    assert seen == [None]                                   # not current on another thread
    allocation = cuda.mem_alloc(16)
    errors = []

    def free_elsewhere():
        allocation.free()                                   # pycuda: clean-up warning, memory leaked
        try:
            cuda.mem_alloc(16)
        except cuda.LogicError as exc:
            errors.append(exc)
    thread = threading.Thread(target=free_elsewhere)
    thread.start()
    thread.join()
    assert errors and ("cleanup failed", "device allocation: cannot activate out-of-thread context") in standin.calls
    allocation.free()                                       # on its own thread it frees
    ctx.detach()
    assert cuda.Context.get_current() is None
    with pytest.raises(cuda.LogicError, match="dead context"):
        ctx.push()
    with pytest.raises(cuda.LogicError, match="cannot pop"):
        cuda.Context.pop()


def test_engine_file_from_the_cache_and_from_another_tensorrt(tmp_path, monkeypatch):
    install(monkeypatch, api="8.2")
    model = tiny_classifier(tmp_path / "m.onnx")
    from edgekit.engine.build import build_engine

    record = build_engine(model, cache_dir=str(tmp_path / "c"), log=lambda m: None)
    with open_runner("tensorrt", record.path) as runner:
        assert runner.infer({"images": np.zeros((1, 3, 8, 8), np.float32)})["logits"].shape == (1, 4)
    install(monkeypatch, api="10")            # an upgrade: the old engine no longer loads
    with pytest.raises(ModelError, match="rebuild it here"):
        with open_runner("tensorrt", record.path):
            pass


def test_wrong_feed_is_a_user_error(tmp_path, monkeypatch):
    install(monkeypatch, api="8.2")
    model = tiny_classifier(tmp_path / "m.onnx")
    with open_runner("tensorrt", model, cache_dir=str(tmp_path / "c")) as runner:
        with pytest.raises(UserError):
            runner.infer({"images": np.zeros((1, 3, 9, 8), np.float32)})


def test_available_only_with_tensorrt_and_a_cuda_binding(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert TensorRTRunner.available() is False and backend_available("tensorrt") is False
    install(monkeypatch, api="10")
    assert TensorRTRunner.available() is True
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    assert TensorRTRunner.available() is False
    install(monkeypatch, api="10", cuda="cuda-python")
    assert TensorRTRunner.available() is True


def test_asking_for_a_missing_cuda_binding_is_a_clear_error(tmp_path, monkeypatch):
    from edgekit.errors import BackendUnavailable, ConfigError

    install(monkeypatch, api="10", cuda="cuda-python")
    model = tiny_classifier(tmp_path / "m.onnx")
    with pytest.raises(BackendUnavailable, match="pycuda is not installed"):
        with open_runner("tensorrt", model, cache_dir=str(tmp_path / "c"), cuda="pycuda"):
            pass
    with pytest.raises(ConfigError, match="unknown CUDA binding"):
        with open_runner("tensorrt", model, cache_dir=str(tmp_path / "c"), cuda="opencl"):
            pass


def _real_cudart_without_gpu():
    try:
        from cuda.bindings import runtime
    except ImportError:
        return False
    return runtime.cudaSetDevice(0)[0] != runtime.cudaError_t.cudaSuccess


@pytest.mark.skipif(not _real_cudart_without_gpu(), reason="needs the real cuda-python bindings and no usable GPU")
def test_real_cuda_python_without_a_driver_is_backend_unavailable():
    """Against the REAL cuda-python (installed here as a torch dependency), on a machine without a GPU."""
    from edgekit.engine import cuda_api
    from edgekit.errors import BackendUnavailable

    gpu = cuda_api.open_gpu("cuda-python")
    assert isinstance(gpu, cuda_api.CudaPythonGpu)
    with pytest.raises(BackendUnavailable, match="CUDA does not start here") as exc:
        gpu.open(0)
    assert "driver" in str(exc.value)


def test_fp32_model_runs_as_fp16_and_says_so(tmp_path, monkeypatch, capsys):
    install(monkeypatch, api="10")
    model = tiny_classifier(tmp_path / "m.onnx")           # metadata precision fp32
    with open_runner("tensorrt", model, cache_dir=str(tmp_path / "c")) as runner:
        assert runner.describe()["precision"] == "fp16"
    assert "running it as an fp16 engine" in capsys.readouterr().err
    with open_runner("tensorrt", model, cache_dir=str(tmp_path / "c"), precision="fp32") as runner:
        assert runner.describe()["precision"] == "fp32"


def test_predictor_runs_through_the_tensorrt_runner_like_onnxruntime(tmp_path, monkeypatch):
    """The daemon's path: Predictor.open(model, "auto") picks tensorrt where it imports, same results as ORT."""
    from edgekit.predictor import Predictor

    install(monkeypatch, api="8.2")
    model = tiny_classifier(tmp_path / "m.onnx", size=16)
    frame = np.random.RandomState(3).randint(0, 256, (48, 64, 3)).astype(np.uint8)
    with Predictor.open(model, "auto", cache_dir=str(tmp_path / "c"), precision="fp32") as trt_model:
        assert trt_model.runner.name == "tensorrt"
        got = trt_model.predict(frame)
    with Predictor.open(model, "onnxruntime") as ort_model:
        expected = ort_model.predict(frame)
    assert [t["label"] for t in got["top"]] == [t["label"] for t in expected["top"]]
    np.testing.assert_allclose([t["score"] for t in got["top"]], [t["score"] for t in expected["top"]], atol=1e-5)


def test_cached_engine_is_loaded_once_and_rebuilt_if_it_fails_to_load(tmp_path, monkeypatch):
    import json

    from edgekit.engine import build as build_mod

    standin = install(monkeypatch, api="8.2")
    model = tiny_classifier(tmp_path / "m.onnx")
    opts = dict(cache_dir=str(tmp_path / "c"), precision="fp16")
    with open_runner("tensorrt", model, **opts) as runner:
        path = runner.engine_path
    loads = []
    real = standin.trt.Runtime.deserialize_cuda_engine
    monkeypatch.setattr(standin.trt.Runtime, "deserialize_cuda_engine",
                        lambda self, data: loads.append(1) or real(self, data))
    with open_runner("tensorrt", model, **opts) as runner:
        assert runner.describe()["from_cache"] is True
    assert len(loads) == 1                                  # no trial load before the real one
    garbage = b"STANDIN-TRT-ENGINE\0" + b"broken"        # intact sha256 (sidecar updated), does not load
    with open(path, "wb") as handle:
        handle.write(garbage)
    with open(path + ".json") as handle:
        sidecar = json.load(handle)
    sidecar["engine_sha256"] = build_mod.fsutil.sha256_bytes(garbage)
    with open(path + ".json", "w") as handle:
        json.dump(sidecar, handle)
    with open_runner("tensorrt", model, **opts) as runner:
        assert runner.describe()["from_cache"] is False      # rebuilt
        assert runner.infer({"images": np.zeros((1, 3, 8, 8), np.float32)})["logits"].shape == (1, 4)


@pytest.mark.parametrize("cuda", ["pycuda", "cuda-python"])
def test_async_host_to_device_copy_reads_the_host_buffer_when_it_runs(monkeypatch, cuda):
    """cudaMemcpyAsync / memcpy_htod_async read page-locked host memory when the copy executes on the
    stream, not when it is enqueued: writing the host buffer before synchronizing races with the copy.
    The stand-ins model that, so a reused host buffer race is visible in tests."""
    from edgekit.engine import cuda_api

    standin = install(monkeypatch, api="10", cuda=cuda)
    gpu = cuda_api.open_gpu(cuda).open(0)
    with gpu.current():
        host, _ = gpu.host_buffer(4, np.float32)
        back, _ = gpu.host_buffer(4, np.float32)
        ptr = gpu.device_buffer(host.nbytes)
        stream = gpu.stream()
        host[:] = 1.0
        gpu.htod(ptr, host, stream)
        host[:] = 2.0                      # too early: the copy has not run yet
        gpu.dtoh(back, ptr, stream)
        gpu.synchronize(stream)
        assert list(back) == [2.0] * 4     # what the GPU read when the copy ran
        gpu.free_device(ptr)
        gpu.free_host(host)
        gpu.free_host(back)
    gpu.close()
    assert standin.calls


def test_reloads_leak_no_cuda_streams(tmp_path, monkeypatch):
    """cuda-python streams are destroyed in close() (cudaStreamDestroy): a daemon reloading its model does
    not pile up streams."""
    standin = install(monkeypatch, api="10", cuda="cuda-python")
    model = tiny_classifier(tmp_path / "m.onnx")
    for _ in range(3):
        with open_runner("tensorrt", model, cache_dir=str(tmp_path / "c"), cuda="cuda-python") as runner:
            runner.infer({"images": np.ones((1, 3, 8, 8), np.float32)})
    assert not [h for h in standin.gpu.streams if h >= 0x9000]


def test_zero_copy_after_cuda_started_is_a_clear_error(tmp_path, monkeypatch):
    """cudaSetDeviceFlags(cudaDeviceMapHost) fails once the primary context is active under CUDA 10.2's rules:
    edgekit checks its return (and whether mapping is on anyway, as CUDA 12 documents) instead of ignoring it."""
    from edgekit.engine import cuda_api
    from edgekit.errors import ConfigError

    install(monkeypatch, api="10", cuda="cuda-python", legacy_device_flags=True)
    model = tiny_classifier(tmp_path / "m.onnx")
    with open_runner("tensorrt", model, cache_dir=str(tmp_path / "c"), cuda="cuda-python") as runner:
        runner.infer({"images": np.ones((1, 3, 8, 8), np.float32)})        # CUDA is active now
    with pytest.raises(ConfigError, match="cudaDeviceMapHost") as exc:
        cuda_api.open_gpu("cuda-python").open(0, map_host=True)
    assert "zero_copy=False" in exc.value.hint
