"""STAND-IN for the ``tensorrt`` Python module: the calls edgekit makes, in two API shapes. Not TensorRT.

api="8.2":  Builder.create_network(1 << EXPLICIT_BATCH) required, config.max_workspace_size (no memory
            pools), engine bindings (num_bindings, get_binding_*, binding_is_input, get_profile_shape),
            context.set_binding_shape / get_binding_shape / execute_async_v2(bindings, stream_handle).
api="10":   config.set_memory_pool_limit(MemoryPoolType.WORKSPACE, n) (no max_workspace_size), engine
            tensor names (num_io_tensors, get_tensor_name/mode/shape/dtype, get_tensor_profile_shape),
            context.set_input_shape / get_tensor_shape / set_tensor_address / execute_async_v3(stream_handle).
Objects use __slots__ so calling the other shape's API fails as with the real pybind11 objects.

The "engine" is a header plus the ONNX bytes; executing it runs ONNX Runtime on the simulated
GPU's memory (FP16 builds round outputs through float16). Deserializing checks TensorRT version and
compute capability like the real runtime (and returns None on mismatch).
"""

import json
import types

import numpy as np

MAGIC = b"STANDIN-TRT-ENGINE\0"
# The ONNX operators TensorRT 8.2's parser imports (DEFINE_BUILTIN_OP_IMPORTER in onnx-tensorrt 8.2-GA
# builtin_op_importers.cpp); anything else goes to the plugin fallback, which fails without a plugin.
OPS_82 = frozenset("""Abs Acos Acosh And Asin Asinh Atan Atanh Add ArgMax ArgMin AveragePool BatchNormalization Cast Ceil
Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout
Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool
GlobalMaxPool Greater GreaterOrEqual GRU HardSigmoid Identity If ImageScaler InstanceNormalization IsNaN LeakyRelu Less
LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean Min Mul Neg NonMaxSuppression Not
Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomUniform RandomUniformLike Range Reciprocal ReduceLogSum
ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Sign Round Resize Reshape
ReverseSequence RNN ScaledTanh Scan ScatterND ScatterElements Scatter Selu Shape Sigmoid Sin Sinh Size Slice Softmax
Softsign Softplus SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Unsqueeze Upsample
Where""".split())


def calibration_number(version):
    """The version number in a calibration cache header ("8.2.1.8" -> 8201, "10.3.0.26" -> 100300)."""
    major, minor, patch = (int(p) for p in (str(version).split(".") + ["0", "0"])[:3])
    return major * (10000 if major >= 10 else 1000) + minor * 100 + patch


class _Enum(object):
    def __init__(self, name, value):
        self.name, self.value = name, value

    def __int__(self):
        return self.value

    def __repr__(self):
        return self.name

    def __eq__(self, other):
        return isinstance(other, _Enum) and (self.name, self.value) == (other.name, other.value)

    def __hash__(self):
        return hash((self.name, self.value))


def _enum(name, **values):
    return type(name, (object,), dict((k, _Enum("%s.%s" % (name, k), v)) for k, v in values.items()))


DataType = _enum("DataType", FLOAT=0, HALF=1, INT8=2, INT32=3, BOOL=4, INT64=8)
NP_OF = {"DataType.FLOAT": np.float32, "DataType.HALF": np.float16, "DataType.INT8": np.int8,
         "DataType.INT32": np.int32, "DataType.BOOL": np.bool_, "DataType.INT64": np.int64}
DT_OF_ORT = {"tensor(float)": "FLOAT", "tensor(float16)": "HALF", "tensor(int8)": "INT8",
             "tensor(int32)": "INT32", "tensor(bool)": "BOOL", "tensor(int64)": "INT64"}


