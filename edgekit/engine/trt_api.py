"""A thin layer over the two shapes of TensorRT's Python API (CUDA itself: ``cuda_api``).

TensorRT 8.2 (Jetson Nano, JetPack 4.6) addresses engine inputs and outputs by *binding index*
(``num_bindings``, ``get_binding_shape``, ``set_binding_shape``, ``execute_async_v2``) and sets the
workspace with ``config.max_workspace_size``. TensorRT 8.5+ adds, and 10 keeps only, the
*tensor-name* API (``num_io_tensors``, ``get_tensor_mode``, ``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``) and ``config.set_memory_pool_limit``. Every call the
rest of edgekit makes into TensorRT goes through the functions here, chosen by feature
detection on the objects themselves (never by parsing version strings), so one code path serves
both. ``tests/standins/`` holds a stand-in of exactly these calls in both shapes.
"""

import numpy as np

from edgekit.errors import BackendUnavailable

TENSOR_API = "tensor-names"     # 8.5+ / 10
BINDING_API = "bindings"        # 8.2


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError:
        from edgekit.runners import install_hint

        raise BackendUnavailable("TensorRT's Python bindings (tensorrt) are not installed here",
                                 hint=install_hint("tensorrt"))
    return trt


def trt_major(trt):
    return int(str(trt.__version__).split(".")[0])


# TensorRT 11.0 (NVIDIA/TensorRT release/11.0, python/src/infer/pyCore.cpp) builds strongly typed networks
# only: BuilderFlag.FP16/INT8, the IInt8*Calibrator classes, config.int8_calibrator and
# builder.platform_has_fast_fp16/int8 are gone. Running an engine keeps the tensor-name API edgekit uses.
FIRST_UNSUPPORTED_BUILD_MAJOR = 11


def check_can_build(trt):
    """Refuse to build with a TensorRT whose builder API edgekit does not speak yet (11 and newer)."""
    if trt_major(trt) < FIRST_UNSUPPORTED_BUILD_MAJOR:
        return
    raise BackendUnavailable(
        "edgekit cannot build engines with TensorRT %s yet: TensorRT 11 removed the builder calls it uses "
        "(BuilderFlag.FP16/INT8, INT8 calibrators, platform_has_fast_fp16/int8; networks are always strongly "
        "typed); this path is unverified on 11" % trt.__version__,
        hint="build the engine with TensorRT 10 (or `trtexec --onnx=MODEL.onnx --saveEngine=MODEL.engine` from an "
        "FP16 or QDQ ONNX here) and give edgekit the .engine file: running engines works through the tensor-name API")


_LOGGERS = {}


def make_logger(trt, verbose=False):
    """The process's one trt.Logger (per tensorrt module): TensorRT warns when Builder and Runtime get
    different loggers ("logger passed into createInferRuntime differs from one already provided")."""
    entry = _LOGGERS.get(id(trt))
    if entry is None or entry[0] is not trt:
        entry = (trt, trt.Logger(trt.Logger.WARNING))
        _LOGGERS[id(trt)] = entry
    logger = entry[1]
    if verbose:
        logger.min_severity = trt.Logger.VERBOSE
    return logger


# -- building ---------------------------------------------------------------------------------
def network_flags(trt):
    """Explicit batch: a flag before TensorRT 10, the only mode (flag 0) from 10 on."""
    if trt_major(trt) >= 10:
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)


def set_workspace(trt, config, nbytes):
    """8.4+ memory pools, else 8.2's max_workspace_size. Returns the API used."""
    if hasattr(config, "set_memory_pool_limit"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(nbytes))
        return "set_memory_pool_limit"
    config.max_workspace_size = int(nbytes)
    return "max_workspace_size"


def network_inputs(network):
    """[(name, shape list with -1 for dynamic dims)] of a parsed network."""
    out = []
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        out.append((tensor.name, [int(d) for d in tensor.shape]))
    return out


def parser_errors(parser):
    return [str(parser.get_error(i).desc()) for i in range(parser.num_errors)]


def serialized_bytes(host_memory):
    """IHostMemory (buffer protocol) -> bytes."""
    return bytes(memoryview(host_memory))


# -- running ----------------------------------------------------------------------------------
class IOTensor(object):
    """One engine input or output: index (binding), name, is_input, shape (-1 = dynamic), numpy dtype,
    profile (min, opt, max) shapes for dynamic inputs of profile 0."""

    __slots__ = ("index", "name", "is_input", "shape", "dtype", "profile")

    def __init__(self, index, name, is_input, shape, dtype, profile=None):
        self.index, self.name, self.is_input = index, name, is_input
        self.shape, self.dtype, self.profile = list(shape), np.dtype(dtype), profile

    @property
    def is_dynamic(self):
        return any(d < 0 for d in self.shape)


def api_of(engine):
    return TENSOR_API if hasattr(engine, "num_io_tensors") else BINDING_API


def _dims(dims):
    return [int(d) for d in dims]


def engine_io(trt, engine):
    """Inputs and outputs of an engine, in binding order, through whichever API it has."""
    io = []
    if api_of(engine) == TENSOR_API:
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            shape = _dims(engine.get_tensor_shape(name))
            profile = None
            if is_input and any(d < 0 for d in shape):
                profile = [_dims(s) for s in engine.get_tensor_profile_shape(name, 0)]
            io.append(IOTensor(i, name, is_input, shape, trt.nptype(engine.get_tensor_dtype(name)), profile))
        return io
    for i in range(engine.num_bindings):
        is_input = engine.binding_is_input(i)
        shape = _dims(engine.get_binding_shape(i))
        profile = None
        if is_input and any(d < 0 for d in shape):
            profile = [_dims(s) for s in engine.get_profile_shape(0, i)]
        io.append(IOTensor(i, engine.get_binding_name(i), is_input, shape,
                           trt.nptype(engine.get_binding_dtype(i)), profile))
    return io


def set_input_shape(context, tensor, shape):
    if hasattr(context, "set_input_shape"):
        ok = context.set_input_shape(tensor.name, tuple(shape))
    else:
        ok = context.set_binding_shape(tensor.index, tuple(shape))
    if ok is False:
        raise ValueError("TensorRT refused shape %s for input %s" % (list(shape), tensor.name))


def context_shape(context, tensor):
    """The shape of a tensor in this context (after input shapes are set)."""
    if hasattr(context, "get_tensor_shape"):
        return _dims(context.get_tensor_shape(tensor.name))
    return _dims(context.get_binding_shape(tensor.index))


def execute(context, io, pointers, stream_handle):
    """Enqueue one inference. ``pointers``: device addresses (ints) in ``io`` order."""
    if hasattr(context, "execute_async_v3"):
        for tensor, ptr in zip(io, pointers):
            context.set_tensor_address(tensor.name, int(ptr))
        ok = context.execute_async_v3(stream_handle=stream_handle)
    else:
        ok = context.execute_async_v2(bindings=[int(p) for p in pointers], stream_handle=stream_handle)
    if not ok:
        raise RuntimeError("TensorRT failed to enqueue the inference (see its log above)")
