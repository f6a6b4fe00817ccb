"""ONNX Runtime runner: CPU provider; CUDA and TensorRT execution providers when present."""

from edgekit.errors import BackendUnavailable, ConfigError, ModelError
from edgekit.runners.base import Runner, TensorSpec

ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


def _ort():
    try:
        import onnxruntime
    except ImportError:
        from edgekit.runners import install_hint

        raise BackendUnavailable("onnxruntime is not installed", hint=install_hint("onnxruntime"))
    return onnxruntime


class OnnxRuntimeRunner(Runner):
    """Options: ``providers`` (list of cpu/cuda/tensorrt, default: cpu), ``threads`` (intra-op;
    None = ORT's default), ``spinning`` (bool), ``profile`` (bool: ORT's per-node profiler),
    ``graph_optimization`` ("all"|"basic"|"extended"|"disable"), ``session_config`` (dict of ONNX
    Runtime session config entries, e.g. {"session.force_spinning_stop": "1"}; versions that do not
    know a key ignore it)."""

    name = "onnxruntime"
    concurrent = True          # InferenceSession.run may be called from several threads at once

    @staticmethod
    def available():
        try:
            _ort()
        except BackendUnavailable:
            return False
        return True

    def activate(self):
        ort = _ort()
        opts = ort.SessionOptions()
        threads = self.options.get("threads")
        if threads:
            opts.intra_op_num_threads = int(threads)
        spinning = self.options.get("spinning")
        if spinning is not None:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        for key, value in sorted((self.options.get("session_config") or {}).items()):
            opts.add_session_config_entry(str(key), str(value))
        level = self.options.get("graph_optimization", "all")
        opts.graph_optimization_level = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }[level]
        if self.options.get("profile"):
            opts.enable_profiling = True
            if self.options.get("profile_prefix"):
                opts.profile_file_prefix = self.options["profile_prefix"]
        opts.log_severity_level = 3
        wanted = self.options.get("providers") or ["cpu"]
        available = ort.get_available_providers()
        providers = []
        for key in wanted:
            provider = PROVIDERS.get(key, key)
            if provider not in available:
                raise BackendUnavailable(
                    "ONNX Runtime here has no %s (it has %s)" % (provider, ", ".join(available)),
                    hint="install onnxruntime-gpu for cuda/tensorrt, or use --providers cpu")
            providers.append(provider)
        try:
            self.session = ort.InferenceSession(str(self.model_path), sess_options=opts, providers=providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/NoSuchFile types
            raise ModelError("ONNX Runtime cannot load %s: %s" % (self.model_path, str(exc).splitlines()[0]),
                             hint="check that the file is a complete ONNX model (edgekit inspect)")
        self._inputs = [TensorSpec(i.name, [d if isinstance(d, int) else (d or "?") for d in i.shape],
                                   ORT_TYPES.get(i.type, "float32")) for i in self.session.get_inputs()]
        self._outputs = [TensorSpec(o.name, [d if isinstance(d, int) else (d or "?") for d in o.shape],
                                    ORT_TYPES.get(o.type, "float32")) for o in self.session.get_outputs()]
        self._output_names = [o.name for o in self._outputs]

    def deactivate(self):
        self.session = None

    def infer_impl(self, feed):
        values = self.session.run(self._output_names, feed)
        return dict(zip(self._output_names, values))

    def end_profiling(self):
        """Stop ORT's profiler; returns the path of its JSON trace."""
        return self.session.end_profiling()

    def describe(self):
        ort = _ort()
        info = {"backend": self.name, "version": ort.__version__,
                "providers": list(self.session.get_providers()) if getattr(self, "session", None) else None,
                "threads": self.options.get("threads") or "default"}
        return info


def parse_providers(text):
    items = [p.strip() for p in str(text).split(",") if p.strip()]
    for item in items:
        if item not in PROVIDERS:
            raise ConfigError("unknown execution provider %r" % item, hint="use cpu, cuda or tensorrt")
    return items
