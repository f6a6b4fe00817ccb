"""TensorRT runner: a serialized engine (or an ONNX file built through the engine cache) run with pycuda.

    with open_runner("tensorrt", "model.onnx", precision="fp16") as runner:
        outputs = runner.infer({"images": tensor})
        runner.last_timing      # {"h2d": ms, "compute": ms, "d2h": ms} from CUDA events

One CUDA context made current around every call (so the daemon may call from any thread), one
stream, page-locked host buffers and device buffers allocated once at the largest profile shape,
async copies. TensorRT 8.2's binding API and 8.5+/10's tensor-name API both go through
``edgekit.engine.trt_api``; CUDA through ``edgekit.engine.cuda_api`` (pycuda, or cuda-python). Options:
  zero_copy (bool)       mapped page-locked memory (``host_alloc_flags.DEVICEMAP`` +
                         ``get_device_pointer``) that the GPU reads in place: no h2d/d2h copies. On a
                         Jetson CPU and GPU share DRAM, so this can win; the profiler compares both.
  precision, cache_dir, workspace_mib, calib_cache, shapes, force   passed to build_engine for ONNX input
  device (int)           CUDA device index (default 0)
  cuda                   "pycuda" | "cuda-python" (default: the first importable, in that order)
"""

import numpy as np

from edgekit.engine import cuda_api, trt_api
from edgekit.errors import BackendUnavailable, ModelError, UserError
from edgekit.runners.base import Runner, TensorSpec

BUILD_OPTIONS = ("precision", "cache_dir", "workspace_mib", "calib_cache", "shapes", "timing_cache", "force")


class _Buffer(object):
    """Host array + device address for one IO tensor, sized for its largest shape. ``device`` is the
    owned device allocation (None for zero-copy, where ``address`` maps the host array)."""

    __slots__ = ("tensor", "host", "device", "address", "shape")

    def __init__(self, tensor, host, device, address):
        self.tensor, self.host, self.device, self.address = tensor, host, device, address
        self.shape = None


