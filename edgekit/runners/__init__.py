"""Runner registry: backends chosen by name, imported only when used.

    with open_runner("onnxruntime", "model.onnx") as runner:
        outputs = runner.infer({"images": tensor})
"""

import importlib
import os

from edgekit.errors import BackendUnavailable, ConfigError

RUNNERS = {
    "onnxruntime": "edgekit.runners.onnxruntime:OnnxRuntimeRunner",
    "tensorrt": "edgekit.runners.tensorrt:TensorRTRunner",
    "opencv": "edgekit.runners.opencv:OpenCVRunner",
}

# What each backend needs, and how to get it, per platform.
INSTALL_HINTS = {
    "onnxruntime": "pip install onnxruntime (desktop GPU: onnxruntime-gpu; Jetson: NVIDIA's Jetson Zoo wheel "
                   "for your JetPack)",
    "tensorrt": "on a Jetson: sudo apt install python3-libnvinfer (part of JetPack) and build pycuda "
                "(jetson/setup.sh); on a desktop: pip install 'edgekit[tensorrt]'",
    "opencv": "pip install opencv-python-headless (on a Jetson use JetPack's python3-opencv)",
}


def runner_class(name):
    try:
        target = RUNNERS[name]
    except KeyError:
        raise ConfigError("unknown backend %r" % (name,), hint="choose one of: auto, %s" % ", ".join(sorted(RUNNERS)))
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def backend_available(name):
    """True when the backend's libraries import here."""
    try:
        return runner_class(name).available()
    except BackendUnavailable:
        return False


def choose_backend(name, model_path):
    """Resolve ``auto``: an engine file needs tensorrt; an ONNX file prefers tensorrt when present,
    else onnxruntime, else opencv. Returns (backend, reason)."""
    if name != "auto":
        return name, "asked for"
    ext = os.path.splitext(str(model_path))[1].lower()
    if ext in (".engine", ".plan", ".trt"):
        return "tensorrt", "a TensorRT engine file"
    for candidate in ("tensorrt", "onnxruntime", "opencv"):
        if backend_available(candidate):
            return candidate, "first available of tensorrt, onnxruntime, opencv"
    raise BackendUnavailable("no inference backend is installed",
                             hint=INSTALL_HINTS["onnxruntime"])


def open_runner(name, model_path, **options):
    """Build (not yet activate) a runner by name; ``auto`` picks one and says which."""
    if not os.path.exists(str(model_path)):
        from edgekit.errors import ModelError

        raise ModelError("model file not found: %s" % model_path, hint="check the path")
    backend, _reason = choose_backend(name, model_path)
    cls = runner_class(backend)
    if not cls.available():
        raise BackendUnavailable("backend %s is not installed here" % backend, hint=INSTALL_HINTS[backend])
    return cls(model_path, **options)
