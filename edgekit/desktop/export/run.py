"""``edgekit export``: any PyTorch model (or ONNX file) to a TensorRT-ready, self-describing ONNX file.

Steps (each a function below): load the SOURCE (``sources.py``) → fix the input shape → run the model
eagerly once (a failure names the module) → export with the TorchScript-based exporter at the target's
opset (a failure names the op and the opset it needs) → simplify with onnxslim (constant folding,
fusions; node counts before/after) → ``onnx.checker`` full check and strict shape inference → parity
against PyTorch on several inputs (``parity.py``) → offline TensorRT lint (``lint.py``) → embed the
``edgekit`` metadata → write atomically. Nothing is written unless every step passed.

``export_model(...)`` is the API (docs/desktop/export.md); it returns the report dict that ``--json`` prints.
"""

import contextlib
import io
import json
import os
import re
import time
import warnings

from edgekit.errors import ConfigError, ExportError, LintError, MetadataError, ModelError
from edgekit.fsutil import atomic_write_bytes
from edgekit.progress import say
from edgekit.targets import get_target

INPUT_NAME = "images"
DEFAULT_HW = 224
PARITY_INPUTS = 3


# -- arguments --------------------------------------------------------------------------------------------
def parse_input_size(value):
    """224, "224", "224x320", (224, 320) -> (H, W); None stays None (one parser, shared with the device side)."""
    from edgekit.inputsize import parse_input_size as parse

    return parse(value)


def parse_batch(value):
    """1, "4", "dynamic" -> int or "dynamic"."""
    if value in (None, ""):
        return 1
    if str(value).lower() == "dynamic":
        return "dynamic"
    try:
        batch = int(value)
    except (TypeError, ValueError):
        batch = 0
    if batch < 1:
        raise ConfigError("bad --batch %r" % (value,), hint="use a positive integer or 'dynamic'")
    return batch


def read_labels(path):
    """One label per line (blank lines skipped), or a JSON/YAML list."""
    if path is None:
        return None
    if isinstance(path, (list, tuple)):
        return [str(x) for x in path]
    if not os.path.isfile(path):
        raise ConfigError("labels file not found: %s" % path, hint="check the path")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if path.endswith((".json", ".yaml", ".yml")):
        import yaml

        try:
            data = yaml.safe_load(text)         # JSON is YAML
        except yaml.YAMLError as exc:
            raise ConfigError("labels file %s is not valid JSON/YAML: %s" % (path, str(exc).splitlines()[0]))
        if isinstance(data, dict):
            data = data.get("names") or data.get("labels")
            if isinstance(data, dict):
                data = [data[k] for k in sorted(data)]
        if not isinstance(data, list):
            raise ConfigError("labels file %s must hold a list (or names: [...])" % path)
        labels = [str(x) for x in data]
    else:
        labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise ConfigError("labels file %s is empty" % path)
    return labels


def _meta_overrides(value):
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    from edgekit.yamlfile import load_yaml

    data = load_yaml(value)
    if not isinstance(data, dict):
        raise ConfigError("--meta %s must be a mapping of metadata fields" % value,
                          hint="fields: task, labels, preprocess, decoder (see the README)")
    return data


def _merge(base, over):
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# -- tracing with module names ----------------------------------------------------------------------------
@contextlib.contextmanager
def module_tracker(root):
    """Track which submodule is running, so a failure can name it. Yields a list (the stack)."""
    import torch

    names = dict((id(m), name or type(root).__name__) for name, m in root.named_modules())
    stack = []

    def pre(module, args):
        stack.append(module)

    def post(module, args, output):
        if stack and stack[-1] is module:
            stack.pop()

    h1 = torch.nn.modules.module.register_module_forward_pre_hook(pre)
    h2 = torch.nn.modules.module.register_module_forward_hook(post)
    tracker = {"stack": stack, "names": names}
    try:
        yield tracker
    finally:
        h1.remove()
        h2.remove()


