"""STAND-INS for TensorRT and pycuda (which cannot run on a machine without an NVIDIA GPU).

They implement exactly the calls edgekit makes (see edgekit/engine/trt_api.py), in both API shapes
(TensorRT 8.2 bindings and TensorRT 10 tensor names), on a simulated GPU whose "device memory" is
numpy arrays and whose "kernels" run the ONNX model with ONNX Runtime. They test control flow, cache
keys, invalidation, errors, copies and timing splits -- never TensorRT itself. Code tested only
against them is NOT verified on hardware; jetson/selftest runs the real thing on a board.

    standin = install(monkeypatch, api="8.2")     # puts tensorrt, pycuda, pycuda.driver in sys.modules
    standin = install(monkeypatch, api="10", cuda="cuda-python")   # tensorrt, cuda.bindings.runtime
"""

import sys

from standins import cudart_standin, pycuda_standin, tensorrt_standin


class StandIn(object):
    def __init__(self, gpu, trt, cuda_modules):
        self.gpu, self.trt = gpu, trt
        self.cuda = cuda_modules.get("pycuda.driver") or cuda_modules.get("cuda.bindings.runtime")
        self.calls = gpu.calls


CUDA_NAMES = ("pycuda", "pycuda.driver", "pycuda.autoinit", "cuda", "cuda.bindings", "cuda.bindings.runtime",
              "cuda.cudart")


def install(monkeypatch, api="8.2", cuda="pycuda", version=None, **gpu_options):
    """Install a stand-in TensorRT of ``api`` ("8.2" or "10"; ``version`` overrides its __version__) and a
    stand-in of ``cuda`` ("pycuda" or "cuda-python": the other is made unimportable) sharing one simulated GPU."""
    gpu = pycuda_standin.SimulatedGpu(**gpu_options)
    maker = {"pycuda": pycuda_standin, "cuda-python": cudart_standin}[cuda]
    modules = maker.make_modules(gpu)
    trt = tensorrt_standin.make_module(gpu, api=api, version=version)
    for name in CUDA_NAMES:
        monkeypatch.setitem(sys.modules, name, modules.get(name))
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return StandIn(gpu, trt, modules)
