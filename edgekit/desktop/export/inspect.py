"""``edgekit inspect``: what an ONNX file is, what it costs, and whether the target's TensorRT takes it.

``inspect_model(path, target=None, layers=False) -> dict`` (docs/desktop/export.md, the ``--json`` object):
  path, bytes, sha256, ir_version, producer, opset {domain: version}, inputs/outputs [{name, shape, dtype}],
  metadata (the ``edgekit`` block, or None; ``metadata_error`` when it is invalid), recognised (for a file
  without the block: the metadata edgekit recognised from its metadata_props or output signature, with
  ``source.recognised`` saying from what; None, or ``recognise_error``), metadata_props (the
  other keys), cost_input_shapes (the shapes FLOPs were counted at, when pinned; ``input_size_note`` says where
  a dynamic size came from), ops {op: count} (most frequent first), nodes, params (weight elements, each
  counted once, from initializers, Constant nodes and subgraphs: ``params_by_carrier``), flops (None when shapes are unknown,
  with ``flops_note``), by_op, layers (with ``layers=True``), lint {target, ok, problems, ...},
  estimate {target, precision, latency_ms, method, error_note} (or None with ``estimate_note``).

FLOPs and parameters come from ``edgekit.desktop.export.graph`` and the latency estimate from
``edgekit.profiler.estimate`` (docs/profiling.md, "The Jetson estimate"); this module only assembles them.
"""

import os

from edgekit.errors import MetadataError, ModelError, UserError
from edgekit.targets import DEFAULT_TARGET, get_target


def _load(path):
    import onnx

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelError("model file not found: %s" % path, hint="check the path")
    try:
        return onnx.load(path)
    except Exception as exc:    # protobuf DecodeError and friends
        raise ModelError("%s is not a valid ONNX file: %s" % (path, str(exc).splitlines()[0] if str(exc) else
                                                               type(exc).__name__),
                         hint="check that the copy is complete")


def _dtype(type_proto):
    from onnx import TensorProto

    if not type_proto.HasField("tensor_type"):
        return type_proto.WhichOneof("value") or "unknown"
    name = TensorProto.DataType.Name(type_proto.tensor_type.elem_type).lower()
    return {"float": "float32", "double": "float64"}.get(name, name)


def _io(values, exclude=()):
    from edgekit.desktop.export.lint import dims_of

    return [{"name": v.name, "shape": dims_of(v.type), "dtype": _dtype(v.type)} for v in values if v.name not in exclude]


def _metadata(model, inputs, outputs):
    """The edgekit block, else what ``edgekit.vision.recognise`` makes of a third-party file (``recognised``:
    the metadata the runtime would use, with ``recognised.source.recognised`` saying from what)."""
    from edgekit.meta import META_KEY, ModelMeta
    from edgekit.vision.recognise import recognise

    props = dict((p.key, p.value) for p in model.metadata_props)
    out = {"metadata": None, "metadata_props": dict((k, v) for k, v in props.items() if k != META_KEY),
           "recognised": None}
    if META_KEY in props:
        try:
            out["metadata"] = ModelMeta.from_json(props[META_KEY]).to_dict()
        except MetadataError as exc:
            out["metadata_error"] = exc.one_line()
        return out
    try:
        meta = recognise(props, [(v["name"], v["shape"] or []) for v in inputs],
                         [(v["name"], v["shape"] or []) for v in outputs])
    except MetadataError as exc:
        out["recognise_error"] = exc.one_line()
        return out
    if meta is not None:
        out["recognised"] = meta.to_dict()
    return out


def _histogram(model):
    from edgekit.desktop.export.lint import walk_nodes

    counts = {}
    for node in walk_nodes(model.graph):
        key = node.op_type if node.domain in ("", "ai.onnx") else "%s:%s" % (node.domain, node.op_type)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _input_shapes(inputs, props, input_size):
    """(shapes for the cost model or None, note). A dynamic batch becomes 1; a dynamic height/width
    comes from ``input_size`` (H, W), else from the model's metadata (edgekit's input shape, Ultralytics'
    ``imgsz``); an input whose size no source gives stays unresolved (the note says how to give it)."""
    from edgekit import inputsize

    shapes, notes = {}, []
    for inp in inputs:
        dims = inp["shape"]
        if dims is None:
            continue
        if all(inputsize.is_static(d) for d in dims):
            shapes[inp["name"]] = list(dims)
            continue
        chosen = inputsize.choose(dims, input_size, props) if inputsize.dynamic_hw(dims) else None
        resolved = inputsize.resolve(dims, chosen[:2] if chosen else None)
        if chosen:
            notes.append("%s at %s from %s" % (inp["name"], "x".join(map(str, resolved)), chosen[2]))
        if all(inputsize.is_static(d) for d in resolved):
            shapes[inp["name"]] = resolved
    return shapes or None, "; ".join(notes) or None


def _costs(model, shapes):
    """(costs list or None, note)."""
    try:
        from edgekit.desktop.export.graph import layer_costs
    except ImportError as exc:
        return None, "FLOPs unavailable: %s" % exc
    try:
        return layer_costs(model, shapes), None
    except UserError as exc:
        if "dynamic dimension" in exc.message:
            from edgekit.inputsize import EXAMPLE_HW

            return None, ("FLOPs unavailable: %s and the model's metadata gives no size; pass --input-size HxW "
                          "to count them (e.g. --input-size %dx%d)" % (exc.message, EXAMPLE_HW[0], EXAMPLE_HW[1]))
        return None, "FLOPs unavailable: %s" % exc.one_line()