def _where(tracker, exc, log_text=""):
    """'module layer1.0.conv1 (Conv2d)': the innermost module running, or the scope torch logged for the op."""
    for module in reversed(tracker["stack"]):
        if id(module) in tracker["names"]:
            return "module %s (%s)" % (tracker["names"][id(module)], type(module).__name__)
    op = re.search(r"operator '([^']+)'", str(exc))
    for line in (log_text or "").splitlines():
        if op and op.group(1) + "(" in line:
            scope = re.search(r"scope: (\S+)", line)
            if scope:
                last = scope.group(1).split("/")[-1]
                cls, _, name = last.partition("::")
                if name:
                    return "module %s (%s)" % (name, cls.split(".")[-1])
    return "the model's forward"


@contextlib.contextmanager
def _capture_stdout_fd():
    """Capture what C++ code writes to fd 1 (torch logs its graph there on export errors), keeping
    stdout clean for --json. Yields a dict whose "text" is filled on exit."""
    import sys
    import tempfile

    captured = {"text": ""}
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            yield captured
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            captured["text"] = tmp.read().decode("utf-8", "replace")


def _first_line(exc):
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0].strip() if lines else type(exc).__name__


def run_eager(module, x):
    """One forward pass under no_grad; a failure is a ModelError naming the module."""
    import torch

    with module_tracker(module) as tracker, torch.no_grad():
        try:
            return module(x)
        except Exception as exc:     # the user's model code
            raise ModelError("the model fails on a %s input in %s: %s: %s" % (
                "x".join(map(str, x.shape)), _where(tracker, exc), type(exc).__name__, _first_line(exc)),
                hint="check --input-size (and the model's expected channels)")


_OPSET_RE = re.compile(r"operator '([^']+)' to ONNX opset version (\d+) is not supported\. "
                       r"Support for this operator was added in version (\d+)")


def torch_to_onnx(module, x, opset, output_names, dynamic):
    """Export with torch.onnx's TorchScript-based exporter (dynamo=False: it handles opsets below 18)."""
    import torch

    dynamic_axes = None
    if dynamic:
        dynamic_axes = dict((name, {0: "batch"}) for name in [INPUT_NAME] + list(output_names))
    buffer = io.BytesIO()
    failure = None
    with module_tracker(module) as tracker, warnings.catch_warnings(), _capture_stdout_fd() as log:
        warnings.simplefilter("ignore")      # legacy-exporter deprecation and tracer warnings
        try:
            torch.onnx.export(module, (x,), buffer, opset_version=opset, input_names=[INPUT_NAME],
                              output_names=list(output_names), dynamic_axes=dynamic_axes,
                              do_constant_folding=True, dynamo=False)
        except Exception as exc:     # torch raises RuntimeError/OnnxExporterError/SymbolicValueError...
            failure = exc
            stack = list(tracker["stack"])
    if failure is not None:
        tracker["stack"] = stack
        raise _export_error(failure, opset, tracker, log["text"])
    return buffer.getvalue()


def _export_error(exc, opset, tracker, log_text=""):
    match = _OPSET_RE.search(str(exc))
    if match:
        return ExportError("%s in %s needs ONNX opset %s; the target allows at most %d" % (
            match.group(1), _where(tracker, exc, log_text), match.group(3), opset),
            hint="replace that op in the model, or export for a target whose TensorRT parses opset %s"
            % match.group(3))
    unsupported = re.search(r"Exporting the operator '([^']+)' to ONNX opset version (\d+) is not supported",
                            str(exc))
    if unsupported:
        return ExportError("%s cannot be exported to ONNX (opset %s) in %s" % (
            unsupported.group(1), unsupported.group(2), _where(tracker, exc, log_text)),
            hint="rewrite that part with standard torch ops")
    return ModelError("the model failed to trace for ONNX export in %s: %s: %s" % (
        _where(tracker, exc, log_text), type(exc).__name__, _first_line(exc)),
        hint="keep forward() to tensor ops with tensor (or tuple/dict of tensor) outputs")


