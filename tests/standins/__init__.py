"""STAND-INS for TensorRT and pycuda (which cannot run on a machine without an NVIDIA GPU).

They implement exactly the calls edgekit makes (see edgekit/engine/trt_api.py), in both API shapes
(TensorRT 8.2 bindings and TensorRT 10 tensor names), on a simulated GPU whose "device memory" is
numpy arrays and whose "kernels" run the ONNX model with ONNX Runtime. They test control flow, cache
keys, invalidation, errors, copies and timing splits -- never TensorRT itself. Code tested only
against them is NOT verified on hardware; jetson/selftest runs the real thing on a board.

    standin = install(monkeypatch, api="8.2")     # puts tensorrt, pycuda, pycuda.driver in sys.modules
"""

import sys

from standins import pycuda_standin, tensorrt_standin


class StandIn(object):
    def __init__(self, gpu, trt, cuda_modules):
        self.gpu, self.trt = gpu, trt
        self.cuda = cuda_modules["pycuda.driver"]
        self.calls = gpu.calls


def install(monkeypatch, api="8.2", **gpu_options):
    """Install a stand-in TensorRT of ``api`` ("8.2" or "10") and a stand-in pycuda sharing one simulated GPU."""
    gpu = pycuda_standin.SimulatedGpu(**gpu_options)
    modules = pycuda_standin.make_modules(gpu)
    trt = tensorrt_standin.make_module(gpu, api=api)
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return StandIn(gpu, trt, modules)
