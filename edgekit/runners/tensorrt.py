"""TensorRT runner: a serialized engine (or an ONNX file built through the engine cache) run with pycuda.

    with open_runner("tensorrt", "model.onnx", precision="fp16") as runner:
        outputs = runner.infer({"images": tensor})
        runner.last_timing      # {"h2d": ms, "compute": ms, "d2h": ms} from CUDA events

One explicit CUDA context (pushed around every call, so the daemon may call from any thread), one
stream, page-locked host buffers and device buffers allocated once at the largest profile shape,
async copies. TensorRT 8.2's binding API and 8.5+/10's tensor-name API both go through
``edgekit.engine.trt_api``. Options:
  zero_copy (bool)       mapped page-locked memory (``host_alloc_flags.DEVICEMAP`` +
                         ``get_device_pointer``) that the GPU reads in place: no h2d/d2h copies. On a
                         Jetson CPU and GPU share DRAM, so this can win; the profiler compares both.
  precision, cache_dir, workspace_mib, calib_cache, shapes, force   passed to build_engine for ONNX input
  device (int)           CUDA device index (default 0)
"""

import numpy as np

from edgekit.engine import trt_api
from edgekit.errors import BackendUnavailable, ModelError, UserError
from edgekit.runners.base import Runner, TensorSpec

BUILD_OPTIONS = ("precision", "cache_dir", "workspace_mib", "calib_cache", "shapes", "timing_cache", "force")


class _Buffer(object):
    """Host array + device address for one IO tensor, sized for its largest shape."""

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
            import pycuda.driver  # noqa: F401
        except (BackendUnavailable, ImportError):
            return False
        return True

    # -- lifecycle ----------------------------------------------------------------------------
    def activate(self):
        self._trt = trt_api.import_tensorrt()
        self._cuda = cuda = trt_api.import_cuda()
        self.zero_copy = bool(self.options.get("zero_copy", False))
        flags = cuda.ctx_flags.MAP_HOST if self.zero_copy else 0
        self._ctx = cuda.Device(int(self.options.get("device", 0))).make_context(flags=flags)
        try:
            self.engine_path, self.record = self._engine_file()
            self._load()
        except BaseException:
            self._ctx.pop()
            self._ctx.detach()
            raise
        self._ctx.pop()

    def _engine_file(self):
        path = str(self.model_path)
        if not path.endswith(".onnx"):
            return path, None
        from edgekit.engine.build import build_engine

        options = dict((k, self.options[k]) for k in BUILD_OPTIONS if self.options.get(k) is not None)
        options["precision"] = self._precision(path)
        record = build_engine(path, **options)
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
        trt, cuda = self._trt, self._cuda
        with open(self.engine_path, "rb") as handle:
            data = handle.read()
        self._runtime = trt.Runtime(trt_api.make_logger(trt))
        self.engine = self._runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise ModelError("TensorRT %s cannot load the engine %s (see its log above)" % (
                trt.__version__, self.engine_path), hint="engines only run on the TensorRT version and GPU "
                "that built them: rebuild it here with `edgekit build MODEL.onnx`")
        self.context = self.engine.create_execution_context()
        self.api = trt_api.api_of(self.engine)
        self.io = trt_api.engine_io(trt, self.engine)
        self.stream = cuda.Stream()
        self.events = [cuda.Event() for _ in range(4)]
        self.buffers = [self._allocate(t) for t in self.io]
        self._fixed = [t for t in self.io if t.is_input and not t.is_dynamic]
        for tensor in self._fixed:
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
        cuda = self._cuda
        shape = self._max_shape(tensor)
        count = int(np.prod(shape))
        if self.zero_copy:
            host = cuda.pagelocked_empty(count, tensor.dtype, mem_flags=cuda.host_alloc_flags.DEVICEMAP)
            address = host.base.get_device_pointer()
            return _Buffer(tensor, host, None, address)
        host = cuda.pagelocked_empty(count, tensor.dtype)
        device = cuda.mem_alloc(max(host.nbytes, 1))
        return _Buffer(tensor, host, device, int(device))

    def deactivate(self):
        ctx = getattr(self, "_ctx", None)
        if ctx is None:
            return
        ctx.push()
        try:
            for buf in getattr(self, "buffers", []):
                if buf.device is not None:
                    buf.device.free()
                buf.host.base.free()         # page-locked (and mapped) host memory, now, not at GC
            self.buffers, self.context, self.engine, self.stream = [], None, None, None
        finally:
            ctx.pop()
            ctx.detach()
            self._ctx = None

    # -- description --------------------------------------------------------------------------
    def input_specs(self):
        return [TensorSpec(t.name, [d if d >= 0 else "?" for d in t.shape], t.dtype) for t in self.io if t.is_input]

    def output_specs(self):
        return [TensorSpec(t.name, [d if d >= 0 else "?" for d in t.shape], t.dtype) for t in self.io
                if not t.is_input]

    def describe(self):
        info = {"backend": self.name, "version": getattr(self._trt, "__version__", None) if hasattr(self, "_trt")
                else None, "api": getattr(self, "api", None), "zero_copy": getattr(self, "zero_copy", None),
                "engine": getattr(self, "engine_path", None)}
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
        self._ctx.push()
        try:
            return self._infer(feed)
        finally:
            self._ctx.pop()

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
        cuda, stream = self._cuda, self.stream
        self._set_shapes(feed)
        inputs = [b for b in self.buffers if b.tensor.is_input]
        outputs = [b for b in self.buffers if not b.tensor.is_input]
        for buf in inputs:
            array = feed[buf.tensor.name]
            np.copyto(buf.host[:array.size].reshape(array.shape), array, casting="same_kind")
        start, after_h2d, after_compute, end = self.events
        start.record(stream)
        if not self.zero_copy:
            for buf in inputs:
                cuda.memcpy_htod_async(buf.device, buf.host[:int(np.prod(buf.shape))], stream)
        after_h2d.record(stream)
        trt_api.execute(self.context, self.io, [b.address for b in self.buffers], stream.handle)
        after_compute.record(stream)
        if not self.zero_copy:
            for buf in outputs:
                cuda.memcpy_dtoh_async(buf.host[:int(np.prod(buf.shape))], buf.device, stream)
        end.record(stream)
        stream.synchronize()
        self.last_timing = {"h2d": after_h2d.time_since(start), "compute": after_compute.time_since(after_h2d),
                            "d2h": end.time_since(after_compute)}
        return dict((b.tensor.name, b.host[:int(np.prod(b.shape))].reshape(b.shape).copy()) for b in outputs)