# -- ONNX passes ------------------------------------------------------------------------------------------
def count_nodes(model):
    return len(model.graph.node)


def slim_model(model):
    """onnxslim: constant folding, dead-code removal, fusions. Returns the new ModelProto."""
    import onnxslim

    with warnings.catch_warnings(), _quiet_stdout():
        warnings.simplefilter("ignore")
        try:
            slimmed = onnxslim.slim(model)
        except Exception as exc:    # a simplifier bug must not look like a model problem
            raise ExportError("onnxslim failed on this model: %s: %s" % (type(exc).__name__, _first_line(exc)),
                              hint="retry with --no-simplify")
    if slimmed is None:
        raise ExportError("onnxslim returned no model", hint="retry with --no-simplify")
    return slimmed


@contextlib.contextmanager
def _quiet_stdout():
    import sys

    saved = sys.stdout
    sys.stdout = io.StringIO()
    try:
        yield
    finally:
        sys.stdout = saved


def check_model(model):
    """onnx.checker full check + strict shape inference; an ExportError on failure."""
    import onnx

    try:
        onnx.checker.check_model(model, full_check=True)
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError("the ONNX model fails onnx.checker/shape inference: %s" % _first_line(exc),
                          hint="re-run with --no-simplify to see whether simplification caused it")


def convert_opset(model, opset, note=None):
    """Passthrough ONNX above the target's opset: convert it down (edgekit.desktop.export.opset: ONNX's version
    converter, else a per-op table), or an ExportError naming the op and opset that block it."""
    from edgekit.desktop.export.opset import convert

    converted, notes = convert(model, opset)
    for text in notes:
        (note or (lambda _text: None))(text)
    return converted


def input_spec(model):
    """(name, dims) of the first real graph input."""
    from edgekit.desktop.export.lint import dims_of

    initializers = set(i.name for i in model.graph.initializer)
    for inp in model.graph.input:
        if inp.name not in initializers:
            return inp.name, dims_of(inp.type) or []
    raise ModelError("the ONNX model has no inputs")


# -- metadata ---------------------------------------------------------------------------------------------
def build_meta(base, overrides, labels, input_name, shape, target, output_dims, note_sink):
    """Merge the source's metadata, --meta and flags into a validated ModelMeta."""
    from edgekit.meta import ModelMeta

    data = _merge(base, overrides)
    if labels is not None:
        data["labels"] = labels
    data.setdefault("task", "classification")
    if "preprocess" not in data:
        from edgekit.desktop.export.loaders import imagenet_defaults

        data["preprocess"] = imagenet_defaults()["preprocess"]
        note_sink("no preprocessing given: assuming ImageNet mean/std, RGB, stretch (set it with --meta FILE.yaml)")
    if "decoder" not in data and data["task"] == "classification":
        data["decoder"] = {"type": "classification", "top_k": 5}
    if not data.get("labels") and data["task"] == "classification" and output_dims:
        classes = output_dims[-1] if isinstance(output_dims[-1], int) else None
        if classes:
            data["labels"] = ["class_%d" % i for i in range(classes)]
            note_sink("no labels given: naming the %d classes class_0..class_%d (pass --labels FILE)"
                      % (classes, classes - 1))
    if data["task"] == "classification" and data.get("labels") and output_dims and isinstance(output_dims[-1], int) \
            and len(data["labels"]) != output_dims[-1]:
        raise MetadataError("%d labels given but the model outputs %d classes" % (
            len(data["labels"]), output_dims[-1]), hint="pass a labels file with one name per class")
    channels = (data.get("input") or {}).get("shape", [None, 3])[1]
    data["input"] = {"name": input_name, "shape": [shape[0], channels or 3, shape[2], shape[3]],
                     "layout": "NCHW", "dtype": "float32"}
    data["precision"] = "fp32"
    data["target"] = target.name
    from edgekit import __version__

    data["edgekit_version"] = __version__
    return ModelMeta.from_dict(data)


