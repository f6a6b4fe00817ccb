"""ONNX opset down-conversion for ONNX-only users, judged op by op.

    convert(model, 13) -> (converted ModelProto, [notes])      # or ExportError naming the op that blocks
    analyse(model, 13) -> [{"node", "op", "version", "status", "reason"}]   # what lint reports

ONNX's own ``onnx.version_converter`` is tried first. It has no down-adapter from opset 14 to 13 for any
op (onnx/version_converter/convert.h registers none), so a model above 13 that uses Relu, Add or any other
op revised in 14 fails there. This module then converts by rule, for every op revised between the target
opset and the model's (``CHANGES``, each entry checked against onnx docs/Changelog.md, onnx/onnx f754691):

- ``types``: the revision only widened the type lists (bfloat16, int8/16, float8, int4...): the node is
  unchanged; ``onnx.checker`` at the target opset then rejects a tensor of a type the old op lacks;
- ``defaults``: the revision added attributes or inputs whose default keeps the old meaning: the node
  converts when they are absent or at that default (they are dropped), and is blocked otherwise;
- a rewrite: Reduce*-18 axes input -> attribute (constant axes only), Split-18 ``num_outputs`` -> equal
  split or a ``split`` input, Shape-15 ``start``/``end`` -> Shape + Slice, HardSwish-14 -> x * HardSigmoid(x),
  Mish-18 -> x * Tanh(Softplus(x)), Gelu-20 -> 0.5 x (1 + Erf(x / sqrt 2));
- ``new``: the op has no definition at the target opset (LayerNormalization-17, GroupNormalization-18,
  GridSample-16, Trilu-14...): blocked, with the op, its opset and the node named.

Revisions after opset 21 are not in the table: such a node is blocked ("not covered") rather than guessed.
"""

import math

from edgekit.errors import ExportError

STANDARD = ("", "ai.onnx")
TABLE_TOP = 21          # CHANGES covers every revision of the default domain from 14 up to here
_REDUCE_18 = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
              "ReduceProd", "ReduceSumSquare")


def _types():
    return ("types", None)


def _defaults(**attrs):
    """Attributes (name -> the value that keeps the old meaning; None: must be absent)."""
    return ("defaults", attrs)


CHANGES = {
    # opset 14
    "Add": {14: _types()}, "Sub": {14: _types()}, "Mul": {14: _types()}, "Div": {14: _types()},
    "Relu": {14: _types()}, "CumSum": {14: _types()},
    "Identity": {14: _types(), 16: _types(), 19: _types(), 21: _types()},
    "Reshape": {14: ("reshape_allowzero", None), 19: _types(), 21: _types()},
    "BatchNormalization": {14: ("batchnorm_inference", None), 15: _types()},
    "GRU": {14: _defaults(layout=0)}, "LSTM": {14: _defaults(layout=0)}, "RNN": {14: _defaults(layout=0)},
    "HardSwish": {14: ("hardswish", None)},
    # opset 15
    "Pow": {15: _types()},
    "Shape": {15: ("shape_slice", None), 19: _types(), 21: _types()},
    # opset 16
    "LeakyRelu": {16: _types()}, "PRelu": {16: _types()}, "Where": {16: _types()},
    "GreaterOrEqual": {16: _types()}, "LessOrEqual": {16: _types()},
    "If": {16: _types(), 19: _types(), 21: _types()}, "Loop": {16: _types(), 19: _types(), 21: _types()},
    "Scan": {16: _types(), 19: _types(), 21: _types()},
    # RoiAlign-16 added coordinate_transformation_mode with default half_pixel; RoiAlign-10 behaves as
    # output_half_pixel: only an explicit output_half_pixel keeps the meaning
    "RoiAlign": {16: ("roialign_mode", None)},
    "ScatterElements": {16: _defaults(reduction="none"), 18: _defaults(reduction="none")},
    "ScatterND": {16: _defaults(reduction="none"), 18: _defaults(reduction="none")},
    # opset 18
    "Split": {18: ("split_num_outputs", None)},
    "Pad": {18: ("pad_no_axes", None), 19: ("pad_not_wrap", None), 21: _types()},
    "Resize": {18: _defaults(antialias=0, axes=None, keep_aspect_ratio_policy="stretch"),
               19: ("resize_not_symmetric", None)},
    "LpPool": {18: _defaults(ceil_mode=0, dilations="ones")},
    "Mish": {18: ("mish", None)},
    # opset 19
    "AveragePool": {19: _defaults(dilations="ones")},
    "Cast": {19: _defaults(saturate=1), 21: _types()}, "CastLike": {19: _defaults(saturate=1), 21: _types()},
    "Constant": {19: _types(), 21: _types()}, "Equal": {19: _types()}, "Size": {19: _types(), 21: _types()},
    "QuantizeLinear": {19: _defaults(saturate=1), 21: _defaults(block_size=0, output_dtype=0)},
    "DequantizeLinear": {19: _types(), 21: _defaults(block_size=0)},
    # opset 20
    "ConstantOfShape": {20: _types(), 21: _types()}, "IsInf": {20: _types()}, "IsNaN": {20: _types()},
    "Gelu": {20: ("gelu", None)},
    # opset 21
    "Flatten": {21: _types()}, "Squeeze": {21: _types()}, "Unsqueeze": {21: _types()}, "Transpose": {21: _types()},
    "QLinearMatMul": {21: _types()},
}
for _op in _REDUCE_18:
    CHANGES[_op] = {18: ("reduce_axes_input", None)}
