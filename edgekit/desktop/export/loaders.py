"""SOURCE kinds for ``edgekit export``: what a model comes from, loaded into something exportable.

A registry of kinds, tried in order; each has ``matches(source) -> bool`` and ``load(source, opts) ->
Loaded``:

  checkpoint   an edgekit checkpoint (``best.pt``, format ``edgekit-checkpoint/1``): model + metadata
  torchvision  ``torchvision:NAME`` (random init, or ``--weights FILE`` state_dict; never downloads)
  torchscript  a TorchScript archive (``torch.jit.save``)
  onnx         an ``.onnx`` file (passthrough: re-checked, metadata added, simplified, linted)
  factory      ``package.module:factory``, a callable returning an ``nn.Module``
"""

import importlib
import os
import re
import sys
import zipfile

from edgekit.errors import ExportError, ModelError
from edgekit.fsutil import sha256_file

CHECKPOINT_FORMAT = "edgekit-checkpoint/1"
FACTORY_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class Loaded(object):
    """A loaded source. ``module`` is an ``nn.Module``/ScriptModule (None for ONNX passthrough);
    ``onnx_model`` the ``ModelProto`` for passthrough; ``meta`` a partial metadata dict to start from."""

    def __init__(self, kind, description, module=None, onnx_model=None, meta=None, sha256=None,
                 output_names=None, input_hw=None, default_meta_note=None):
        self.kind = kind
        self.description = description
        self.module = module
        self.onnx_model = onnx_model
        self.meta = dict(meta or {})
        self.sha256 = sha256
        self.output_names = list(output_names or [])
        self.input_hw = input_hw
        self.default_meta_note = default_meta_note


def _need_file(path, what):
    if not os.path.isfile(path):
        raise ModelError("%s not found: %s" % (what, path), hint="check the path")


def _is_torchscript(path):
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in archive.namelist())


# -- checkpoint -----------------------------------------------------------------------------------------
def _match_checkpoint(source):
    return source.endswith((".pt", ".pth", ".ckpt")) and not (os.path.isfile(source) and _is_torchscript(source))


def _load_checkpoint(source, opts):
    _need_file(source, "checkpoint")
    import torch

    try:
        ckpt = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:    # torch raises many types for corrupt or foreign files
        raise ModelError("cannot read %s as an edgekit checkpoint: %s" % (source, _first_line(exc)[:160]),
                         hint="pass an edgekit checkpoint (best.pt), a TorchScript file (torch.jit.save), an .onnx "
                         "file, or package.module:factory with --weights; whole pickled models (torch.save(model)) "
                         "are not loaded, since unpickling them runs arbitrary code")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        kind = "a state_dict" if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ModelError("%s is not an edgekit checkpoint (it holds %s)" % (source, kind),
                         hint="for plain weights use SOURCE torchvision:NAME or package.module:factory "
                         "with --weights %s" % source)
    try:
        from edgekit.desktop.train.models import load_checkpoint
    except ImportError as exc:
        raise ExportError("edgekit checkpoints need edgekit.desktop.train.models (%s)" % exc,
                          hint="install edgekit with the train extra")
    module, ckpt = load_checkpoint(source)
    arch = ckpt.get("arch", {})
    meta = dict(ckpt.get("meta") or {})
    source_info = dict(meta.get("source") or {})
    source_info.update({"kind": "checkpoint", "checkpoint_sha256": sha256_file(source),
                        "arch": arch.get("name"), "epoch": ckpt.get("epoch")})
    meta["source"] = source_info
    shape = (meta.get("input") or {}).get("shape") or []
    hw = (shape[2], shape[3]) if len(shape) == 4 else None
    return Loaded("checkpoint", "edgekit checkpoint %s (%s)" % (os.path.basename(source), arch.get("name")),
                  module=module, meta=meta, sha256=source_info["checkpoint_sha256"],
                  output_names=ckpt.get("output_names"), input_hw=hw)


# -- torchvision ----------------------------------------------------------------------------------------
def _match_torchvision(source):
    return source.startswith("torchvision:")