def make_module(gpu, api="8.2", version=None):
    if api not in ("8.2", "10"):
        raise ValueError("stand-in API shapes: 8.2, 10")
    trt = types.ModuleType("tensorrt")
    trt.__doc__ = "STAND-IN for tensorrt %s (tests/standins/tensorrt_standin.py)" % api
    trt.__version__ = version or ("8.2.1.8" if api == "8.2" else "10.3.0.26")
    trt.STANDIN = True
    trt.DataType = DataType
    trt.float32, trt.float16, trt.int8, trt.int32 = DataType.FLOAT, DataType.HALF, DataType.INT8, DataType.INT32
    trt.nptype = lambda dt: NP_OF[dt.name]
    trt.NetworkDefinitionCreationFlag = _enum("NetworkDefinitionCreationFlag", EXPLICIT_BATCH=0)
    trt.BuilderFlag = _enum("BuilderFlag", FP16=0, INT8=1, STRICT_TYPES=5)
    if api == "10":
        trt.MemoryPoolType = _enum("MemoryPoolType", WORKSPACE=0)
        trt.TensorIOMode = _enum("TensorIOMode", NONE=0, INPUT=1, OUTPUT=2)

    class ILogger(object):
        pass

    class Logger(ILogger):
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = 0, 1, 2, 3, 4

        def __init__(self, min_severity=2):
            self.min_severity = min_severity
            gpu.log("trt.Logger", min_severity)

        def log(self, severity, msg):
            gpu.log("trt.log", msg)
    trt.ILogger, trt.Logger = ILogger, Logger

    class IInt8EntropyCalibrator2(object):
        def __init__(self):
            pass
    trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2

    class IProfiler(object):
        def __init__(self):
            pass
    trt.IProfiler = IProfiler

    class ITensor(object):
        __slots__ = ("name", "shape", "dtype")

        def __init__(self, name, shape, dtype):
            self.name, self.shape, self.dtype = name, tuple(shape), dtype

    class INetworkDefinition(object):
        __slots__ = ("flags", "inputs", "outputs", "onnx", "has_qdq", "layers")

        def __init__(self, flags):
            self.flags, self.inputs, self.outputs, self.onnx, self.has_qdq = flags, [], [], None, False
            self.layers = []

        @property
        def num_inputs(self):
            return len(self.inputs)

        def get_input(self, i):
            return self.inputs[i]

        @property
        def num_outputs(self):
            return len(self.outputs)

        def get_output(self, i):
            return self.outputs[i]

    class ParserError(object):
        def __init__(self, text):
            self.text = text

        def desc(self):
            return self.text

    class OnnxParser(object):
        __slots__ = ("network", "errors")

        def __init__(self, network, logger):
            self.network, self.errors = network, []

        def parse(self, model, path=None):
            import onnx
            import onnxruntime as ort

            if api == "8.2" and not self.network.flags & 1:
                self.errors.append(ParserError("network must be created with the EXPLICIT_BATCH flag"))
                return False
            try:
                proto = onnx.load_model_from_string(bytes(model))
                session = ort.InferenceSession(bytes(model), providers=["CPUExecutionProvider"])
            except Exception as exc:
                self.errors.append(ParserError("ModelImporter: failed to parse the ONNX model: %s" % str(exc)[:80]))
                return False
            # onnx-tensorrt 8.2-GA ModelImporter.cpp: no upper bound on the opset, only a warning below 7;
            # what it cannot import is an operator without an importer (then tried as a plugin, and failing)
            opset = max([o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] or [0])
            if opset < 7:
                gpu.log("trt.log", "TensorRT supports ONNX graphs generated with at least opset 7. Models using "
                        "older opsets are not guaranteed to work.")
            if api == "8.2":
                for number, node in enumerate(proto.graph.node):
                    if node.op_type not in OPS_82:
                        self.errors.append(ParserError(
                            "While parsing node number %d [%s -> \"%s\"]: ... Assertion failed: creator && \"Plugin "
                            "not found, are the plugin name, version, and namespace correct?\"" % (
                                number, node.op_type, node.output[0] if node.output else "")))
                        return False

            def dims(shape):
                return [d if isinstance(d, int) else -1 for d in shape]
            self.network.inputs = [ITensor(i.name, dims(i.shape), getattr(DataType, DT_OF_ORT[i.type]))
                                   for i in session.get_inputs()]
            self.network.outputs = [ITensor(o.name, dims(o.shape), getattr(DataType, DT_OF_ORT[o.type]))
                                    for o in session.get_outputs()]
            self.network.onnx = bytes(model)
            self.network.has_qdq = any(n.op_type == "QuantizeLinear" for n in proto.graph.node)
            self.network.layers = [n.name or "%s_%d" % (n.op_type, i) for i, n in enumerate(proto.graph.node)]
            return True

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, i):
            return self.errors[i]
    trt.OnnxParser = OnnxParser

    class IOptimizationProfile(object):
        __slots__ = ("shapes",)

        def __init__(self):
            self.shapes = {}

        def set_shape(self, input, min, opt, max):
            self.shapes[input] = [list(min), list(opt), list(max)]

    class ITimingCache(object):
        __slots__ = ("entries",)

        def __init__(self, entries):
            self.entries = entries

        def serialize(self):
            return b"STANDIN-TIMING:%d" % self.entries

    config_slots = ("flags", "int8_calibrator", "profiles", "timing_cache", "workspace")
    if api == "8.2":
        config_slots += ("max_workspace_size",)

    class IBuilderConfig(object):
        __slots__ = config_slots

        def __init__(self):
            self.flags, self.int8_calibrator, self.profiles, self.timing_cache = set(), None, [], None
            if api == "8.2":
                self.max_workspace_size = 0

        def set_flag(self, flag):
            self.flags.add(flag)

        def get_flag(self, flag):
            return flag in self.flags

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, serialized_timing_cache):
            data = bytes(serialized_timing_cache)
            entries = int(data.split(b":")[1]) if data.startswith(b"STANDIN-TIMING:") else 0
            gpu.log("create_timing_cache", entries)
            return ITimingCache(entries)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.timing_cache = cache
            return True

        def get_timing_cache(self):
            return self.timing_cache

        if api == "10":
            def set_memory_pool_limit(self, pool, pool_size):
                gpu.log("set_memory_pool_limit", pool_size)
                self.workspace = pool_size

    class Builder(object):
        __slots__ = ("logger",)

        def __init__(self, logger):
            self.logger = logger

        @property
        def platform_has_fast_fp16(self):
            return gpu.fast_fp16

        @property
        def platform_has_fast_int8(self):
            return gpu.fast_int8

        def create_network(self, flags=0):
            return INetworkDefinition(flags)

        def create_builder_config(self):
            return IBuilderConfig()

        def create_optimization_profile(self):
            return IOptimizationProfile()

        def build_serialized_network(self, network, config):
            workspace = config.max_workspace_size if api == "8.2" else getattr(config, "workspace", 0)
            gpu.log("build_serialized_network", {"workspace": workspace, "flags": sorted(f.name for f in config.flags)})
            profile = {}
            for p in config.profiles:
                profile.update(p.shapes)
            dynamic = [t.name for t in network.inputs if -1 in t.shape]
            if any(n not in profile for n in dynamic):
                self.logger.log(1, "Network has dynamic or shape inputs, but no optimization profile has been defined.")
                return None
            if trt.BuilderFlag.INT8 in config.flags and not network.has_qdq:
                # sampleINT8 (release/8.2 README): the builder re-calibrates when the cache is missing or
                # "incompatible with the current TensorRT version or calibrator variant it was generated with";
                # re-calibrating asks get_batch, and a calibrator with no batches gives no scales
                calib = config.int8_calibrator
                cache = calib.read_calibration_cache() if calib is not None else None
                header = bytes(cache or b"").split(b"\n", 1)[0].decode("utf-8", "replace").strip()
                wanted = "TRT-%d-EntropyCalibration2" % calibration_number(trt.__version__)
                if header != wanted:
                    gpu.log("trt.recalibrate", header or None)
                    batch = calib.get_batch(["input"]) if calib is not None else None
                    if not batch:
                        self.logger.log(1, "Calibration failure occurred with no scaling factors detected. This could "
                                        "be due to no int8 calibrator or insufficient custom scales for network layers.")
                        return None
            if config.timing_cache is not None:
                config.timing_cache.entries += 1
            header = {"version": trt.__version__, "cc": list(gpu.compute_capability),
                      "fp16": trt.BuilderFlag.FP16 in config.flags, "int8": trt.BuilderFlag.INT8 in config.flags,
                      "inputs": [[t.name, list(t.shape), t.dtype.name.split(".")[1]] for t in network.inputs],
                      "outputs": [[t.name, list(t.shape), t.dtype.name.split(".")[1]] for t in network.outputs],
                      "profile": profile, "layers": network.layers}
            text = json.dumps(header).encode("utf-8")
            return bytearray(MAGIC + b"%08d" % len(text) + text + network.onnx)
    trt.Builder = Builder

    class Runtime(object):
        __slots__ = ("logger",)

        def __init__(self, logger):
            self.logger = logger

        def deserialize_cuda_engine(self, serialized_engine):
            data = bytes(serialized_engine)
            if not data.startswith(MAGIC):
                self.logger.log(1, "1: [stdArchiveReader.cpp] Serialization assertion magicTagRead == kMAGIC_TAG failed.")
                return None
            try:
                size = int(data[len(MAGIC):len(MAGIC) + 8])
                start = len(MAGIC) + 8
                header = json.loads(data[start:start + size].decode("utf-8"))
            except ValueError:
                self.logger.log(1, "1: [stdArchiveReader.cpp] Serialization assertion failed: truncated plan")
                return None
            if header["version"] != trt.__version__:
                self.logger.log(1, "The engine plan file is not compatible with this version of TensorRT, "
                                "expecting library version %s got %s" % (trt.__version__, header["version"]))
                return None
            if tuple(header["cc"]) != gpu.compute_capability:
                self.logger.log(1, "The engine plan file is generated on an incompatible device, expecting compute "
                                "%d.%d got compute %d.%d" % (tuple(gpu.compute_capability) + tuple(header["cc"])))
                return None
            gpu.need_context("deserialize_cuda_engine")
            return ICudaEngine(header, data[start + size:])
    trt.Runtime = Runtime

    engine_slots = ("header", "onnx", "io", "session")

    class ICudaEngine(object):
        __slots__ = engine_slots

        def __init__(self, header, onnx_bytes):
            self.header, self.onnx, self.session = header, onnx_bytes, None
            self.io = [(n, s, d, True) for n, s, d in header["inputs"]] + \
                      [(n, s, d, False) for n, s, d in header["outputs"]]

        def _index(self, name):
            for i, item in enumerate(self.io):
                if item[0] == name:
                    return i
            raise KeyError(name)

        def _dtype(self, i):
            return getattr(DataType, self.io[i][2])

        def _profile(self, i):
            return [tuple(s) for s in self.header["profile"][self.io[i][0]]]

        def create_execution_context(self):
            gpu.need_context("create_execution_context")
            return IExecutionContext(self)

        def run(self, feeds):
            import onnxruntime as ort

            if self.session is None:
                self.session = ort.InferenceSession(self.onnx, providers=["CPUExecutionProvider"])
            outputs = self.session.run(None, feeds)
            if self.header["fp16"]:
                outputs = [o.astype(np.float16).astype(o.dtype) if o.dtype == np.float32 else o for o in outputs]
            return outputs

        if api == "8.2":
            @property
            def num_bindings(self):
                return len(self.io)

            def get_binding_name(self, index):
                return self.io[index][0]

            def binding_is_input(self, index):
                return self.io[index][3]

            def get_binding_shape(self, index):
                return tuple(self.io[index][1])

            def get_binding_dtype(self, index):
                return self._dtype(index)

            def get_profile_shape(self, profile_index, binding):
                return self._profile(binding)
        else:
            @property
            def num_io_tensors(self):
                return len(self.io)

            def get_tensor_name(self, index):
                return self.io[index][0]

            def get_tensor_mode(self, name):
                return trt.TensorIOMode.INPUT if self.io[self._index(name)][3] else trt.TensorIOMode.OUTPUT

            def get_tensor_shape(self, name):
                return tuple(self.io[self._index(name)][1])

            def get_tensor_dtype(self, name):
                return self._dtype(self._index(name))

            def get_tensor_profile_shape(self, name, profile_index):
                return self._profile(self._index(name))

    class IExecutionContext(object):
        __slots__ = ("engine", "shapes", "addresses", "profiler")

        def __init__(self, engine):
            self.engine = engine
            self.profiler = None
            self.shapes = dict((i, list(item[1])) for i, item in enumerate(engine.io) if item[3])
            self.addresses = {}

        def _set_shape(self, i, shape):
            low, _opt, high = self.engine._profile(i) if -1 in self.engine.io[i][1] else [self.engine.io[i][1]] * 3
            if len(shape) != len(low) or any(not (a <= s <= b) for a, s, b in zip(low, shape, high)):
                return False
            self.shapes[i] = list(shape)
            return True

        def _shape(self, i):
            name, shape, dtype, is_input = self.engine.io[i]
            if is_input:
                return tuple(self.shapes[i])
            if -1 not in shape:
                return tuple(shape)
            if any(-1 in s for s in self.shapes.values()):
                return tuple(shape)
            feeds = dict((self.engine.io[j][0], np.zeros(s, NP_OF["DataType." + self.engine.io[j][2]]))
                         for j, s in self.shapes.items())
            return self.engine.run(feeds)[i - len(self.shapes)].shape

        def _enqueue(self, addresses, stream_handle):
            gpu.need_context("IExecutionContext enqueue")       # TensorRT enqueues in the thread's current context
            stream = gpu.streams.get(stream_handle)
            if stream is None:
                raise RuntimeError("invalid stream handle")
            shapes = [self._shape(i) for i in range(len(self.engine.io))]
            if any(-1 in s for s in shapes):
                gpu.log("trt.log", "input shapes not specified")
                return False

            def run():
                feeds = {}
                for i, (name, _s, dtype, is_input) in enumerate(self.engine.io):
                    if is_input:
                        np_type = np.dtype(NP_OF["DataType." + dtype])
                        nbytes = int(np.prod(shapes[i])) * np_type.itemsize
                        feeds[name] = gpu.resolve(addresses[i], nbytes).view(np_type).reshape(shapes[i]).copy()
                outputs = self.engine.run(feeds)
                for k, value in enumerate(outputs):
                    i = len(feeds) + k
                    raw = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
                    gpu.resolve(addresses[i], raw.nbytes)[:] = raw
                gpu.clock_ms += gpu.compute_ms
                layers = self.engine.header.get("layers") or ["network"]
                if self.profiler is not None:        # IProfiler: per-layer times, reported as the work completes
                    for layer in layers:
                        self.profiler.report_layer_time(layer, gpu.compute_ms / len(layers))
            stream.enqueue(run)
            return True

        if api == "8.2":
            def set_binding_shape(self, binding, shape):
                return self._set_shape(binding, list(shape))

            def get_binding_shape(self, binding):
                return self._shape(binding)

            @property
            def all_binding_shapes_specified(self):
                return all(-1 not in s for s in self.shapes.values())

            def execute_async_v2(self, bindings, stream_handle):
                if len(bindings) != len(self.engine.io):
                    raise RuntimeError("bindings: expected %d pointers" % len(self.engine.io))
                gpu.log("execute_async_v2")
                return self._enqueue(list(bindings), stream_handle)
        else:
            def set_input_shape(self, name, shape):
                return self._set_shape(self.engine._index(name), list(shape))

            def get_tensor_shape(self, name):
                return self._shape(self.engine._index(name))

            def set_tensor_address(self, name, memory):
                self.addresses[self.engine._index(name)] = int(memory)
                return True

            def execute_async_v3(self, stream_handle):
                missing = [item[0] for i, item in enumerate(self.engine.io) if i not in self.addresses]
                if missing:
                    gpu.log("trt.log", "address not set for %s" % missing)
                    return False
                gpu.log("execute_async_v3")
                return self._enqueue([self.addresses[i] for i in range(len(self.engine.io))], stream_handle)

    return trt