CHANGES["ReduceMax"][20] = _types()
CHANGES["ReduceMin"][20] = _types()


def opset_of(model):
    for entry in model.opset_import:
        if entry.domain in STANDARD:
            return entry.version
    return None


def _revisions(op, low, high):
    """Since-versions of ``op`` in (low, high], newest first."""
    import onnx.defs

    out = set()
    for schema in onnx.defs.get_all_schemas_with_history():
        if schema.name == op and schema.domain in STANDARD and low < schema.since_version <= high:
            out.add(schema.since_version)
    return sorted(out, reverse=True)


def _defined_at(op, opset):
    import onnx.defs

    try:
        onnx.defs.get_schema(op, opset, "")
        return True
    except Exception:       # SchemaError: not defined at or before this opset
        return False


class _Ctx(object):
    """One graph being converted: its constants (for axes/shape inputs), new initializers, new nodes."""

    def __init__(self, graph, shapes):
        from onnx import numpy_helper

        self.graph = graph
        self.shapes = shapes
        self.values = {}
        for init in graph.initializer:
            self.values[init.name] = numpy_helper.to_array(init)
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in STANDARD:
                for a in node.attribute:
                    if a.name == "value":
                        self.values[node.output[0]] = numpy_helper.to_array(a.t)
                    elif a.name == "value_ints":
                        self.values[node.output[0]] = list(a.ints)
        self.counter = 0

    def fresh(self, base):
        self.counter += 1
        return "%s__ek%d" % (base, self.counter)

    def constant(self, base, array):
        from onnx import numpy_helper

        name = self.fresh(base)
        self.graph.initializer.append(numpy_helper.from_array(array, name))
        return name


def _attr(node, name):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            value = helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return None


def _drop(node, *names):
    keep = [a for a in node.attribute if a.name not in names]
    del node.attribute[:]
    node.attribute.extend(keep)


def _set_ints(node, name, values):
    from onnx import helper

    _drop(node, name)
    node.attribute.extend([helper.make_attribute(name, [int(v) for v in values])])


# -- rules: each returns (None or a reason it blocks, [replacement nodes] or None) -------------------------
def _rule_defaults(node, ctx, attrs):
    for name, keep in attrs.items():
        value = _attr(node, name)
        if value is None:
            continue
        if keep is None:
            return "%s=%s is set (no equivalent before this revision)" % (name, value), None
        if keep == "ones":
            if any(v != 1 for v in value):
                return "%s=%s (only 1 existed before)" % (name, value), None
        elif value != keep:
            return "%s=%r (only %r existed before)" % (name, value, keep), None
    _drop(node, *attrs)
    return None, None


