"""The CUDA calls the TensorRT runner and builder need, behind one small protocol, two implementations.

    gpu = open_gpu()                   # pycuda if importable, else cuda-python; or open_gpu("cuda-python")
    gpu.open(device=0, map_host=zero_copy)
    with gpu.current():                # make its context current on this thread
        host, mapped_ptr = gpu.host_buffer(count, dtype, mapped=False)
        ptr = gpu.device_buffer(nbytes)
        stream = gpu.stream(); gpu.htod(ptr, host, stream); ...; gpu.synchronize(stream)
    gpu.close()

``PycudaGpu``: pycuda.driver (the Jetson default: JetPack 4.6 has no cuda-python; setup.sh builds
pycuda). One explicit context (``Device.make_context``, with ``ctx_flags.MAP_HOST`` for zero-copy),
pushed and popped around each use. ``CudaPythonGpu``: NVIDIA's cuda-python runtime bindings
(``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6), the primary context made current with
``cudaSetDevice``; what ``pip install 'edgekit[tensorrt]'`` brings on a desktop GPU. Streams are
passed to TensorRT as integer handles either way.
"""

import contextlib
import ctypes

import numpy as np

from edgekit.errors import BackendUnavailable, ConfigError

CHOICES = ("pycuda", "cuda-python")
HINT = ("on a Jetson run jetson/setup.sh (it builds pycuda against CUDA 10.2 with /usr/local/cuda/bin on PATH); "
        "on a desktop: pip install cuda-python (or pycuda)")


def import_pycuda():
    try:
        import pycuda.driver as cuda
    except ImportError:
        return None
    return cuda


def import_cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            return None
    return cudart


def available():
    """The CUDA bindings importable here, in preference order."""
    return [name for name, probe in (("pycuda", import_pycuda), ("cuda-python", import_cudart)) if probe()]


def open_gpu(prefer=None):
    """A Gpu over pycuda or cuda-python (``prefer``: one of CHOICES, or None for the first available)."""
    if prefer is not None and prefer not in CHOICES:
        raise ConfigError("unknown CUDA binding %r" % (prefer,), hint="use one of: %s" % ", ".join(CHOICES))
    for name in ([prefer] if prefer else CHOICES):
        if name == "pycuda":
            cuda = import_pycuda()
            if cuda is not None:
                return PycudaGpu(cuda)
        else:
            cudart = import_cudart()
            if cudart is not None:
                return CudaPythonGpu(cudart)
    raise BackendUnavailable("%s is not installed here" % (prefer or "neither pycuda nor cuda-python"), hint=HINT)


def _text(value):
    return bytes.decode(value, "utf-8", "replace") if isinstance(value, bytes) else str(value)


def no_cuda(exc):
    return BackendUnavailable("CUDA does not start here: %s" % (str(exc).strip().splitlines() or ["?"])[0],
                              hint="check the NVIDIA driver (a desktop: nvidia-smi; a Jetson: sudo apt install "
                              "--reinstall nvidia-l4t-cuda, or reflash JetPack)")


