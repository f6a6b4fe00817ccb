"""STAND-IN for pycuda.driver: the calls edgekit makes, on a simulated GPU. Not pycuda.

Device memory is numpy byte arrays keyed by fake addresses. Work enqueued on a Stream (async copies,
TensorRT executions, event records) runs only when the stream (or an event) is synchronized, as on a
GPU: code that reads outputs without synchronizing gets stale data. A virtual clock advances by a
cost per byte copied and per inference, so Event.time_since gives deterministic milliseconds.
Contexts are checked: allocating or copying without a current context fails like the real driver.

Contexts follow pycuda's src/cpp/cuda.hpp (2021.1): the context stack is per thread (a
``boost::thread_specific_ptr<context_stack>``; a CUDA context is current per thread), so a context made
current on the loading thread is not current on another one until that thread pushes it;
``make_context`` pushes onto the calling thread's stack; ``Context.pop()`` pops the calling thread's top;
``detach()`` of the current context leaves it off the stack (``current_context`` skips and pops invalid
entries), and a detached context cannot be pushed again. Freeing memory whose context is neither current
on this thread nor made on it fails as in pycuda (``cannot activate out-of-thread context``: pycuda
prints a clean-up warning and leaks it), recorded in ``gpu.calls``.
"""

import threading
import types

import numpy as np


class LogicError(RuntimeError):
    pass


class SimulatedGpu(object):
    """The shared state of the stand-ins: memory, clock, contexts, a call log."""

    def __init__(self, name="NVIDIA Tegra X1", compute_capability=(5, 3), cuda_version=(10, 2, 0),
                 driver_version=10020, total_memory=4 * 1024 ** 3, copy_ms_per_mb=0.5, compute_ms=2.0,
                 fast_fp16=True, fast_int8=False, legacy_device_flags=False):
        self.name, self.compute_capability = name, tuple(compute_capability)
        self.cuda_version, self.driver_version, self.total_memory = tuple(cuda_version), driver_version, total_memory
        self.copy_ms_per_mb, self.compute_ms = copy_ms_per_mb, compute_ms
        self.fast_fp16, self.fast_int8 = fast_fp16, fast_int8
        self.legacy_device_flags = legacy_device_flags     # cudart stand-in: CUDA 10.2's cudaSetDeviceFlags rules
        self.memory = {}           # address -> uint8 array
        self.next_address = 0x7F0000000000
        self.clock_ms = 0.0
        self._thread = threading.local()     # per thread: the context stack, and cudaSetDevice's primary context
        self.contexts_made = 0
        self.streams = {}
        self.calls = []            # (name, detail) of notable calls, for tests

    def log(self, name, detail=None):
        self.calls.append((name, detail))

    @property
    def context_stack(self):
        """This thread's pycuda context stack (dead contexts are skipped and dropped, as pycuda does)."""
        stack = self._thread.__dict__.setdefault("stack", [])
        while stack and not stack[-1].alive:
            stack.pop()
        return stack

    def drop_dead_contexts(self):
        return self.context_stack

    @property
    def runtime_current(self):
        """cuda-python stand-in: cudaSetDevice made the primary context current on this thread."""
        return self._thread.__dict__.get("runtime", False)

    @runtime_current.setter
    def runtime_current(self, value):
        self._thread.runtime = bool(value)

    def need_context(self, what):
        if not self.context_stack and not self.runtime_current:
            raise LogicError("%s failed: invalid device context (no CUDA context is current on thread %s)"
                             % (what, threading.current_thread().name))

    def register(self, array):
        address = self.next_address
        self.next_address += (array.nbytes + 255) // 256 * 256 + 256
        self.memory[address] = array
        return address

    def resolve(self, address, nbytes):
        address = int(address)
        for start, array in self.memory.items():
            if start <= address and address + nbytes <= start + array.nbytes:
                return array[address - start:address - start + nbytes]
        raise LogicError("invalid device pointer 0x%x (%d bytes)" % (address, nbytes))

    def copy_cost(self, nbytes):
        self.clock_ms += nbytes / 1e6 * self.copy_ms_per_mb