def _rule_reduce_axes(node, ctx):
    if _attr(node, "noop_with_empty_axes"):
        return "noop_with_empty_axes=1 has no equivalent before opset 18", None
    _drop(node, "noop_with_empty_axes")
    if len(node.input) > 1 and node.input[1]:
        axes = ctx.values.get(node.input[1])
        if axes is None:
            return "its axes are computed at run time (opset 13 takes them as an attribute)", None
        del node.input[1:]
        _set_ints(node, "axes", list(axes))
    return None, None


def _rule_split(node, ctx):
    count = _attr(node, "num_outputs")
    if count is None:
        return None, None
    _drop(node, "num_outputs")
    axis = _attr(node, "axis") or 0
    dims = ctx.shapes.get(node.input[0])
    size = dims[axis] if dims and -len(dims) <= axis < len(dims) else None
    if isinstance(size, int) and size > 0 and size % count == 0:
        return None, None                      # Split-13 without `split` splits equally into the outputs
    if not isinstance(size, int) or size <= 0:
        return "num_outputs=%d on an axis of unknown length (Split-13 needs the sizes)" % count, None
    import numpy as np

    chunk = int(math.ceil(size / float(count)))
    sizes = [chunk] * (count - 1) + [size - chunk * (count - 1)]
    while len(node.input) < 2:
        node.input.append("")
    node.input[1] = ctx.constant(node.name or "split", np.array(sizes, np.int64))
    return None, None


def _rule_shape_slice(node, ctx):
    start, end = _attr(node, "start"), _attr(node, "end")
    if start is None and end is None:
        return None, None
    import numpy as np
    from onnx import helper

    _drop(node, "start", "end")
    full = ctx.fresh(node.output[0])
    sliced = node.output[0]
    node.output[0] = full
    slice_node = helper.make_node(
        "Slice", [full, ctx.constant("start", np.array([start or 0], np.int64)),
                  ctx.constant("end", np.array([end if end is not None else 2 ** 62], np.int64))],
        [sliced], name=(node.name or "shape") + "_slice")
    return None, [node, slice_node]


def _rule_reshape(node, ctx):
    if not _attr(node, "allowzero"):
        _drop(node, "allowzero")
        return None, None
    shape = ctx.values.get(node.input[1]) if len(node.input) > 1 else None
    if shape is not None and 0 not in list(shape):
        _drop(node, "allowzero")
        return None, None
    return "allowzero=1 with a shape that may hold 0 (before opset 14, 0 copies the input dimension)", None


def _rule_batchnorm(node, ctx):
    if _attr(node, "training_mode"):
        return "training_mode=1 (training statistics) has no equivalent at opset 13's inference form", None
    if len([o for o in node.output if o]) > 1:
        return "it uses the running-statistics outputs, which opset 14 redefined", None
    _drop(node, "training_mode")
    del node.output[1:]
    return None, None


def _rule_roialign(node, ctx):
    mode = _attr(node, "coordinate_transformation_mode")
    if mode == "output_half_pixel":
        _drop(node, "coordinate_transformation_mode")
        return None, None
    return ("coordinate_transformation_mode=%s (the opset-16 default): RoiAlign-10 can only do output_half_pixel"
            % (mode or "half_pixel")), None


def _rule_pad_no_axes(node, ctx):
    if len(node.input) > 3 and node.input[3]:
        return "it pads selected axes (the axes input exists from opset 18 only)", None
    del node.input[3:]
    return None, None


def _rule_pad_not_wrap(node, ctx):
    return ("mode=wrap exists from opset 19 only", None) if _attr(node, "mode") == "wrap" else (None, None)