def _load_torchvision(source, opts):
    import torchvision

    name = source.split(":", 1)[1]
    known = torchvision.models.list_models()
    if name not in known:
        import difflib

        close = difflib.get_close_matches(name, known, n=3)
        raise ModelError("unknown torchvision model %r" % name,
                         hint="did you mean %s?" % " or ".join(close) if close else
                         "see torchvision.models.list_models() for the names")
    if name not in torchvision.models.list_models(module=torchvision.models):
        raise ModelError("torchvision:%s is not an image classifier; torchvision:NAME covers the classifiers" % name,
                         hint="wrap it in a factory (package.module:function) whose forward returns tensors, and "
                         "give task/decoder with --meta")
    kwargs = {"weights": None}
    if opts.get("num_classes"):
        kwargs["num_classes"] = opts["num_classes"]
    try:
        module = torchvision.models.get_model(name, **kwargs)
    except TypeError as exc:
        raise ModelError("torchvision %s cannot be built with %s: %s" % (name, kwargs, exc))
    sha = None
    if opts.get("weights"):
        sha = load_weights(module, opts["weights"])
    meta = {"source": {"kind": "torchvision", "name": name, "torchvision": torchvision.__version__,
                       "weights": os.path.basename(opts["weights"]) if opts.get("weights") else None,
                       "weights_sha256": sha, "framework": "torch"}}
    meta.update(imagenet_defaults())
    note = ("torchvision classifier: preprocessing set to ImageNet mean/std, RGB, stretch to the input "
            "size (override with --meta FILE.yaml)")
    return Loaded("torchvision", "torchvision %s (%s)" % (name, "weights %s" % os.path.basename(opts["weights"])
                                                        if opts.get("weights") else "random init"),
                  module=module, meta=meta, sha256=sha, default_meta_note=note)


def imagenet_defaults():
    from edgekit.meta import IMAGENET_MEAN, IMAGENET_STD

    return {"task": "classification",
            "preprocess": {"color": "RGB", "resize": "stretch", "mean": list(IMAGENET_MEAN),
                           "std": list(IMAGENET_STD)},
            "decoder": {"type": "classification", "top_k": 5}}


def load_weights(module, path):
    """Load a state_dict file into ``module``; mismatched keys are one ModelError listing them."""
    _need_file(path, "weights file")
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:    # corrupt or foreign file
        raise ModelError("cannot read weights %s: %s" % (path, _first_line(exc)),
                         hint="pass a state_dict saved with torch.save(model.state_dict(), FILE)")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError("weights %s hold %s, not a state_dict" % (path, type(state).__name__))
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state)
                    if hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append("missing %d: %s" % (len(missing), _few(missing)))
        if unexpected:
            parts.append("unexpected %d: %s" % (len(unexpected), _few(unexpected)))
        if shapes:
            parts.append("shape mismatch %d: %s" % (len(shapes), _few(
                ["%s %s vs %s" % (k, tuple(state[k].shape), tuple(own[k].shape)) for k in shapes])))
        raise ModelError("weights %s do not match the model (%s)" % (path, "; ".join(parts)),
                         hint="pass weights saved from the same architecture (and --labels with its class count)")
    module.load_state_dict(state)
    return sha256_file(path)


def _few(items, n=6):
    text = ", ".join(items[:n])
    return text + (", ..." if len(items) > n else "")


# -- TorchScript ----------------------------------------------------------------------------------------
def _match_torchscript(source):
    return os.path.isfile(source) and _is_torchscript(source)


def _load_torchscript(source, opts):
    import torch

    try:
        module = torch.jit.load(source, map_location="cpu")
    except Exception as exc:    # torch.jit raises RuntimeError subclasses with long messages
        raise ModelError("cannot load TorchScript %s: %s" % (source, _first_line(exc)))
    if opts.get("weights"):
        raise ExportError("--weights does not apply to a TorchScript file (it carries its weights)")
    sha = sha256_file(source)
    return Loaded("torchscript", "TorchScript %s" % os.path.basename(source), module=module.eval(),
                  meta={"source": {"kind": "torchscript", "file": os.path.basename(source), "sha256": sha,
                                   "framework": "torch"}}, sha256=sha)


