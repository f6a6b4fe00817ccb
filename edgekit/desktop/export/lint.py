"""Offline TensorRT lint: what the target's TensorRT ONNX parser would reject, found without TensorRT.

The facts come from per-release tables in ``edgekit/desktop/export/trt_ops/<series>.json`` built from
onnx-tensorrt's ``docs/operators.md`` (each table names its repository, ref and commit). The lint checks:

- the model's ``ai.onnx`` opset against the parser's range;
- every node (subgraphs included): custom-domain ops (need a plugin), ops missing or marked unsupported
  in the table, and the table's restrictions that can be checked on a graph (``checks``: constant inputs,
  zero points, input rank, attribute values);
- INT64 initializers TensorRT 8.x casts to INT32 (values outside INT32 are clamped), INT64 outputs;
- network input/output element types the parser cannot map (``io_dtypes``: UINT8 on 8.2), INT64 inputs;
- dynamic input dimensions, which need an optimisation profile when the engine is built.

``lint_model(model, target) -> {"target", "tensorrt", "ok", "problems": [...], "notes": [...], "table"}``;
each problem is ``{"node", "op", "reason", "fix", "severity"}`` with severity "error" (the parser or
builder fails, or results would be wrong) or "warning" (works, but needs an action). ``ok`` is False when
any error is present; ``--strict`` treats every problem as fatal.
"""

import functools
import json
import os

from edgekit.targets import get_target

TABLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trt_ops")
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
STANDARD_DOMAINS = ("", "ai.onnx")
PASS_THROUGH_CONSTANT = ("QuantizeLinear", "DequantizeLinear", "Cast", "Identity")

# Specific advice for ops people hit on Jetson; the generic fix covers the rest.
OP_FIXES = {
    "NonZero": "avoid data-dependent shapes (boolean indexing, torch.nonzero); use masks with fixed shapes",
    "Mod": "write a - b * floor(a / b) instead of %",
    "OneHot": "build the one-hot tensor with an equality against torch.arange",
    "Hardmax": "use argmax and an equality against torch.arange",
    "LayerNormalization": "export at opset <= 16 so LayerNorm is decomposed into supported ops",
    "RoiAlign": "run RoI alignment outside the network or use TensorRT's ROIAlign plugin",
    "Unique": "move torch.unique out of the network (post-processing)",
}


@functools.lru_cache(maxsize=None)
def load_table(series):
    """The operator table of one TensorRT series ("8.2", "8.5", "10")."""
    path = os.path.join(TABLE_DIR, "%s.json" % series)
    with open(path) as handle:
        return json.load(handle)


def table_sources():
    """{series: source dict} for every table shipped (for docs and inspect)."""
    out = {}
    for name in sorted(os.listdir(TABLE_DIR)):
        if name.endswith(".json"):
            out[name[:-5]] = load_table(name[:-5])["source"]
    return out


def _problem(node, op, reason, fix, severity="error"):
    return {"node": node, "op": op, "reason": reason, "fix": fix, "severity": severity}