class TensorRTRunner(Runner):
    name = "tensorrt"

    @staticmethod
    def available():
        try:
            trt_api.import_tensorrt()
        except BackendUnavailable:
            return False
        return bool(cuda_api.available())

    # -- lifecycle ----------------------------------------------------------------------------
    def activate(self):
        self._trt = trt_api.import_tensorrt()
        self.zero_copy = bool(self.options.get("zero_copy", False))
        self.gpu = cuda_api.open_gpu(self.options.get("cuda"))
        self.gpu.open(int(self.options.get("device", 0)), map_host=self.zero_copy)
        try:
            with self.gpu.current():
                self.engine_path, self.record = self._engine_file()
                try:
                    self._load()
                except ModelError:
                    if self.record is None or self.record.built:
                        raise
                    # served from the cache without a trial load, and it does not load: check it properly
                    self.engine_path, self.record = self._engine_file(verify=True)
                    self._load()
        except BaseException:
            self.gpu.close()
            raise

    def _engine_file(self, verify=False):
        """The engine to load: the file given, or the cache's engine for an ONNX file (checked by key
        and sha256; ``_load`` deserializes it, and a cached engine that fails is rebuilt once)."""
        path = str(self.model_path)
        if not path.endswith(".onnx"):
            return path, None
        from edgekit.engine.build import ensure_engine

        options = dict((k, self.options[k]) for k in BUILD_OPTIONS if self.options.get(k) is not None)
        options["precision"] = self._precision(path)
        record = ensure_engine(path, verify=verify, **options)
        return record.path, record

    def _precision(self, path):
        """The asked precision; else the model's if fp16/int8; else fp16 (said when it differs from the model's)."""
        from edgekit.meta import read_meta
        from edgekit.progress import say

        if self.options.get("precision"):
            return self.options["precision"]
        try:
            meta = read_meta(path, required=False)
        except UserError:
            meta = None
        if meta is not None and meta.precision in ("fp16", "int8"):
            return meta.precision
        if meta is not None:
            say("tensorrt: %s is %s; running it as an fp16 engine (pass precision='fp32' to keep fp32)"
                % (path, meta.precision))
        return "fp16"

    def _load(self):
        trt, gpu = self._trt, self.gpu
        with open(self.engine_path, "rb") as handle:
            data = handle.read()
        self._runtime = trt.Runtime(trt_api.make_logger(trt))
        try:
            self.engine = self._runtime.deserialize_cuda_engine(data)
        except Exception:          # some releases raise instead of returning None
            self.engine = None
        if self.engine is None:
            raise ModelError("TensorRT %s cannot load the engine %s (see its log above)" % (
                trt.__version__, self.engine_path), hint="engines only run on the TensorRT version and GPU "
                "that built them: rebuild it here with `edgekit build MODEL.onnx`")
        self.context = self.engine.create_execution_context()
        self.api = trt_api.api_of(self.engine)
        self.io = trt_api.engine_io(trt, self.engine)
        self.stream = gpu.stream()
        self.events = [gpu.event() for _ in range(4)]
        self.buffers = [self._allocate(t) for t in self.io]
        for tensor in self.io:
            if tensor.is_input and not tensor.is_dynamic:
                self.buffers[tensor.index].shape = tensor.shape

    def _max_shape(self, tensor):
        if not tensor.is_dynamic:
            return tensor.shape
        if tensor.is_input:
            return tensor.profile[2]
        # an output's largest shape: set every input to its profile maximum and ask the context
        for t in self.io:
            if t.is_input and t.is_dynamic:
                trt_api.set_input_shape(self.context, t, t.profile[2])
        return trt_api.context_shape(self.context, tensor)

    def _allocate(self, tensor):
        count = int(np.prod(self._max_shape(tensor)))
        host, mapped = self.gpu.host_buffer(count, tensor.dtype, mapped=self.zero_copy)
        if self.zero_copy:
            return _Buffer(tensor, host, None, mapped)
        device = self.gpu.device_buffer(host.nbytes)
        return _Buffer(tensor, host, device, device)

    def deactivate(self):
        gpu = getattr(self, "gpu", None)
        if gpu is None:
            return
        try:
            with gpu.current():
                for buf in getattr(self, "buffers", []):
                    if buf.device is not None:
                        gpu.free_device(buf.device)
                    gpu.free_host(buf.host)      # page-locked (and mapped) host memory, now, not at GC
                self.buffers, self.context, self.engine, self.stream = [], None, None, None
        finally:
            gpu.close()
            self.gpu = None

    # -- description --------------------------------------------------------------------------
    def input_specs(self):
        return [TensorSpec(t.name, [d if d >= 0 else "?" for d in t.shape], t.dtype) for t in self.io if t.is_input]

    def output_specs(self):
        return [TensorSpec(t.name, [d if d >= 0 else "?" for d in t.shape], t.dtype) for t in self.io
                if not t.is_input]

    def describe(self):
        info = {"backend": self.name, "version": getattr(self._trt, "__version__", None) if hasattr(self, "_trt")
                else None, "api": getattr(self, "api", None), "zero_copy": getattr(self, "zero_copy", None),
                "engine": getattr(self, "engine_path", None),
                "cuda_binding": getattr(getattr(self, "gpu", None), "name", None)}
        sidecar = None
        if getattr(self, "engine_path", None):
            from edgekit.engine.cache import read_sidecar

            sidecar = read_sidecar(self.engine_path + ".json")
        if sidecar:
            key = sidecar.get("key", {})
            info.update({"precision": key.get("precision"), "gpu": key.get("gpu"),
                         "compute_capability": key.get("compute_capability"), "cuda": key.get("cuda")})
        record = getattr(self, "record", None)
        info["from_cache"] = None if record is None else not record.built
        return info

    # -- inference ----------------------------------------------------------------------------
    def infer_impl(self, feed):
        with self.gpu.current():
            return self._infer(feed)

    def _set_shapes(self, feed):
        for tensor in self.io:
            if not (tensor.is_input and tensor.is_dynamic):
                continue
            shape = list(feed[tensor.name].shape)
            low, _opt, high = tensor.profile
            if any(not (a <= s <= b) for a, s, b in zip(low, shape, high)):
                raise UserError("input %s shape %s is outside the engine's profile %s..%s" % (
                    tensor.name, shape, low, high), hint="rebuild with --shapes covering it")
            buf = self.buffers[tensor.index]
            if buf.shape != shape:
                trt_api.set_input_shape(self.context, tensor, shape)
                buf.shape = shape
        for tensor in self.io:
            if not tensor.is_input:
                self.buffers[tensor.index].shape = trt_api.context_shape(self.context, tensor)

    def _infer(self, feed):
        gpu, stream = self.gpu, self.stream
        self._set_shapes(feed)
        inputs = [b for b in self.buffers if b.tensor.is_input]
        outputs = [b for b in self.buffers if not b.tensor.is_input]
        for buf in inputs:
            array = feed[buf.tensor.name]
            np.copyto(buf.host[:array.size].reshape(array.shape), array, casting="same_kind")
        start, after_h2d, after_compute, end = self.events
        gpu.record(start, stream)
        if not self.zero_copy:
            for buf in inputs:
                gpu.htod(buf.address, buf.host[:int(np.prod(buf.shape))], stream)
        gpu.record(after_h2d, stream)
        trt_api.execute(self.context, self.io, [b.address for b in self.buffers], gpu.stream_handle(stream))
        gpu.record(after_compute, stream)
        if not self.zero_copy:
            for buf in outputs:
                gpu.dtoh(buf.host[:int(np.prod(buf.shape))], buf.address, stream)
        gpu.record(end, stream)
        gpu.synchronize(stream)
        self.last_timing = {"h2d": gpu.elapsed_ms(start, after_h2d), "compute": gpu.elapsed_ms(after_h2d, after_compute),
                            "d2h": gpu.elapsed_ms(after_compute, end)}
        return dict((b.tensor.name, b.host[:int(np.prod(b.shape))].reshape(b.shape).copy()) for b in outputs)