class PycudaGpu(object):
    name = "pycuda"

    def __init__(self, cuda):
        self.cuda = cuda
        self.ctx = None
        self.made = False

    def open(self, device=0, map_host=False):
        self._init(device)
        self.ctx = self.device.make_context(flags=self.cuda.ctx_flags.MAP_HOST if map_host else 0)
        self.made = True
        self.ctx.pop()
        return self

    def open_or_share(self, device=0):
        """Use the thread's current context if there is one (the runner's), else make one."""
        self._init(device)
        current = self.cuda.Context.get_current()
        if current is not None:
            self.ctx, self.made = current, False
            return self
        return self.open(device)

    def _init(self, device):
        try:
            self.cuda.init()
            self.device = self.cuda.Device(int(device))
        except Exception as exc:          # pycuda raises its own RuntimeError/LogicError types
            raise no_cuda(exc)

    @contextlib.contextmanager
    def current(self):
        if not self.made:
            yield self
            return
        self.ctx.push()
        try:
            yield self
        finally:
            self.ctx.pop()

    def close(self):
        if self.made and self.ctx is not None:
            self.ctx.detach()
        self.ctx = None

    def info(self):
        major, minor = self.device.compute_capability()
        version, driver = self.cuda.get_version(), self.cuda.get_driver_version()
        return {"gpu": str(self.device.name()), "compute_capability": "%d.%d" % (major, minor),
                "cuda": "%d.%d" % (version[0], version[1]),
                "driver": "%d.%d" % (driver // 1000, (driver % 1000) // 10),
                "total_memory": int(self.device.total_memory()), "binding": self.name}

    def host_buffer(self, count, dtype, mapped=False):
        """(page-locked array, device pointer of the mapping or None)."""
        if mapped:
            host = self.cuda.pagelocked_empty(count, dtype, mem_flags=self.cuda.host_alloc_flags.DEVICEMAP)
            return host, int(host.base.get_device_pointer())
        return self.cuda.pagelocked_empty(count, dtype), None

    def free_host(self, host):
        host.base.free()

    def device_buffer(self, nbytes):
        allocation = self.cuda.mem_alloc(max(int(nbytes), 1))
        self._keep = getattr(self, "_keep", {})
        self._keep[int(allocation)] = allocation
        return int(allocation)

    def free_device(self, ptr):
        allocation = getattr(self, "_keep", {}).pop(ptr, None)
        if allocation is not None:
            allocation.free()

    def stream(self):
        return self.cuda.Stream()

    def stream_handle(self, stream):
        return stream.handle

    def htod(self, ptr, host, stream):
        self.cuda.memcpy_htod_async(ptr, host, stream)

    def dtoh(self, host, ptr, stream):
        self.cuda.memcpy_dtoh_async(host, ptr, stream)

    def event(self):
        return self.cuda.Event()

    def record(self, event, stream):
        event.record(stream)

    def elapsed_ms(self, start, end):
        return end.time_since(start)

    def synchronize(self, stream):
        stream.synchronize()


class CudaPythonGpu(object):
    """cuda-python's runtime API: every call returns (error, *values)."""

    name = "cuda-python"

    def __init__(self, cudart):
        self.rt = cudart
        self.device = 0
        self._host = {}            # id(array) -> host pointer, to free
        self._events = []
        self._streams = []         # destroyed in close(): a stream per reload would leak otherwise

    def _call(self, fn, *args):
        result = fn(*args)
        err, values = result[0], result[1:]
        if err != self.rt.cudaError_t.cudaSuccess:
            name = self.rt.cudaGetErrorString(err)[1]
            raise RuntimeError("%s failed: %s" % (getattr(fn, "__name__", "CUDA call"), _text(name)))
        return values[0] if len(values) == 1 else values

    def open(self, device=0, map_host=False):
        self.device = int(device)
        try:
            self._call(self.rt.cudaSetDevice, self.device)
        except RuntimeError as exc:
            raise no_cuda(exc)
        if map_host:
            # after cudaSetDevice (which picks the device the flags are for). CUDA 10.2 answers
            # cudaErrorSetOnActiveProcess once the primary context is active; CUDA 12 documents the flag as
            # implicit for the runtime. So: check the answer, and on failure whether mapping is on anyway.
            err = self.rt.cudaSetDeviceFlags(self.rt.cudaDeviceMapHost)[0]
            if err != self.rt.cudaError_t.cudaSuccess and not self._maps_host():
                raise ConfigError("zero-copy needs cudaDeviceMapHost before CUDA starts on device %d, and "
                                  "cudaSetDeviceFlags failed: %s" % (
                                      self.device, _text(self.rt.cudaGetErrorString(err)[1])),
                                  hint="open the zero-copy runner before anything else uses CUDA in this process, "
                                  "use zero_copy=False, or cuda='pycuda' (its own context with MAP_HOST)")
        return self

    def _maps_host(self):
        result = self.rt.cudaGetDeviceFlags()
        return result[0] == self.rt.cudaError_t.cudaSuccess and bool(int(result[1]) & int(self.rt.cudaDeviceMapHost))

    def open_or_share(self, device=0):
        return self.open(device)

    @contextlib.contextmanager
    def current(self):
        self._call(self.rt.cudaSetDevice, self.device)     # the primary context, on this thread
        yield self

    def close(self):
        for event in self._events:
            self.rt.cudaEventDestroy(event)
        for stream in self._streams:
            self.rt.cudaStreamDestroy(stream)
        self._events, self._streams = [], []

    def info(self):
        props = self._call(self.rt.cudaGetDeviceProperties, self.device)
        runtime = self._call(self.rt.cudaRuntimeGetVersion)
        driver = self._call(self.rt.cudaDriverGetVersion)
        name = _text(props.name)
        return {"gpu": name.rstrip("\x00"), "compute_capability": "%d.%d" % (props.major, props.minor),
                "cuda": "%d.%d" % (runtime // 1000, (runtime % 1000) // 10),
                "driver": "%d.%d" % (driver // 1000, (driver % 1000) // 10),
                "total_memory": int(props.totalGlobalMem), "binding": self.name}

    def host_buffer(self, count, dtype, mapped=False):
        dtype = np.dtype(dtype)
        nbytes = max(int(count) * dtype.itemsize, 1)
        flags = self.rt.cudaHostAllocMapped if mapped else self.rt.cudaHostAllocDefault
        ptr = int(self._call(self.rt.cudaHostAlloc, nbytes, flags))
        raw = (ctypes.c_byte * nbytes).from_address(ptr)
        host = np.frombuffer(raw, dtype=dtype, count=int(count))
        self._host[id(host)] = ptr
        device = int(self._call(self.rt.cudaHostGetDevicePointer, ptr, 0)) if mapped else None
        return host, device

    def free_host(self, host):
        ptr = self._host.pop(id(host), None)
        if ptr is not None:
            self._call(self.rt.cudaFreeHost, ptr)

    def device_buffer(self, nbytes):
        return int(self._call(self.rt.cudaMalloc, max(int(nbytes), 1)))

    def free_device(self, ptr):
        self._call(self.rt.cudaFree, ptr)

    def stream(self):
        stream = self._call(self.rt.cudaStreamCreate)
        self._streams.append(stream)
        return stream

    def stream_handle(self, stream):
        return int(stream)

    def htod(self, ptr, host, stream):
        self._call(self.rt.cudaMemcpyAsync, ptr, host.ctypes.data, host.nbytes,
                   self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream)

    def dtoh(self, host, ptr, stream):
        self._call(self.rt.cudaMemcpyAsync, host.ctypes.data, ptr, host.nbytes,
                   self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream)

    def event(self):
        event = self._call(self.rt.cudaEventCreate)
        self._events.append(event)
        return event

    def record(self, event, stream):
        self._call(self.rt.cudaEventRecord, event, stream)

    def elapsed_ms(self, start, end):
        return float(self._call(self.rt.cudaEventElapsedTime, start, end))

    def synchronize(self, stream):
        self._call(self.rt.cudaStreamSynchronize, stream)
