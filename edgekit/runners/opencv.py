"""OpenCV DNN runner (``cv2.dnn``): ONNX on the CPU with nothing but OpenCV installed.

    with open_runner("opencv", "model.onnx") as runner:
        outputs = runner.infer({"images": tensor})

Useful where neither TensorRT nor ONNX Runtime is installed (a stock JetPack board has cv2). Input
and output names and shapes are read from the ONNX file itself with the pure-Python protobuf reader
of ``edgekit.meta`` (cv2.dnn does not report them). Options: ``threads`` (cv2.setNumThreads),
``target`` ("cpu" | "cuda" | "cuda_fp16": the CUDA backend needs an OpenCV built with CUDA, which
JetPack 4.6's is not).
"""

from edgekit.errors import BackendUnavailable, ConfigError, ModelError
from edgekit.runners.base import Runner, TensorSpec

# ONNX TensorProto.DataType -> numpy name
ONNX_TYPES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 9: "bool", 10: "float16", 11: "float64"}
TARGETS = ("cpu", "cuda", "cuda_fp16")


def _cv2():
    try:
        import cv2
    except ImportError:
        from edgekit.runners import install_hint

        raise BackendUnavailable("OpenCV (cv2) is not installed", hint=install_hint("opencv"))
    if not hasattr(cv2, "dnn"):
        raise BackendUnavailable("this OpenCV has no dnn module", hint="install an OpenCV build with dnn")
    return cv2


def _value_info(buf, fields):
    """ValueInfoProto -> (name, elem_type, [dims: int or str])."""
    name, elem, dims = None, 1, []
    for number, wire, value in fields(buf):
        if number == 1 and wire == 2:
            name = bytes(value).decode("utf-8")
        elif number == 2 and wire == 2:                       # TypeProto
            for tn, tw, tv in fields(value):
                if tn == 1 and tw == 2:                       # tensor_type
                    for sn, sw, sv in fields(tv):
                        if sn == 1 and sw == 0:
                            elem = sv
                        elif sn == 2 and sw == 2:             # TensorShapeProto
                            dims = _dims(sv, fields)
    return name, elem, dims


def _dims(buf, fields):
    dims = []
    for number, wire, value in fields(buf):
        if number == 1 and wire == 2:                         # Dimension
            dim = "?"
            for dn, dw, dv in fields(value):
                if dn == 1 and dw == 0:
                    dim = dv
                elif dn == 2 and dw == 2:
                    dim = bytes(dv).decode("utf-8") or "?"
            dims.append(dim)
    return dims


def onnx_io(path):
    """(inputs, outputs) of an ONNX graph as TensorSpecs, without the onnx package."""
    from edgekit.meta import proto_fields

    with open(path, "rb") as handle:
        data = memoryview(handle.read())
    inputs, outputs, initializers = [], [], set()
    try:
        for number, wire, value in proto_fields(data):
            if number != 7 or wire != 2:                      # ModelProto.graph
                continue
            for gn, gw, gv in proto_fields(value):
                if gw != 2:
                    continue
                if gn == 5:                                   # initializer: TensorProto.name = 8
                    for tn, tw, tv in proto_fields(gv):
                        if tn == 8 and tw == 2:
                            initializers.add(bytes(tv).decode("utf-8"))
                elif gn in (11, 12):
                    (inputs if gn == 11 else outputs).append(_value_info(gv, proto_fields))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError("%s is not a valid ONNX file (%s)" % (path, exc), hint="check that the copy is complete")

    def spec(item):
        name, elem, dims = item
        return TensorSpec(name, dims, ONNX_TYPES.get(elem, "float32"))
    return [spec(i) for i in inputs if i[0] not in initializers], [spec(o) for o in outputs]


def _cv_message(exc):
    """The last 'error: ...' of an OpenCV exception, without its source location."""
    lines = [line for line in str(exc).splitlines() if "error:" in line] or [str(exc).strip() or "unknown error"]
    return lines[-1].split("error:")[-1].strip()


class OpenCVRunner(Runner):
    name = "opencv"

    @staticmethod
    def available():
        try:
            _cv2()
        except BackendUnavailable:
            return False
        return True

    def activate(self):
        cv2 = _cv2()
        target = self.options.get("target", "cpu")
        if target not in TARGETS:
            raise ConfigError("unknown OpenCV target %r" % target, hint="use one of: %s" % ", ".join(TARGETS))
        path = str(self.model_path)
        if not path.endswith(".onnx"):
            raise ModelError("the opencv backend runs ONNX files, not %s" % path,
                             hint="use --backend tensorrt for engines")
        self._inputs, self._outputs = onnx_io(path)
        for spec in self._inputs:
            if spec.dtype.kind != "f":
                raise ModelError("cv2.dnn feeds float inputs; %s is %s" % (spec.name, spec.dtype),
                                 hint="use --backend onnxruntime for this model")
        try:
            self.net = cv2.dnn.readNetFromONNX(path)
        except cv2.error as exc:
            raise ModelError("OpenCV %s cannot load %s: %s" % (cv2.__version__, path, _cv_message(exc)),
                             hint="use --backend onnxruntime, or re-export with a lower opset")
        if target != "cpu":
            self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_CUDA)
            self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CUDA if target == "cuda" else cv2.dnn.DNN_TARGET_CUDA_FP16)
        if self.options.get("threads"):
            cv2.setNumThreads(int(self.options["threads"]))
        self._names = [o.name for o in self._outputs]

    def deactivate(self):
        self.net = None

    def infer_impl(self, feed):
        for name, array in feed.items():
            self.net.setInput(array, name)
        values = self.net.forward(self._names)
        return dict(zip(self._names, values))

    def describe(self):
        cv2 = _cv2()
        return {"backend": self.name, "version": cv2.__version__, "target": self.options.get("target", "cpu"),
                "threads": self.options.get("threads") or cv2.getNumThreads()}