def precheck_meta(base, overrides, labels, target):
    """Validate the metadata fields before the (slow) export; labels and shapes are settled later."""
    merged = _merge(base, overrides)
    build_meta(base, overrides, labels or merged.get("labels") or ["?"], INPUT_NAME, [1, 3, 8, 8], target, None,
               lambda text: None)


# -- the pipeline -----------------------------------------------------------------------------------------
def export_model(source, out, target="jetson-nano", input_size=None, batch=1, opset=None, weights=None,
                 labels=None, simplify=True, meta_overrides=None, strict=False, tolerance=None, log=say):
    """Export SOURCE to ``out`` (see module doc). Returns the report dict. Raises UserError subclasses."""
    from edgekit.desktop.export import parity
    from edgekit.desktop.export.loaders import load_source
    from edgekit.fsutil import sha256_bytes
    from edgekit.meta import attach_to_onnx

    started = time.perf_counter()
    target = get_target(target)
    opset = int(opset or target.max_opset)
    if opset < 7:
        raise ConfigError("opset %d is too old" % opset, hint="use 11 or newer")
    if target.max_opset and opset > target.max_opset:
        raise ConfigError("--opset %d is above what %s parses (at most %d%s)" % (
            opset, target.name, target.max_opset, ", TensorRT %s" % target.tensorrt if target.tensorrt else ""),
            hint="leave --opset out (the target's maximum is used) or choose another --target")
    hw = parse_input_size(input_size)
    batch = parse_batch(batch)
    labels = read_labels(labels)
    overrides = _meta_overrides(meta_overrides)
    tol = parity.tolerance_for("fp32", tolerance)
    out = os.fspath(out)
    if not out.endswith(".onnx"):
        raise ConfigError("--out must name an .onnx file, got %s" % out)
    notes = []

    def note(text):
        notes.append(text)
        log(text)

    loaded = load_source(source, weights=weights, num_classes=len(labels) if labels else None)
    log("source: %s" % loaded.description)
    precheck_meta(loaded.meta, overrides, labels, target)
    if loaded.default_meta_note and "preprocess" not in overrides:
        note(loaded.default_meta_note)
    convert = _from_onnx if loaded.onnx_model is not None else _from_torch
    model, reference, shape, input_name = convert(loaded, hw, batch, opset, note)
    from edgekit.desktop.export.lint import opset_of

    opset = opset_of(model) or opset          # an ONNX source below the target's opset keeps its own
    raw_nodes = count_nodes(model)
    log("exported at opset %d: %d nodes" % (opset, raw_nodes))
    if simplify:
        model = slim_model(model)
        log("simplified with onnxslim: %d -> %d nodes" % (raw_nodes, count_nodes(model)))
    check_model(model)
    stats, parity_inputs = verify_parity(model, reference, shape, batch == "dynamic", input_name, tol, log, note)
    lint = lint_step(model, target, strict, log)

    output_dims = [s["shape"] for s in stats.values()][0] if stats else None
    meta = build_meta(loaded.meta, overrides, labels, input_name,
                      ["batch" if batch == "dynamic" else shape[0]] + list(shape[1:]), target, output_dims, note)
    meta.extra["export"] = {"opset": opset, "simplified": bool(simplify), "nodes_before": raw_nodes,
                            "nodes_after": count_nodes(model), "tool": _tool_versions(),
                            "parity": dict((n, {"max_abs": s["max_abs"], "cosine": s["cosine"]})
                                           for n, s in stats.items())}
    attach_to_onnx(model, meta)
    data = model.SerializeToString()
    atomic_write_bytes(out, data)
    log("wrote %s (%.1f MiB)" % (out, len(data) / 2.0 ** 20))
    return {
        "path": out, "source": os.fspath(source), "kind": loaded.kind, "target": target.name, "opset": opset,
        "input": {"name": input_name, "shape": meta.input["shape"]},
        "outputs": dict((n, s["shape"]) for n, s in stats.items()),
        "nodes_before": raw_nodes, "nodes_after": count_nodes(model), "simplified": bool(simplify),
        "parity": dict((n, {"max_abs": s["max_abs"], "max_rel": s["max_rel"], "cosine": s["cosine"]})
                       for n, s in stats.items()),
        "parity_inputs": parity_inputs, "parity_reference": reference.what, "tolerance": tol, "lint": lint,
        "meta": meta.to_dict(), "notes": notes, "sha256": sha256_bytes(data), "bytes": len(data),
        "seconds": round(time.perf_counter() - started, 3),
    }


