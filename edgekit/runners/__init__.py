"""Runner registry: backends chosen by name, imported only when used.

    with open_runner("onnxruntime", "model.onnx") as runner:
        outputs = runner.infer({"images": tensor})

``BACKENDS`` is the one list of backends: the CLI's ``--backend`` choices, the daemon config's
``model.backend``, the ``auto`` preference order (registration order) and which model files need
which backend (``files``) all come from it. A backend is one ``BACKENDS.register`` call here plus
its module.
"""

import os

from edgekit.errors import BackendUnavailable, ConfigError
from edgekit.registry import Registry

AUTO = "auto"
BACKENDS = Registry("backend", unknown=ConfigError, unavailable=BackendUnavailable, extra=(AUTO,))

# Registration order is the order ``auto`` tries them in. ``hint``: what the backend needs and how
# to get it, per platform; ``files``: model file extensions only this backend runs.
BACKENDS.register(
    "tensorrt", "edgekit.runners.tensorrt:TensorRTRunner", files=(".engine", ".plan", ".trt"),
    file_kind="a TensorRT engine file",
    hint="on a Jetson: sudo apt install python3-libnvinfer (part of JetPack) and build pycuda "
         "(jetson/setup.sh); on a desktop: pip install 'edgekit[tensorrt]'")
BACKENDS.register(
    "onnxruntime", "edgekit.runners.onnxruntime:OnnxRuntimeRunner",
    hint="pip install onnxruntime (desktop GPU: onnxruntime-gpu; Jetson: NVIDIA's Jetson Zoo wheel "
         "for your JetPack)")
BACKENDS.register(
    "opencv", "edgekit.runners.opencv:OpenCVRunner",
    hint="pip install opencv-python-headless (on a Jetson use JetPack's python3-opencv)")


def names():
    """Every backend, in ``auto``'s preference order."""
    return BACKENDS.names()


def choices():
    """What ``--backend`` / ``model.backend`` accept: ``auto`` and every backend."""
    return BACKENDS.choices()


def install_hint(name):
    return BACKENDS.get(name, "hint")


def runner_class(name):
    return BACKENDS.load(name)


def backend_available(name):
    """True when the backend's module and libraries import here."""
    try:
        return bool(runner_class(name).available())
    except BackendUnavailable:
        return False


def choose_backend(name, model_path):
    """Resolve ``auto``: a file only one backend runs (a TensorRT engine) picks it; anything else
    takes the first available backend in preference order (tensorrt, onnxruntime, opencv).
    Returns (backend, reason)."""
    if name != AUTO:
        return name, "asked for"
    ext = os.path.splitext(str(model_path))[1].lower()
    for backend in BACKENDS:
        if ext in BACKENDS.get(backend, "files", ()):
            return backend, BACKENDS.get(backend, "file_kind") or "a %s file" % ext
    order = names()
    for candidate in order:
        if backend_available(candidate):
            return candidate, "auto: first available of %s" % ", ".join(order)
    raise BackendUnavailable("no inference backend is installed", hint=install_hint("onnxruntime"))


def open_runner(name, model_path, **options):
    """Build (not yet activate) a runner by name; ``auto`` picks one and says which."""
    if not os.path.exists(str(model_path)):
        from edgekit.errors import ModelError

        raise ModelError("model file not found: %s" % model_path, hint="check the path")
    backend, _reason = choose_backend(name, model_path)
    cls = runner_class(backend)
    if not cls.available():
        raise BackendUnavailable("backend %s is not installed here" % backend, hint=install_hint(backend))
    return cls(model_path, **options)