# -- ONNX passthrough -----------------------------------------------------------------------------------
def _match_onnx(source):
    return source.endswith(".onnx")


def _load_onnx(source, opts):
    _need_file(source, "ONNX model")
    import onnx

    from edgekit.meta import META_KEY

    try:
        model = onnx.load(source)
    except Exception as exc:    # protobuf DecodeError and friends
        raise ModelError("%s is not a valid ONNX file: %s" % (source, _first_line(exc)),
                         hint="check that the copy is complete")
    if opts.get("weights"):
        raise ExportError("--weights does not apply to an ONNX file (it carries its weights)")
    meta = {}
    for prop in model.metadata_props:
        if prop.key == META_KEY:
            import json

            meta = json.loads(prop.value)
    sha = sha256_file(source)
    info = dict(meta.get("source") or {})
    info.update({"kind": "onnx", "file": os.path.basename(source), "sha256": sha,
                 "producer": "%s %s" % (model.producer_name, model.producer_version)})
    meta["source"] = info
    return Loaded("onnx", "ONNX %s" % os.path.basename(source), onnx_model=model, meta=meta, sha256=sha)


# -- package.module:factory -----------------------------------------------------------------------------
def _match_factory(source):
    return bool(FACTORY_RE.match(source)) and not os.path.exists(source)


def _load_factory(source, opts):
    import torch

    module_name, attr = source.split(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())         # like `python -m`: the current directory is importable
    try:
        mod = importlib.import_module(module_name)
    except Exception as exc:    # ImportError, or anything the user's module raises while importing
        raise ModelError("cannot import %s: %s: %s" % (module_name, type(exc).__name__, _first_line(exc)),
                         hint="fix the module, or run from the directory that contains it")
    factory = getattr(mod, attr, None)
    if factory is None or not callable(factory):
        raise ModelError("%s has no callable %r" % (module_name, attr),
                         hint="SOURCE is package.module:function, the function returning an nn.Module")
    try:
        module = factory()
    except Exception as exc:    # the user's code
        raise ModelError("%s() failed: %s: %s" % (source, type(exc).__name__, _first_line(exc)))
    if not isinstance(module, torch.nn.Module):
        raise ModelError("%s() returned %s, not a torch.nn.Module" % (source, type(module).__name__),
                         hint="make the factory return the model instance")
    sha = None
    if opts.get("weights"):
        sha = load_weights(module, opts["weights"])
    file = getattr(mod, "__file__", None)
    return Loaded("factory", "%s()" % source, module=module, sha256=sha or (sha256_file(file) if file else None),
                  meta={"source": {"kind": "factory", "factory": source, "framework": "torch",
                                   "weights_sha256": sha,
                                   "module_sha256": sha256_file(file) if file else None}})


KINDS = (
    ("torchvision", _match_torchvision, _load_torchvision),
    ("onnx", _match_onnx, _load_onnx),
    ("torchscript", _match_torchscript, _load_torchscript),
    ("checkpoint", _match_checkpoint, _load_checkpoint),
    ("factory", _match_factory, _load_factory),
)


def kind_of(source):
    for name, match, _ in KINDS:
        if match(source):
            return name
    return None


def load_source(source, **opts):
    """Load SOURCE (see module doc). ``opts``: weights, num_classes. Raises ModelError/ExportError."""
    source = os.fspath(source)
    for _name, match, load in KINDS:
        if match(source):
            return load(source, opts)
    if not os.path.exists(source) and ("/" in source or "." in os.path.basename(source)):
        raise ModelError("model file not found: %s" % source, hint="check the path")
    raise ModelError("cannot tell what kind of model %r is" % source,
                     hint="pass an edgekit checkpoint (.pt), torchvision:NAME, package.module:factory, "
                     "a TorchScript file or an .onnx file")


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