class _Graph(object):
    """What the checks need to know about one model: constants, shapes, consumers, schemas."""

    def __init__(self, model):
        import onnx

        self.onnx = onnx
        self.model = model
        self.opset = opset_of(model)
        graph = model.graph
        input_names = set(i.name for i in graph.input)
        self.constants = {}
        for init in graph.initializer:
            if init.name not in input_names:
                self.constants[init.name] = init
        self.consumers = {}
        self.nodes = list(walk_nodes(graph))
        for node in self.nodes:
            if node.op_type == "Constant" and node.domain in STANDARD_DOMAINS:
                for attr in node.attribute:
                    if attr.name == "value":
                        self.constants[node.output[0]] = attr.t
            for index, name in enumerate(node.input):
                if name:
                    self.consumers.setdefault(name, []).append((node, index))
        self.graph_outputs = set(o.name for o in graph.output)
        self.producers = dict((out, node) for node in self.nodes for out in node.output if out)
        self.shapes = _shapes(model)

    def is_constant(self, name, depth=0):
        """An initializer or Constant output, or one passed through Quantize/DequantizeLinear, Cast, Identity
        (explicit quantization puts a DequantizeLinear on constant weights; TensorRT takes that)."""
        if name in self.constants:
            return True
        node = self.producers.get(name)
        if node is None or depth > 4 or node.op_type not in PASS_THROUGH_CONSTANT:
            return False
        return all(self.is_constant(i, depth + 1) for i in node.input if i)

    def schema(self, node):
        try:
            return self.onnx.defs.get_schema(node.op_type, self.opset, node.domain or "")
        except Exception:       # onnx raises SchemaError (not exported under a stable name) for unknown ops
            return None

    def input_index(self, node, name):
        if isinstance(name, int):
            return name
        schema = self.schema(node)
        if schema is None:
            return None
        for index, formal in enumerate(schema.inputs):
            if formal.name == name:
                return index
        return None                 # an attribute at this opset (constant by definition)

    def output_index(self, node, name):
        schema = self.schema(node)
        for index, formal in enumerate(schema.outputs if schema else []):
            if formal.name == name:
                return index
        return None

    def attr(self, node, name):
        for attr in node.attribute:
            if attr.name == name:
                return _decode(self.onnx.helper.get_attribute_value(attr))
        schema = self.schema(node)
        if schema is not None and name in schema.attributes:
            default = schema.attributes[name].default_value
            if default.name:
                return _decode(self.onnx.helper.get_attribute_value(default))
        return None

    def array(self, name):
        from onnx import numpy_helper

        tensor = self.constants.get(name)
        return None if tensor is None else numpy_helper.to_array(tensor)


def _decode(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [_decode(v) for v in value]
    return value


def opset_of(model):
    for entry in model.opset_import:
        if entry.domain in STANDARD_DOMAINS:
            return entry.version
    return None


def walk_nodes(graph):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == attr.GRAPH:
                for sub in walk_nodes(attr.g):
                    yield sub
            elif attr.type == attr.GRAPHS:
                for g in attr.graphs:
                    for sub in walk_nodes(g):
                        yield sub


def dims_of(type_proto):
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in type_proto.tensor_type.shape.dim]