def _rule_resize_19(node, ctx):
    if _attr(node, "coordinate_transformation_mode") == "half_pixel_symmetric":
        return "coordinate_transformation_mode=half_pixel_symmetric exists from opset 19 only", None
    return None, None


def _pointwise(node, ctx, build):
    """Replace a node y = f(x) by the nodes ``build(x, y, fresh)`` returns."""
    x, y = node.input[0], node.output[0]
    base = node.name or node.op_type
    return None, build(x, y, base, lambda suffix: ctx.fresh("%s_%s" % (y, suffix)))


def _rule_hardswish(node, ctx):
    from onnx import helper

    return _pointwise(node, ctx, lambda x, y, base, fresh: (lambda h: [
        helper.make_node("HardSigmoid", [x], [h], alpha=1.0 / 6, beta=0.5, name=base + "_hardsigmoid"),
        helper.make_node("Mul", [x, h], [y], name=base + "_mul")])(fresh("hsig")))


def _rule_mish(node, ctx):
    from onnx import helper

    def build(x, y, base, fresh):
        s, t = fresh("softplus"), fresh("tanh")
        return [helper.make_node("Softplus", [x], [s], name=base + "_softplus"),
                helper.make_node("Tanh", [s], [t], name=base + "_tanh"),
                helper.make_node("Mul", [x, t], [y], name=base + "_mul")]
    return _pointwise(node, ctx, build)


def _rule_gelu(node, ctx):
    if (_attr(node, "approximate") or "none") != "none":
        return "approximate=%s (only the exact Gelu is rewritten)" % _attr(node, "approximate"), None
    import numpy as np
    from onnx import helper

    def build(x, y, base, fresh):
        scaled, erf, plus, half = fresh("scaled"), fresh("erf"), fresh("plus"), fresh("half")
        return [helper.make_node("Div", [x, ctx.constant("sqrt2", np.array(math.sqrt(2.0), np.float32))], [scaled],
                                 name=base + "_div"),
                helper.make_node("Erf", [scaled], [erf], name=base + "_erf"),
                helper.make_node("Add", [erf, ctx.constant("one", np.array(1.0, np.float32))], [plus],
                                 name=base + "_add"),
                helper.make_node("Mul", [x, ctx.constant("half", np.array(0.5, np.float32))], [half],
                                 name=base + "_half"),
                helper.make_node("Mul", [half, plus], [y], name=base + "_mul")]
    return _pointwise(node, ctx, build)


RULES = {
    "reduce_axes_input": _rule_reduce_axes, "split_num_outputs": _rule_split, "shape_slice": _rule_shape_slice,
    "reshape_allowzero": _rule_reshape, "batchnorm_inference": _rule_batchnorm, "roialign_mode": _rule_roialign,
    "pad_no_axes": _rule_pad_no_axes, "pad_not_wrap": _rule_pad_not_wrap, "resize_not_symmetric": _rule_resize_19,
    "hardswish": _rule_hardswish, "mish": _rule_mish, "gelu": _rule_gelu,
}
# rewrites that replace an op with no older definition (so "new" does not block them)
DECOMPOSED = {"HardSwish": 14, "Mish": 18, "Gelu": 20}


def _node_name(node):
    return node.name or (node.output[0] if node.output else node.op_type)


def _convert_node(node, ctx, low, high, problems, notes):
    """Apply every revision of ``node``'s op in (low, high], newest first. Returns the replacement nodes."""
    op = node.op_type
    revisions = _revisions(op, low, high)
    if not revisions:
        return [node]
    if not _defined_at(op, low) and op not in DECOMPOSED:
        problems.append({"node": _node_name(node), "op": op, "version": min(revisions), "status": "blocked",
                         "reason": "%s exists from opset %d only; opset %d has no such op" % (op, min(revisions), low)})
        return [node]
    nodes = [node]
    for version in revisions:
        if version > TABLE_TOP or version not in CHANGES.get(op, {}):
            problems.append({"node": _node_name(node), "op": op, "version": version, "status": "blocked",
                             "reason": "%s changed in opset %d, which edgekit's conversion table (verified up to "
                             "opset %d) does not cover" % (op, version, TABLE_TOP)})
            return [node]
        kind, arg = CHANGES[op][version]
        if kind == "types":
            continue
        if kind == "defaults":
            reason, replaced = _rule_defaults(node, ctx, arg)
        else:
            reason, replaced = RULES[kind](node, ctx)
        if reason:
            problems.append({"node": _node_name(node), "op": op, "version": version, "status": "blocked",
                             "reason": "%s-%d: %s" % (op, version, reason)})
            return [node]
        if replaced is not None:
            nodes = replaced
            notes.append("%s %s (opset %d) rewritten as %s" % (op, _node_name(node), version,
                                                               " + ".join(n.op_type for n in replaced)))
            break
    return nodes