class Reference(object):
    """What the exported model is compared with: ``run(inputs) -> [{output: array}]`` and a description.
    ``optional``: when the reference itself cannot run (an ONNX source with ops ONNX Runtime lacks), parity
    is skipped, and said so; otherwise that is an error."""

    def __init__(self, run, what, optional=False):
        self.run = run
        self.what = what
        self.optional = optional


def verify_parity(model, reference, shape, dynamic, input_name, tol, log, note=None):
    """Parity on PARITY_INPUTS seeded inputs (plus one at batch 2 when the batch is dynamic).
    Returns (stats per output, number of inputs); raises ParityError listing every failing output."""
    from edgekit.desktop.export import parity

    inputs = parity.make_inputs(shape, PARITY_INPUTS, seed=0)
    if dynamic:
        inputs += parity.make_inputs([2] + list(shape[1:]), 1, seed=1)
    try:
        expected = reference.run(inputs)
    except parity.OnnxRuntimeUnavailable as exc:
        if not reference.optional:
            raise
        (note or log)("parity skipped: %s (the source model cannot be run here, so there is nothing to "
                      "compare)" % exc.message)
        return {}, 0
    candidate = parity.run_onnx(model.SerializeToString(), inputs, input_name)
    stats = parity.check(parity.compare(expected, candidate, tol), tol, reference.what)
    for name, s in stats.items():
        log("parity %s: max_abs %.3g, max_rel %.3g, cosine %.6f over %d inputs" % (
            name, s["max_abs"], s["max_rel"], s["cosine"], len(inputs)))
    return stats, len(inputs)


def lint_step(model, target, strict, log):
    """Lint for the target, print the problems; with ``strict`` any problem is a LintError."""
    from edgekit.desktop.export.lint import format_problems, lint_model, summary_line

    lint = lint_model(model, target)
    log(summary_line(lint))
    for line in format_problems(lint):
        log(line)
    if strict and lint["problems"]:
        raise LintError("--strict: %d lint problem(s) for %s: %s" % (
            len(lint["problems"]), target.name, "; ".join("%s [%s] %s" % (p["node"], p["op"], p["reason"])
                                                          for p in lint["problems"][:5])),
            hint="fix them (see each problem's fix) or drop --strict; nothing was written")
    return lint


