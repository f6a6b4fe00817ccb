"""Per-layer costs of an ONNX graph: FLOPs, parameters and bytes moved (docs/profiling.md, "The Jetson estimate").

    costs = layer_costs("model.onnx")            # or an onnx.ModelProto
    summarize(costs) -> {"flops", "params", "by_op": {op: {"count", "flops", "params"}}}

Shapes come from ``onnx.shape_inference``; symbolic or unknown dimensions are set from
``input_shapes`` ({input name: [dims]}) or, for a leading batch dimension, 1.
FLOPs count a multiply-add as 2 (conv, gemm, matmul); element-wise ops count one per output
element; pools one per window element. ``weight_bytes`` are the node's initializer inputs as
stored; ``input_bytes``/``output_bytes`` its activations at their stored dtypes. The element
counts (``input_elements``, ``output_elements``) let the estimate re-price bytes at another precision;
convolutions also carry ``kernel``, ``stride`` and ``group`` (the estimate's kernel classes need them).
"""

import os

ELEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}


def _prod(dims):
    out = 1
    for d in dims:
        out *= int(d)
    return out


def _load(model_or_path):
    import onnx

    from edgekit.errors import ModelError

    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    path = os.fspath(model_or_path)
    if not os.path.exists(path):
        raise ModelError("model file not found: %s" % path, hint="check the path")
    try:
        return onnx.load(path)
    except Exception as exc:   # onnx raises DecodeError and friends
        raise ModelError("cannot read %s as ONNX: %s" % (path, exc), hint="check that it is a complete .onnx file")


def _fix_inputs(model, input_shapes):
    """Pin the graph inputs' dims (given shapes, else 1 for a symbolic batch)."""
    from edgekit.errors import ModelError

    initializers = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in initializers:
            continue
        dims = inp.type.tensor_type.shape.dim
        wanted = (input_shapes or {}).get(inp.name)
        if wanted is not None:
            if len(wanted) != len(dims):
                raise ModelError("input %s has %d dimensions, --input-shape gave %d" % (inp.name, len(dims), len(wanted)),
                                 hint="give all dimensions, e.g. %s:1x3x224x224" % inp.name)
            for d, v in zip(dims, wanted):
                d.dim_value = int(v)
            continue
        for i, d in enumerate(dims):
            if not d.HasField("dim_value") or d.dim_value <= 0:
                if i == 0:
                    d.dim_value = 1
                else:
                    raise ModelError("input %s has a dynamic dimension %d" % (inp.name, i),
                                     hint="give its shape with --input-shape %s:DIMS" % inp.name)


def _shapes(model):
    """{tensor name: (dims list, elem type)} after shape inference."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    table = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        table[vi.name] = (dims, tt.elem_type)
    for init in model.graph.initializer:
        table[init.name] = (list(init.dims), init.data_type)
    return table


def constant_outputs(graph):
    """{output name: element count} of the graph's Constant nodes (tensor, sparse or list values)."""
    out = {}
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
            out[node.output[0]] = constant_elements(node)
    return out


def constant_elements(node):
    """Elements a Constant node holds: ``value`` / ``sparse_value`` tensors, ``value_float(s)`` /
    ``value_int(s)`` / ``value_string(s)``."""
    total = 0
    for a in node.attribute:
        if a.name == "value":
            total += _prod(a.t.dims)
        elif a.name == "sparse_value":
            total += _prod(a.sparse_tensor.dims)
        elif a.name in ("value_float", "value_int", "value_string"):
            total += 1
        elif a.name in ("value_floats", "value_ints", "value_strings"):
            total += len(a.floats) + len(a.ints) + len(a.strings)
    return total


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            if a.type == 2:       # INT
                return a.i
            if a.type == 7:       # INTS
                return list(a.ints)
            if a.type == 1:
                return a.f
            if a.type == 3:
                return a.s.decode()
    return default


def _numel(shape):
    if shape is None or any(d is None for d in shape[0]):
        return None
    return _prod(shape[0])


def _bytes(shape):
    n = _numel(shape)
    return None if n is None else n * ELEM_BYTES.get(shape[1], 4)


# -- FLOPs per op (a table, not an if-chain) ------------------------------------------------------
def _conv(node, ins, outs):
    w, y = ins[1], outs[0]           # w: (Cout, Cin/group, k...)
    if w is None or _numel(y) is None:
        return None
    cin_per_group, kernel = w[0][1], _prod(w[0][2:])
    return 2 * _numel(y) * cin_per_group * kernel


def _conv_transpose(node, ins, outs):
    x, w = ins[0], ins[1]            # w: (Cin, Cout/group, k...)
    if w is None or _numel(x) is None:
        return None
    return 2 * _numel(x) * w[0][1] * _prod(w[0][2:])