def make_modules(gpu):
    """{"pycuda": package, "pycuda.driver": driver, "pycuda.autoinit": autoinit} bound to ``gpu``."""
    drv = types.ModuleType("pycuda.driver")
    drv.__doc__ = "STAND-IN for pycuda.driver (tests/standins/pycuda_standin.py)"
    drv.LogicError = LogicError
    drv.Error = RuntimeError
    drv.ctx_flags = types.SimpleNamespace(SCHED_AUTO=0, MAP_HOST=8)
    drv.host_alloc_flags = types.SimpleNamespace(PORTABLE=1, DEVICEMAP=2, WRITECOMBINED=4)

    def init(flags=0):
        gpu.log("init")
    drv.init = init
    drv.get_version = lambda: gpu.cuda_version
    drv.get_driver_version = lambda: gpu.driver_version

    class Context(object):
        def __init__(self, flags):
            self.flags = flags
            self.alive = True
            self.thread = threading.current_thread()

        @staticmethod
        def get_current():
            stack = gpu.context_stack
            return stack[-1] if stack else None

        def push(self):
            if not self.alive:
                raise LogicError("cannot activate dead context")
            gpu.context_stack.append(self)
            gpu.log("context.push", threading.current_thread().name)

        @staticmethod
        def pop():
            stack = gpu.context_stack
            if not stack:
                raise LogicError("context::pop failed: cannot pop non-current context")
            stack.pop()
            gpu.log("context.pop", threading.current_thread().name)

        def detach(self):
            if not self.alive:
                raise LogicError("context::detach failed: cannot detach from invalid context")
            if self.thread is not threading.current_thread() and Context.get_current() is not self:
                gpu.log("context.detach leaked", "out-of-thread context")   # pycuda: its thread presumably exited
            self.alive = False
            gpu.drop_dead_contexts()          # the dead context leaves this thread's stack
            gpu.log("context.detach")

    def owner_is_reachable(ctx):
        """pycuda's scoped_context_activation: current here, or made on this thread (then pushed for the call)."""
        return ctx is None or (ctx.alive and (Context.get_current() is ctx or ctx.thread is threading.current_thread()))

    class Device(object):
        def __init__(self, index):
            if index != 0:
                raise LogicError("cuDeviceGet failed: invalid device ordinal")

        def name(self):
            return gpu.name

        def compute_capability(self):
            return gpu.compute_capability

        def total_memory(self):
            return gpu.total_memory

        def make_context(self, flags=0):
            ctx = Context(flags)
            gpu.contexts_made += 1
            gpu.context_stack.append(ctx)        # pushed on the calling thread's stack
            gpu.log("make_context", flags)
            return ctx

    drv.Context, drv.Device = Context, Device

    class HostAllocation(object):
        """The .base of a page-locked array (real pycuda: HostAllocation)."""

        def __init__(self, shape, dtype, mem_flags):
            self._array = np.zeros(shape, dtype)
            self.mem_flags = mem_flags
            self.__array_interface__ = self._array.__array_interface__
            self._device = None
            self.context = Context.get_current()

        def free(self):
            if not owner_is_reachable(self.context):
                gpu.log("cleanup failed", "host allocation: cannot activate out-of-thread context")
                return
            if self._device is not None:
                gpu.memory.pop(self._device, None)
                self._device = None

        def get_device_pointer(self):
            if not self.mem_flags & drv.host_alloc_flags.DEVICEMAP:
                raise LogicError("cuMemHostGetDevicePointer failed: memory not mapped (DEVICEMAP)")
            ctx = Context.get_current()
            if ctx is None or not ctx.flags & drv.ctx_flags.MAP_HOST:
                raise LogicError("cuMemHostGetDevicePointer failed: context made without MAP_HOST")
            if self._device is None:
                self._device = gpu.register(self._array.reshape(-1).view(np.uint8))
            return self._device

    def pagelocked_empty(shape, dtype, order="C", mem_flags=0):
        gpu.need_context("cuMemHostAlloc")
        gpu.log("pagelocked_empty", mem_flags)
        return np.asarray(HostAllocation(shape, dtype, mem_flags))
    drv.pagelocked_empty = pagelocked_empty

    class DeviceAllocation(object):
        def __init__(self, nbytes):
            self.address = gpu.register(np.zeros(int(nbytes), np.uint8))
            self.context = Context.get_current()

        def __int__(self):
            return self.address

        __index__ = __int__

        def free(self):
            if not owner_is_reachable(self.context):
                gpu.log("cleanup failed", "device allocation: cannot activate out-of-thread context")
                return
            gpu.memory.pop(self.address, None)

    def mem_alloc(nbytes):
        gpu.need_context("cuMemAlloc")
        gpu.log("mem_alloc", int(nbytes))
        return DeviceAllocation(nbytes)
    drv.mem_alloc, drv.DeviceAllocation = mem_alloc, DeviceAllocation

    class Stream(object):
        def __init__(self, flags=0):
            gpu.need_context("cuStreamCreate")
            self.queue = []
            self.handle = 0x5000 + len(gpu.streams) + 1
            gpu.streams[self.handle] = self

        def enqueue(self, fn):
            self.queue.append(fn)

        def synchronize(self):
            gpu.need_context("cuStreamSynchronize")
            while self.queue:
                self.queue.pop(0)()

        def is_done(self):
            return not self.queue
    drv.Stream = Stream

    def _enqueue(stream, fn):
        if stream is None:
            fn()
        else:
            stream.enqueue(fn)

    def memcpy_htod_async(dest, src, stream=None):
        gpu.need_context("cuMemcpyHtoDAsync")
        src = np.ascontiguousarray(src)
        snapshot = src.reshape(-1).view(np.uint8)

        def run():
            gpu.resolve(dest, snapshot.nbytes)[:] = snapshot
            gpu.copy_cost(snapshot.nbytes)
        gpu.log("memcpy_htod_async", snapshot.nbytes)
        _enqueue(stream, run)

    def memcpy_dtoh_async(dest, src, stream=None):
        gpu.need_context("cuMemcpyDtoHAsync")
        if not dest.flags["C_CONTIGUOUS"]:
            raise LogicError("memcpy_dtoh_async needs a contiguous host array")
        view = dest.reshape(-1).view(np.uint8)

        def run():
            view[:] = gpu.resolve(src, view.nbytes)
            gpu.copy_cost(view.nbytes)
        gpu.log("memcpy_dtoh_async", view.nbytes)
        _enqueue(stream, run)
    drv.memcpy_htod_async, drv.memcpy_dtoh_async = memcpy_htod_async, memcpy_dtoh_async

    class Event(object):
        def __init__(self, flags=0):
            self.time = None

        def record(self, stream=None):
            def run():
                self.time = gpu.clock_ms
            _enqueue(stream, run)
            return self

        def synchronize(self):
            for s in gpu.streams.values():
                s.synchronize()
            return self

        def time_since(self, start):
            if self.time is None or start.time is None:
                raise LogicError("cuEventElapsedTime failed: event not completed (synchronize first)")
            return self.time - start.time
    drv.Event = Event

    pkg = types.ModuleType("pycuda")
    pkg.__doc__ = "STAND-IN for pycuda"
    pkg.VERSION = (2021, 1)
    pkg.VERSION_TEXT = "2021.1-standin"
    pkg.driver = drv
    pkg.__path__ = []
    autoinit = types.ModuleType("pycuda.autoinit")
    return {"pycuda": pkg, "pycuda.driver": drv, "pycuda.autoinit": autoinit}