def _convert_graph(graph, low, high, shapes, problems, notes):
    ctx = _Ctx(graph, shapes)
    out = []
    for node in list(graph.node):
        for attr in node.attribute:
            for sub in ([attr.g] if attr.type == attr.GRAPH else list(attr.graphs)):
                _convert_graph(sub, low, high, shapes, problems, notes)
        if node.domain in STANDARD:
            out.extend(_convert_node(node, ctx, low, high, problems, notes))
        else:
            out.append(node)
    del graph.node[:]
    graph.node.extend(out)


def _shape_table(model):
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:       # conversion still works for nodes that need no shapes
        return {}
    table = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
            table[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
    return table


def table_convert(model, opset):
    """Convert by the table. Returns (converted model, notes, problems); problems non-empty = blocked."""
    import onnx

    converted = onnx.ModelProto()
    converted.CopyFrom(model)
    current = opset_of(converted)
    problems, notes = [], []
    _convert_graph(converted.graph, opset, current, _shape_table(model), problems, notes)
    for entry in converted.opset_import:
        if entry.domain in STANDARD:
            entry.version = opset
    return converted, notes, problems


def analyse(model, opset):
    """Nodes that stop a conversion to ``opset`` (see module doc): [{"node", "op", "version", "status",
    "reason"}]. Empty when every op present means the same at ``opset`` or has a rewrite."""
    current = opset_of(model)
    if current is None or current <= opset:
        return []
    return table_convert(model, opset)[2]


def convert(model, opset):
    """Down-convert ``model`` to ``opset``: ONNX's version converter, else the table. Returns (model, notes).
    Raises ExportError (one line: the first blocking op, its opset and node) when neither can."""
    import onnx
    from onnx import version_converter

    current = opset_of(model)
    if current is None or current <= opset:
        return model, []
    try:
        converted = version_converter.convert_version(model, opset)
        onnx.checker.check_model(converted)
        return converted, ["converted from opset %d to %d with onnx.version_converter" % (current, opset)]
    except Exception:       # no adapter for some op (there is none from 14 to 13): convert by the table
        pass
    converted, notes, problems = table_convert(model, opset)
    if problems:
        first = problems[0]
        more = len(problems) - 1
        raise ExportError("the model is at opset %d and %s (opset %d, node %s) cannot be converted down to %d: %s%s"
                          % (current, first["op"], first["version"], first["node"], opset, first["reason"],
                             " (and %d more node(s): %s)" % (more, ", ".join(sorted(set(p["op"] for p in problems[1:]))))
                             if more else ""),
                          hint="re-export it from its framework at opset %d, or choose a --target whose TensorRT "
                               "parses opset %d" % (opset, current))
    try:
        onnx.checker.check_model(converted, full_check=True)
    except Exception as exc:    # a type the older op lacks (bfloat16, int8 Add...), or a rewrite gone wrong
        raise ExportError("the model converted to opset %d fails onnx.checker: %s" % (
            opset, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__),
            hint="re-export it from its framework at opset %d" % opset)
    notes.insert(0, "converted from opset %d to %d by edgekit's per-op table (onnx.version_converter has no "
                    "down-adapter for it)" % (current, opset))
    return converted, notes