def _tool_versions():
    versions = {}
    for name in ("torch", "onnx", "onnxslim"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            pass
    return versions


def _from_torch(loaded, hw, batch, opset, log):
    """Eager run + export. Returns (ModelProto, Reference (the PyTorch module), input shape, input name)."""
    import onnx
    import torch

    module = loaded.module
    if not isinstance(module, torch.jit.ScriptModule):
        module = module.eval()
    if hw is None:
        hw = loaded.input_hw
    if hw is None:
        hw = (DEFAULT_HW, DEFAULT_HW)
        log("no --input-size given: using %dx%d" % hw)
    channels = ((loaded.meta.get("input") or {}).get("shape") or [1, 3])[1]
    shape = [1 if batch == "dynamic" else batch, channels if isinstance(channels, int) else 3, hw[0], hw[1]]
    x = torch.zeros(shape).normal_(generator=torch.Generator().manual_seed(0))
    from edgekit.desktop.export.parity import flatten_outputs

    result = run_eager(module, x)
    outputs = flatten_outputs(result)
    if not outputs:
        raise ModelError("the model returned no tensors", hint="forward() must return a tensor, or a tuple/dict of them")
    names = loaded.output_names
    if len(names) != len(outputs):
        names = _output_names(result, len(outputs))
    data = torch_to_onnx(module, x, opset, names, batch == "dynamic")
    from edgekit.desktop.export.parity import run_torch

    reference = Reference(lambda inputs: run_torch(module, inputs, names), "ONNX vs PyTorch")
    return onnx.load_from_string(data), reference, shape, INPUT_NAME


def _output_names(result, count):
    """Names for the ONNX outputs: a flat dict's keys, "logits" for a single tensor, else output0..N."""
    if isinstance(result, dict) and len(result) == count and all(hasattr(v, "detach") for v in result.values()) \
            and all(isinstance(k, str) and re.match(r"^[A-Za-z_][\w.]*$", k) for k in result):
        return list(result)
    return ["logits"] if count == 1 else ["output%d" % i for i in range(count)]


def _from_onnx(loaded, hw, batch, opset, note):
    """ONNX passthrough: opset conversion if needed; fix shapes. Returns (model, Reference, shape, input name)."""
    from edgekit.desktop.export.parity import run_onnx

    model = loaded.onnx_model
    source_bytes = model.SerializeToString()         # the reference, before any change
    model = convert_opset(model, opset, note)
    name, dims = input_spec(model)
    initializers = set(i.name for i in model.graph.initializer)
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelError("the ONNX model has %d inputs (%s); edgekit models take one image tensor" % (
            len(inputs), ", ".join(inputs)), hint="export the part of the model that takes the image alone")
    if len(dims) != 4:
        raise ModelError("input %s has %d dimensions; edgekit models take one NCHW image tensor" % (name, len(dims)))
    h = dims[2] if isinstance(dims[2], int) and dims[2] > 0 else None
    w = dims[3] if isinstance(dims[3], int) and dims[3] > 0 else None
    if hw is not None and ((h and h != hw[0]) or (w and w != hw[1])):
        raise ConfigError("--input-size %dx%d does not match the model's fixed input %sx%s" % (hw[0], hw[1], h, w))
    if hw is None and (h is None or w is None):
        raise ConfigError("input %s has a dynamic height/width %s" % (name, dims),
                          hint="pass --input-size HxW for the size the camera model should use")
    hw = hw or (h, w)
    n = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else None
    if n is not None and batch not in (n, "dynamic"):
        raise ConfigError("--batch %s does not match the model's fixed batch %d" % (batch, n))
    if batch == "dynamic" and n is not None:
        raise ConfigError("the model has a fixed batch %d; it cannot be made dynamic here" % n)
    channels = dims[1] if isinstance(dims[1], int) and dims[1] > 0 else 3
    shape = [1 if batch == "dynamic" else batch, channels, hw[0], hw[1]]
    if batch != "dynamic" and (n is None or h is None or w is None):
        _fix_input_dims(model, shape)
        note("fixed the input %s to %s" % (name, shape))
    reference = Reference(lambda inputs: run_onnx(source_bytes, inputs, name), "simplified ONNX vs source ONNX",
                          optional=True)
    return model, reference, shape, name


def _fix_input_dims(model, shape):
    name, _ = input_spec(model)
    for inp in model.graph.input:
        if inp.name == name:
            for dim, value in zip(inp.type.tensor_type.shape.dim, shape):
                dim.ClearField("dim_param")
                dim.dim_value = value


def report_json(report):
    return json.dumps(report, indent=2, sort_keys=True, default=float)
