"""STAND-IN for cuda-python's runtime bindings (``cuda.bindings.runtime``): the calls edgekit makes,
on the same simulated GPU as the pycuda stand-in. Not cuda-python.

Every call returns a tuple whose first item is a cudaError_t, as the real bindings do. Host memory
is real (numpy buffers whose addresses edgekit wraps with ctypes); device memory and mapped
pointers are fake addresses in the SimulatedGpu; streams queue work until synchronized. An async copy
reads (host to device) or writes (device to host) host memory when it runs on the stream, as a real
cudaMemcpyAsync does, so code that reuses a host buffer before synchronizing sees the race.
"""

import ctypes
import enum
import itertools
import types

import numpy as np


class cudaError_t(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInvalidResourceHandle = 400
    cudaErrorSetOnActiveProcess = 708


class cudaMemcpyKind(enum.IntEnum):
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2


def make_modules(gpu):
    """{"cuda": pkg, "cuda.bindings": pkg, "cuda.bindings.runtime": runtime} bound to ``gpu``."""
    rt = types.ModuleType("cuda.bindings.runtime")
    rt.__doc__ = "STAND-IN for cuda.bindings.runtime (tests/standins/cudart_standin.py)"
    rt.cudaError_t, rt.cudaMemcpyKind = cudaError_t, cudaMemcpyKind
    rt.cudaHostAllocDefault, rt.cudaHostAllocMapped, rt.cudaDeviceMapHost = 0, 2, 8
    ok = cudaError_t.cudaSuccess
    host = {}            # host pointer -> numpy uint8 array (kept alive)
    # CUDA 12's runtime documents cudaDeviceMapHost as implicit for the runtime and lets flags be set on an
    # active device (they overwrite); CUDA 10.2's documents cudaErrorSetOnActiveProcess once the device is
    # initialized, and no implicit mapping (``legacy_device_flags=True``)
    state = {"device": None, "flags": 0 if gpu.legacy_device_flags else 8, "active": False}

    def cudaGetErrorString(err):
        return ok, ("stand-in error %s" % cudaError_t(err).name).encode()

    def cudaSetDevice(device):
        if device != 0:
            return (cudaError_t.cudaErrorInvalidValue,)
        state["device"] = device
        gpu.runtime_current = True
        gpu.log("cudaSetDevice")
        return (ok,)

    def cudaSetDeviceFlags(flags):
        if state["active"] and gpu.legacy_device_flags:
            return (cudaError_t.cudaErrorSetOnActiveProcess,)
        state["flags"] = flags | (0 if gpu.legacy_device_flags else rt.cudaDeviceMapHost)
        return (ok,)

    def cudaGetDeviceFlags():
        return ok, state["flags"]

    def cudaGetDeviceProperties(device):
        props = types.SimpleNamespace(name=gpu.name.encode() + b"\x00", major=gpu.compute_capability[0],
                                      minor=gpu.compute_capability[1], totalGlobalMem=gpu.total_memory)
        return ok, props

    def cudaRuntimeGetVersion():
        return ok, gpu.cuda_version[0] * 1000 + gpu.cuda_version[1] * 10

    def cudaDriverGetVersion():
        return ok, gpu.driver_version

    def _need_device():
        if state["device"] is None:
            raise AssertionError("stand-in: CUDA runtime call before cudaSetDevice on this thread")
        state["active"] = True

    def cudaHostAlloc(size, flags):
        _need_device()
        array = np.zeros(int(size), np.uint8)
        ptr = array.ctypes.data
        host[ptr] = [array, flags, None]
        gpu.log("cudaHostAlloc", flags)
        return ok, ptr

    def cudaHostGetDevicePointer(ptr, flags):
        entry = host.get(int(ptr))
        if entry is None or not entry[1] & rt.cudaHostAllocMapped or not state["flags"] & rt.cudaDeviceMapHost:
            return cudaError_t.cudaErrorInvalidValue, 0
        if entry[2] is None:
            entry[2] = gpu.register(entry[0])
        return ok, entry[2]

    def cudaFreeHost(ptr):
        entry = host.pop(int(ptr), None)
        if entry is None:
            return (cudaError_t.cudaErrorInvalidValue,)
        if entry[2] is not None:
            gpu.memory.pop(entry[2], None)
        return (ok,)

    def cudaMalloc(size):
        _need_device()
        return ok, gpu.register(np.zeros(int(size), np.uint8))

    def cudaFree(ptr):
        return (ok,) if gpu.memory.pop(int(ptr), None) is not None else (cudaError_t.cudaErrorInvalidValue,)

    handles = itertools.count(0x9001)

    class Stream(object):
        def __init__(self):
            self.queue = []
            self.handle = next(handles)
            gpu.streams[self.handle] = self

        def __int__(self):
            return self.handle

        def enqueue(self, fn):
            self.queue.append(fn)

    def cudaStreamCreate():
        _need_device()
        return ok, Stream()

    def cudaStreamDestroy(stream):
        if gpu.streams.pop(stream.handle, None) is None:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        return (ok,)

    def cudaStreamSynchronize(stream):
        while stream.queue:
            stream.queue.pop(0)()
        return (ok,)

    def cudaMemcpyAsync(dst, src, count, kind, stream):
        count = int(count)
        if kind == cudaMemcpyKind.cudaMemcpyHostToDevice:
            def run():            # reads the host bytes when the copy runs on the stream, not when enqueued
                gpu.resolve(dst, count)[:] = np.frombuffer(ctypes.string_at(int(src), count), np.uint8)
                gpu.copy_cost(count)
        else:
            def run():
                ctypes.memmove(int(dst), gpu.resolve(src, count).tobytes(), count)
                gpu.copy_cost(count)
        gpu.log("cudaMemcpyAsync", int(kind))
        stream.enqueue(run)
        return (ok,)

    class Event(object):
        time = None

    def cudaEventCreate():
        return ok, Event()

    def cudaEventDestroy(event):
        return (ok,)

    def cudaEventRecord(event, stream):
        def run():
            event.time = gpu.clock_ms
        stream.enqueue(run)
        return (ok,)

    def cudaEventElapsedTime(start, end):
        if start.time is None or end.time is None:
            return cudaError_t.cudaErrorInvalidResourceHandle, 0.0
        return ok, end.time - start.time

    for fn in (cudaGetErrorString, cudaSetDevice, cudaSetDeviceFlags, cudaGetDeviceFlags, cudaGetDeviceProperties, cudaRuntimeGetVersion,
               cudaDriverGetVersion, cudaHostAlloc, cudaHostGetDevicePointer, cudaFreeHost, cudaMalloc, cudaFree,
               cudaStreamCreate, cudaStreamDestroy, cudaStreamSynchronize, cudaMemcpyAsync, cudaEventCreate, cudaEventDestroy,
               cudaEventRecord, cudaEventElapsedTime):
        setattr(rt, fn.__name__, fn)
    rt.host_allocations = host          # for tests: what is still allocated
    rt.state = state
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime, bindings.__path__ = rt, []
    pkg = types.ModuleType("cuda")
    pkg.bindings, pkg.__path__ = bindings, []
    return {"cuda": pkg, "cuda.bindings": bindings, "cuda.bindings.runtime": rt}