def _shapes(model):
    """{tensor name: dims list} from shape inference (best effort: unknown tensors are absent)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:           # a model the inference cannot follow is still linted, with fewer facts
        inferred = model
    shapes = {}
    graph = inferred.graph
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = dims_of(info.type)
        if dims is not None:
            shapes[info.name] = dims
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


# -- restriction checks (kinds used in the tables' "checks") ------------------------------------------
def _check_constant_input(g, node, check):
    unless = g.input_index(node, check["unless_input"]) if check.get("unless_input") else None
    if unless is not None and unless < len(node.input) and node.input[unless]:
        return None
    index = g.input_index(node, check["input"])
    if index is None or index >= len(node.input) or not node.input[index] or g.is_constant(node.input[index]):
        return None
    return ("input %r (%s) is computed at run time; TensorRT needs it as an initializer"
            % (check["input"], node.input[index]),
            "constant-fold the model (edgekit export simplifies by default) or make the value a constant "
            "in the PyTorch code")


def _check_zero_input(g, node, check):
    index = g.input_index(node, check["input"])
    if index is None or index >= len(node.input) or not node.input[index]:
        return None
    values = g.array(node.input[index])
    if values is not None and not values.any():
        return None
    return ("%s must be a zero initializer (TensorRT supports symmetric quantization only)" % check["input"],
            "quantize symmetrically (edgekit quantize does)")


def _check_input_rank(g, node, check):
    dims = g.shapes.get(node.input[check["input"]]) if len(node.input) > check["input"] else None
    if dims is None or len(dims) in check["ranks"]:
        return None
    return ("input rank %d; TensorRT supports rank %s here" % (len(dims), "/".join(map(str, check["ranks"]))),
            "reshape to a supported rank around this op (e.g. Conv1d as Conv2d with height 1)")


def _check_unused_output(g, node, check):
    index = g.output_index(node, check["output"])
    if index is None or index >= len(node.output) or not node.output[index]:
        return None
    return ("output %r is not supported by TensorRT" % check["output"],
            "do not use the %s output (e.g. return_indices=False in PyTorch pooling)" % check["output"])


def _check_attr_all_ones(g, node, check):
    value = g.attr(node, check["attr"])
    if not value or all(v == 1 for v in value):
        return None
    return ("%s=%s; TensorRT supports only 1" % (check["attr"], value), "use %s of 1" % check["attr"])


def _check_attr_equals(g, node, check):
    value = g.attr(node, check["attr"])
    if value is None or value == check["value"]:
        return None
    return ("%s=%r; TensorRT supports only %r" % (check["attr"], value, check["value"]),
            "set %s=%r in the model" % (check["attr"], check["value"]))


def _check_attr_in(g, node, check):
    for key, wanted in (check.get("when") or {}).items():
        if g.attr(node, key) != wanted:
            return None
    value = g.attr(node, check["attr"])
    if value is None or value in check["values"]:
        return None
    return ("%s=%r; TensorRT supports %s" % (check["attr"], value, ", ".join(check["values"])),
            "choose a supported %s in the model" % check["attr"])


def _check_attr_default(g, node, check):
    present = [a for a in node.attribute if a.name == check["attr"]]
    if not present:
        return None
    schema = g.schema(node)
    value = g.attr(node, check["attr"])
    default = None
    if schema is not None and check["attr"] in schema.attributes:
        d = schema.attributes[check["attr"]].default_value
        default = _decode(g.onnx.helper.get_attribute_value(d)) if d.name else None
    if value == default:
        return None
    return ("%s=%r is not supported by TensorRT" % (check["attr"], value), "remove %s" % check["attr"])


def _check_static_input(g, node, check):
    dims = g.shapes.get(node.input[0]) if node.input else None
    if dims is None or all(isinstance(d, int) and d > 0 for d in dims):
        return None
    return ("needs static input shapes, got %s" % dims, "export with fixed shapes (--batch N)")


CHECKS = {
    "constant_input": _check_constant_input,
    "zero_input": _check_zero_input,
    "input_rank": _check_input_rank,
    "unused_output": _check_unused_output,
    "attr_all_ones": _check_attr_all_ones,
    "attr_equals": _check_attr_equals,
    "attr_in": _check_attr_in,
    "attr_default": _check_attr_default,
    "static_input": _check_static_input,
}


# -- model-level rules -------------------------------------------------------------------------------
def _rule_opset(g, table, target):
    problems = []
    opset = g.opset
    top = min(table["max_opset"], target.max_opset or table["max_opset"])
    if opset is not None and opset > top:
        # judged by operator: which ops present changed meaning between `top` and the model's opset
        from edgekit.desktop.export.opset import analyse

        blocked = analyse(g.model, top)
        for p in blocked:
            entry = table["ops"].get(p["op"])
            if entry is None or not entry["supported"]:
                continue            # the operator table's rule names this node already
            problems.append(_problem(
                p["node"], p["op"], "%s; TensorRT %s's importers follow the opset-%d definitions, so this node "
                "fails or is misread" % (p["reason"], target.tensorrt, top),
                "re-export it from its framework at opset %d%s" % (
                    top, " (PyTorch then decomposes it)" if p["op"] in OP_FIXES else "")))
        problems.append(_problem(
            "(model)", "opset", "ai.onnx opset %d is above what TensorRT %s supports (<= %d); %s" % (
                opset, target.tensorrt, top,
                "%d node(s) above change meaning" % len(blocked) if blocked else
                "every op in it means the same at opset %d (revisions since only widened types or added "
                "attributes left at their defaults, or have a rewrite)" % top),
            "re-export with --opset %d" % top if blocked else
            "`edgekit export MODEL.onnx --target %s --out OUT.onnx` converts it to opset %d (parity-checked)"
            % (target.name, top), "error" if blocked else "warning"))
    if opset is not None and table.get("min_opset") and opset < table["min_opset"]:
        problems.append(_problem(
            "(model)", "opset", "ai.onnx opset %d is below TensorRT %s's minimum %d" % (
                opset, target.tensorrt, table["min_opset"]),
            "re-export with --opset %d or newer" % table["min_opset"]))
    return problems


def _rule_nodes(g, table, target):
    problems = []
    ops = table["ops"]
    for node in g.nodes:
        name = node.name or (node.output[0] if node.output else "?")
        if node.domain not in STANDARD_DOMAINS:
            problems.append(_problem(
                name, "%s:%s" % (node.domain, node.op_type),
                "custom-domain op: TensorRT's ONNX parser needs a plugin named %s" % node.op_type,
                "register a TensorRT plugin for %s on the device, or replace the op with standard ONNX ops"
                % node.op_type))
            continue
        entry = ops.get(node.op_type)
        if entry is None or not entry["supported"]:
            why = "not in" if entry is None else "marked unsupported in"
            problems.append(_problem(
                name, node.op_type, "%s is %s TensorRT %s's operator table" % (node.op_type, why, table_version(table)),
                OP_FIXES.get(node.op_type, "rewrite that part of the model with supported ops, or provide a "
                             "TensorRT plugin")))
            continue
        for check in entry["checks"]:
            found = CHECKS[check["kind"]](g, node, check)
            if found:
                problems.append(_problem(name, node.op_type, found[0], found[1]))
    return problems


def _rule_int64(g, table, target):
    """TensorRT 8.x casts INT64 to INT32: a note when values fit; clamped values matter except in Slice."""
    if not table.get("int64_cast_to_int32"):
        return []
    import numpy as np

    problems = []
    fitting = []
    for name, tensor in g.constants.items():
        if tensor.data_type != g.onnx.TensorProto.INT64:
            continue
        values = g.array(name)
        outside = values.size and (values.min() < INT32_MIN or values.max() > INT32_MAX)
        if not outside:
            fitting.append(name)
            continue
        users = g.consumers.get(name, [])
        if users and all(n.op_type == "Slice" and i in (1, 2) for n, i in users):
            fitting.append(name)        # INT64_MAX as "to the end" clamps harmlessly
            continue
        op = users[0][0].op_type if users else "(initializer)"
        problems.append(_problem(
            name, op, "INT64 constant with values outside INT32 (%d..%d): TensorRT %s clamps them" % (
                int(np.min(values)), int(np.max(values)), target.tensorrt),
            "keep such constants within INT32 (or compute them in float)"))
    notes = []
    if fitting:
        notes.append("%d INT64 constant(s) will be cast to INT32 by TensorRT %s; their values fit (e.g. %s)"
                     % (len(fitting), target.tensorrt, ", ".join(sorted(fitting)[:3])))
    for out in g.model.graph.output:
        if out.type.tensor_type.elem_type == g.onnx.TensorProto.INT64:
            problems.append(_problem(
                out.name, "(output)", "INT64 network output: TensorRT %s returns it as INT32" % target.tensorrt,
                "cast the output to int32 or float in the model, or read it as INT32 on the device", "warning"))
    return problems, notes


def _rule_io_types(g, table, target):
    """Network inputs/outputs of an element type the parser cannot map (UINT8 on TensorRT 8.2), and INT64
    inputs, which TensorRT 8.x takes as INT32."""
    allowed = table.get("io_dtypes")
    if not allowed:
        return []
    problems = []
    initializers = set(i.name for i in g.model.graph.initializer)
    values = [(v, "input") for v in g.model.graph.input if v.name not in initializers]
    values += [(v, "output") for v in g.model.graph.output]
    for value, role in values:
        if not value.type.HasField("tensor_type"):
            continue
        name = g.onnx.TensorProto.DataType.Name(value.type.tensor_type.elem_type)
        if name not in allowed:
            problems.append(_problem(
                value.name, "(%s)" % role, "%s network %s: TensorRT %s's parser takes %s" % (
                    name, role, target.tensorrt, ", ".join(allowed)),
                "make the %s float32 and convert outside the network (edgekit's preprocessing feeds float32)"
                % role if role == "input" else "cast the output to float32 or int32 in the model"))
        elif name == "INT64" and role == "input" and table.get("int64_cast_to_int32"):
            problems.append(_problem(
                value.name, "(input)", "INT64 network input: TensorRT %s takes it as INT32" % target.tensorrt,
                "feed int32 on the device, or make the input int32 in the model", "warning"))
    return problems


def _rule_dynamic(g, table, target):
    from edgekit import inputsize

    problems = []
    initializers = set(i.name for i in g.model.graph.initializer)
    props = dict((p.key, p.value) for p in g.model.metadata_props)
    for inp in g.model.graph.input:
        if inp.name in initializers:
            continue
        dims = dims_of(inp.type) or []
        dynamic = [str(d) for d in dims if not (isinstance(d, int) and d > 0)]
        if dynamic:
            chosen = inputsize.choose(dims, g.input_size, props) if inputsize.dynamic_hw(dims) else None
            hw = chosen[:2] if chosen else None
            problems.append(_problem(
                inp.name, "(input)", "dynamic dimension(s) %s in input %s%s: the TensorRT engine needs an "
                "optimisation profile (min/opt/max shapes)" % (", ".join(dynamic), inp.name, dims),
                "build with `edgekit build --shapes %s`%s, or export with fixed sizes (--batch N, --input-size "
                "HxW)" % (inputsize.profile_example(inp.name, dims, hw),
                          " (size from %s)" % chosen[2] if chosen else
                          inputsize.example_note(not inputsize.dynamic_hw(dims))),
                "warning"))
    return problems


RULES = (_rule_opset, _rule_nodes, _rule_int64, _rule_io_types, _rule_dynamic)


def table_version(table):
    return table.get("tensorrt_series", "?")


def lint_model(model, target="jetson-nano", input_size=None):
    """Lint an ONNX model (path or ModelProto) for ``target``. Returns the lint dict (see module doc).
    ``input_size`` (H, W) is the size the ``--shapes`` advice shows for a dynamic height/width."""
    import onnx

    target = get_target(target)
    if isinstance(model, (str, os.PathLike)):
        model = onnx.load(os.fspath(model))
    series = target.tensorrt_series()
    if series is None:
        return {"target": target.name, "tensorrt": None, "ok": True, "problems": [], "notes": [
            "%s runs ONNX Runtime, not TensorRT: no TensorRT lint applies" % target.name], "table": None}
    table = load_table(series)
    g = _Graph(model)
    g.input_size = input_size
    problems, notes = [], []
    for rule in RULES:
        found = rule(g, table, target)
        if isinstance(found, tuple):
            found, more = found
            notes.extend(more)
        problems.extend(found)
    return {
        "target": target.name,
        "tensorrt": target.tensorrt,
        "ok": not any(p["severity"] == "error" for p in problems),
        "problems": problems,
        "notes": notes,
        "table": table["source"],
        "nodes_checked": len(g.nodes),
    }


def format_problems(lint):
    """Lines for people: one per problem."""
    lines = []
    for p in lint["problems"]:
        lines.append("  %s %s [%s]: %s. Fix: %s" % (p["severity"], p["node"], p["op"], p["reason"], p["fix"]))
    return lines


def summary_line(lint):
    errors = sum(p["severity"] == "error" for p in lint["problems"])
    warnings = len(lint["problems"]) - errors
    if lint.get("tensorrt") is None:
        return "lint %s: no TensorRT on this target" % lint["target"]
    return "lint for %s (TensorRT %s): %s (%d error(s), %d warning(s))" % (
        lint["target"], lint["tensorrt"], "ok" if lint["ok"] else "TensorRT would reject this model",
        errors, warnings)