def _gemm(node, ins, outs):
    a, y = ins[0], outs[0]
    if a is None or _numel(y) is None:
        return None
    k = a[0][0] if _attr(node, "transA", 0) else a[0][-1]
    return 2 * _numel(y) * k


def _matmul(node, ins, outs):
    a, y = ins[0], outs[0]
    if a is None or _numel(y) is None:
        return None
    return 2 * _numel(y) * a[0][-1]


def _pool(node, ins, outs):
    kernel = _attr(node, "kernel_shape") or [1]
    n = _numel(outs[0])
    return None if n is None else n * _prod(kernel)


def _global_pool(node, ins, outs):
    return _numel(ins[0])


def _per_output(factor):
    def flops(node, ins, outs):
        n = _numel(outs[0]) if outs else None
        return None if n is None else factor * n
    return flops


FLOPS = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "Gemm": _gemm, "MatMul": _matmul,
    "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _global_pool, "GlobalMaxPool": _global_pool,
    "BatchNormalization": _per_output(2), "InstanceNormalization": _per_output(5),
    "LayerNormalization": _per_output(5), "Softmax": _per_output(5), "Resize": _per_output(4),
    "Upsample": _per_output(4),
}
# ops that move or describe data but compute nothing
NO_FLOPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Constant", "Shape",
            "ConstantOfShape", "Cast", "Gather", "Slice", "Concat", "Range", "Expand", "Transpose",
            "Split", "Pad"}


def _flops(node, ins, outs):
    fn = FLOPS.get(node.op_type)
    if fn is not None:
        return fn(node, ins, outs)
    if node.op_type in NO_FLOPS:
        return 0
    return _per_output(1)(node, ins, outs)     # element-wise and anything unknown: one per output


def layer_costs(model_or_path, input_shapes=None):
    """One dict per node in graph order: name, op, flops, params, weight_bytes, input_bytes,
    output_bytes, input_elements, output_elements (None where a shape stayed unknown)."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(_load(model_or_path))
    _fix_inputs(model, input_shapes)
    table = _shapes(model)
    # weights: initializers and Constant-node outputs (paddle2onnx and tf2onnx store weights as Constants)
    initializers = {i.name for i in model.graph.initializer} | set(constant_outputs(model.graph))
    costs = []
    for index, node in enumerate(model.graph.node):
        ins = [table.get(n) if n else None for n in node.input]
        outs = [table.get(n) for n in node.output]
        weights = [table.get(n) for n in node.input if n in initializers]
        acts = [table.get(n) if n else None for n in node.input if n and n not in initializers]
        flops = _flops(node, ins, outs)
        act_in = [_numel(s) for s in acts]
        act_out = [_numel(s) for s in outs]
        costs.append({
            "name": node.name or "%s_%d" % (node.op_type, index),
            "op": node.op_type,
            "flops": int(flops) if flops is not None else None,
            "params": sum(_numel(w) or 0 for w in weights),
            "weight_bytes": sum(_bytes(w) or 0 for w in weights),
            "input_bytes": _sum_or_none([_bytes(s) for s in acts]),
            "output_bytes": _sum_or_none([_bytes(s) for s in outs]),
            "input_elements": _sum_or_none(act_in),
            "output_elements": _sum_or_none(act_out),
            "output_shape": outs[0][0] if outs and outs[0] is not None else None,
            "inputs": [n for n in node.input if n and n not in initializers],
            "outputs": [n for n in node.output if n],
        })
        if node.op_type in ("Conv", "ConvTranspose") and len(ins) > 1 and ins[1] is not None:
            costs[-1].update(kernel=list(ins[1][0][2:]), group=_attr(node, "group", 1) or 1,
                             stride=_attr(node, "strides") or [1] * len(ins[1][0][2:]))
    return costs


def _sum_or_none(values):
    if any(v is None for v in values):
        return None
    return sum(values)


def summarize(costs):
    """Totals and a per-op breakdown: {"flops", "params", "weight_bytes", "layers", "by_op": {op: {...}}}."""
    by_op = {}
    for c in costs:
        entry = by_op.setdefault(c["op"], {"count": 0, "flops": 0, "params": 0})
        entry["count"] += 1
        entry["flops"] += c["flops"] or 0
        entry["params"] += c["params"] or 0
    return {"flops": sum(c["flops"] or 0 for c in costs), "params": sum(c["params"] or 0 for c in costs),
            "weight_bytes": sum(c["weight_bytes"] or 0 for c in costs), "layers": len(costs),
            "by_op": by_op, "unknown_shapes": sum(1 for c in costs if c["flops"] is None)}


def gflops(costs):
    return sum(c["flops"] or 0 for c in costs) / 1e9