def _params(model):
    """(total, {carrier: elements}): weights wherever ONNX keeps them, each counted once: initializers
    (dense and sparse), Constant nodes (``value``, ``sparse_value``, ``value_float(s)``, ``value_int(s)``:
    paddle2onnx and tf2onnx store weights this way), and the same inside the subgraphs of If/Loop/Scan.
    A weight shared by two layers is one weight; the per-layer ``params`` count it at each layer."""
    from edgekit.desktop.export.graph import constant_elements

    found = {"initializers": 0, "constants": 0, "subgraphs": 0}

    def prod(dims):
        count = 1
        for d in dims:
            count *= d
        return count

    def visit(graph, nested):
        where = "subgraphs" if nested else None
        found[where or "initializers"] += sum(prod(i.dims) for i in graph.initializer)
        found[where or "initializers"] += sum(prod(i.dims) for i in graph.sparse_initializer)
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                found[where or "constants"] += constant_elements(node)
            for attr in node.attribute:
                for sub in ([attr.g] if attr.type == attr.GRAPH else list(attr.graphs)):
                    visit(sub, True)

    visit(model.graph, False)
    return sum(found.values()), dict((k, v) for k, v in found.items() if v)


def _estimate(costs, target, precision):
    if costs is None:
        return None, "no estimate without per-layer costs"
    try:
        from edgekit.profiler.estimate import estimate
    except ImportError as exc:
        return None, "estimate unavailable: %s" % exc
    try:
        result = estimate(costs, target, precision)
    except UserError as exc:
        return None, exc.one_line()
    return result, None


def engine_precision(target, meta):
    """The precision an engine would be built at: the model's if quantized, else the target's fastest float."""
    if meta and meta.get("precision") in ("fp16", "int8"):
        return meta["precision"]
    return "fp16" if "fp16" in (target.fast_precisions or ()) and target.uses_tensorrt else "fp32"


def inspect_model(path, target=None, layers=False, input_size=None):
    """Describe an ONNX file (see module doc). ``input_size`` (H, W) or "HxW" pins a dynamic height/width
    for the FLOPs and the estimate. Raises ModelError for a missing or unreadable file."""
    from edgekit.desktop.export.run import parse_input_size
    from edgekit.desktop.export.lint import lint_model
    from edgekit.fsutil import sha256_file

    input_size = parse_input_size(input_size)
    # (the lint's --shapes advice and the cost model resolve dynamic sizes the same way: edgekit.inputsize)

    model = _load(path)
    info = {"path": os.fspath(path), "bytes": os.path.getsize(path), "sha256": sha256_file(path),
            "ir_version": model.ir_version, "producer": ("%s %s" % (model.producer_name, model.producer_version)).strip(),
            "opset": dict((o.domain or "ai.onnx", o.version) for o in model.opset_import)}
    initializers = set(i.name for i in model.graph.initializer)
    info["inputs"] = _io(model.graph.input, exclude=initializers)
    info["outputs"] = _io(model.graph.output)
    info.update(_metadata(model, info["inputs"], info["outputs"]))
    meta = info["metadata"]
    target = get_target(target or (meta or {}).get("target") or DEFAULT_TARGET)
    info["ops"] = _histogram(model)
    info["nodes"] = sum(info["ops"].values())

    props = dict((p.key, p.value) for p in model.metadata_props)
    shapes, size_note = _input_shapes(info["inputs"], props, input_size)
    if shapes:
        info["cost_input_shapes"] = shapes
    if size_note:
        info["input_size_note"] = size_note
    costs, note = _costs(model, shapes)
    params, carriers = _params(model)
    info.update(params=params, params_by_carrier=carriers)
    if costs is not None:
        from edgekit.desktop.export.graph import summarize

        summary = summarize(costs)
        info.update(flops=summary["flops"], by_op=summary["by_op"], unknown_shapes=summary.get("unknown_shapes", 0))
    else:
        info.update(flops=None, flops_note=note, by_op=None)

    estimate, estimate_note = _estimate(costs, target, engine_precision(target, meta))
    info["estimate"] = None if estimate is None else dict(
        (k, estimate[k]) for k in ("target", "precision", "latency_ms", "method", "error_note"))
    if estimate_note:
        info["estimate_note"] = estimate_note
    info["lint"] = lint_model(model, target, input_size=input_size)
    if layers:
        info["layers"] = _layers(costs, estimate)
        flagged = dict((p["node"], p["severity"]) for p in info["lint"]["problems"])
        for row in info["layers"]:
            if row["name"] in flagged:
                row["lint"] = flagged[row["name"]]
    return info


def _layers(costs, estimate):
    if costs is None:
        return []
    times = dict((layer["name"], layer) for layer in (estimate or {}).get("layers", []))
    out = []
    for cost in costs:
        row = {"name": cost["name"], "op": cost["op"], "flops": cost["flops"], "params": cost["params"],
               "output_shape": cost.get("output_shape")}
        if cost["name"] in times:
            row["est_ms"] = times[cost["name"]]["ms"]
            row["bound"] = times[cost["name"]]["bound"]
        out.append(row)
    return out
