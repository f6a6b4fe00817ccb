"""Tiny ONNX models for the stand-in tests (built with onnx.helper, a few hundred bytes)."""

import numpy as np


def tiny_classifier(path, opset=13, dynamic_batch=False, size=8, with_meta=True, seed=0, qdq=False, tail_op=None):
    """images [N,3,size,size] -> Conv 3x3 -> Relu -> GlobalAveragePool -> Flatten -> logits [N,4].
    ``qdq``: a symmetric INT8 QuantizeLinear/DequantizeLinear pair on the input, metadata precision int8.
    ``tail_op``: a one-input operator (e.g. "Hardmax") applied to the logits, same shape."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.RandomState(seed)
    batch = "N" if dynamic_batch else 1
    weight = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["images", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["logits"]),
    ]
    initializers = [weight, bias]
    if tail_op:
        nodes[-1].output[0] = "flat"
        nodes.append(helper.make_node(tail_op, ["flat"], ["logits"]))
    if qdq:
        nodes[0].input[0] = "images_dq"
        nodes[:0] = [helper.make_node("QuantizeLinear", ["images", "s", "z"], ["images_q"]),
                     helper.make_node("DequantizeLinear", ["images_q", "s", "z"], ["images_dq"])]
        initializers += [numpy_helper.from_array(np.array(0.02, np.float32), "s"),
                         numpy_helper.from_array(np.array(0, np.int8), "z")]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 4])], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    if with_meta:
        from edgekit.meta import ModelMeta, attach_to_onnx

        meta = ModelMeta(task="classification", labels=["a", "b", "c", "d"],
                         input={"name": "images", "shape": [batch, 3, size, size]},
                         preprocess={}, decoder={"type": "classification"}, precision="int8" if qdq else "fp32")
        attach_to_onnx(model, meta)
    onnx.save(model, str(path))
    return str(path)
