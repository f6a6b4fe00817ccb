"""The tests' tiny ONNX classifier (built with onnx.helper, a few hundred bytes) and its presets.

One builder for every test and benchmark that needs "a small classifier with edgekit metadata";
graphs built to exercise one rule (a lint check, a shape, a plugin op) stay in their tests.
Runs on Python 3.6 too (the device-side test tier imports it).
"""

import numpy as np

RGB = ("red", "green", "blue")
STRETCH_RGB = {"color": "RGB", "resize": "stretch"}
MEAN_STD = {"color": "RGB", "resize": "stretch", "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


def tiny_classifier(path, opset=13, dynamic_batch=False, size=8, with_meta=True, seed=0, qdq=False,
                    labels=("a", "b", "c", "d"), conv=None, head=None, weights=None, scale=1.0, named=False,
                    ir_version=7, precision=None, preprocess=None, decoder=None, meta_batch=None, tail_op=None):
    """images [N,3,size,size] -> [Conv 3x3 -> Relu] -> GlobalAveragePool -> Flatten -> [head] -> logits.

    ``conv``: the Conv's output channels; None means one per label when there is no head, else no Conv;
    0: no Conv (GlobalAveragePool on the image: the features are its mean colour).
    ``head``: None (the Conv's channels are the logits); "matmul": MatMul by ``weights`` [features, classes]
    (default seeded random; ``np.eye(3)`` without a Conv: logits = the image's mean colour per class; a
    matrix whose rows do not match the features -- a model ONNX Runtime refuses to load -- keeps one logit
    per label);
    "gemm": Gemm (transB) with seeded random weights and bias.
    Random tensors come from RandomState(seed) in layer order, times ``scale``.
    ``qdq``: a symmetric INT8 QuantizeLinear/DequantizeLinear pair on the input, metadata precision int8.
    ``named``: nodes named conv, relu, gap, flatten, fc. ``ir_version`` None: onnx's default.
    ``meta_batch``: the batch dimension the metadata records (default: the graph's).
    ``tail_op``: a one-input operator (e.g. "Hardmax") applied to the logits, same shape.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.RandomState(seed)

    def random(tensor, shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * scale, tensor)

    def name(node):
        return node if named else None

    classes = len(labels)
    batch = "N" if dynamic_batch else 1
    if conv is None:
        conv = 0 if head else classes
    nodes, initializers, features = [], [], 3
    if conv:
        initializers += [random("w", (conv, 3, 3, 3)), random("b", (conv,))]
        nodes += [helper.make_node("Conv", ["images", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                   name=name("conv")),
                  helper.make_node("Relu", ["c"], ["r"], name=name("relu"))]
        features = conv
    nodes += [helper.make_node("GlobalAveragePool", ["r" if conv else "images"], ["g"], name=name("gap")),
              helper.make_node("Flatten", ["g"], ["logits" if head is None else "flat"], name=name("flatten"))]
    if head == "matmul":
        if weights is None:
            w = rng.standard_normal((classes, features)).astype(np.float32).T * scale
        else:
            w = np.asarray(weights, np.float32)
            classes = w.shape[1] if w.shape[0] == features else classes
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(w), "fc_w"))
        nodes.append(helper.make_node("MatMul", ["flat", "fc_w"], ["logits"], name=name("fc")))
    elif head == "gemm":
        initializers += [random("fc_w", (classes, features)), random("fc_b", (classes,))]
        nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name=name("fc"), transB=1))
    elif head is not None:
        raise ValueError("head must be None, 'matmul' or 'gemm', got %r" % (head,))
    if tail_op:
        nodes[-1].output[0] = "pre_tail"
        nodes.append(helper.make_node(tail_op, ["pre_tail"], ["logits"], name=name("tail")))
    if qdq:
        nodes[0].input[0] = "images_dq"
        nodes[:0] = [helper.make_node("QuantizeLinear", ["images", "s", "z"], ["images_q"]),
                     helper.make_node("DequantizeLinear", ["images_q", "s", "z"], ["images_dq"])]
        initializers += [numpy_helper.from_array(np.array(0.02, np.float32), "s"),
                         numpy_helper.from_array(np.array(0, np.int8), "z")]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if ir_version is not None:
        model.ir_version = ir_version
    if with_meta:
        from edgekit.meta import ModelMeta, attach_to_onnx

        shape = [batch if meta_batch is None else meta_batch, 3, size, size]
        meta = ModelMeta(task="classification", labels=list(labels), input={"name": "images", "shape": shape},
                         preprocess=dict(preprocess or {}), decoder=dict(decoder or {"type": "classification"}),
                         precision=precision or ("int8" if qdq else "fp32"))
        attach_to_onnx(model, meta)
    onnx.save(model, str(path))
    return str(path)


def colour_classifier(path, scale=1.0, labels=RGB, **options):
    """No Conv, a MatMul by ``np.eye(3) * scale``: logits = the mean colour per class (red, green, blue),
    16x16 RGB stretched, top-3. ``scale`` changes the weights (so the file's sha256), not the ranking."""
    options = dict(dict(size=16, ir_version=8, meta_batch=1, preprocess=STRETCH_RGB,
                        decoder={"type": "classification", "top_k": 3}), **options)
    return tiny_classifier(path, labels=labels, conv=0, head="matmul", weights=np.eye(3) * scale, **options)
