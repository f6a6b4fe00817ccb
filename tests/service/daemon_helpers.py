"""Helpers for the daemon tests: a tiny ONNX classifier with edgekit metadata, built in the test."""

import os
import subprocess
import sys

from standins import models

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LABELS = ["red", "green", "blue"]


def tiny_classifier(path, size=32, labels=LABELS, seed=0):
    """images 1x3xHxW -> GlobalAveragePool -> Flatten -> MatMul (seeded random) -> logits, mean/std, top-2."""
    return models.tiny_classifier(path, size=size, labels=labels, seed=seed, conv=0, head="matmul", ir_version=8,
                                  meta_batch=1, preprocess=models.MEAN_STD,
                                  decoder={"type": "classification", "top_k": 2})


def edgekit_cmd(python=None):
    return [python or sys.executable, "-m", "edgekit"]


def env_with_project(extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NOTIFY_SOCKET", None)
    env.pop("WATCHDOG_USEC", None)
    env.update(extra or {})
    return env


def run_serve(args, python=None, timeout=60, env=None):
    return subprocess.run(edgekit_cmd(python) + ["serve"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout,
                          env=env or env_with_project(), cwd=ROOT)


def ultralytics_like_yolov8(path, size=64, labels=("person", "car")):
    """An ONNX file shaped like an Ultralytics YOLOv8 export (metadata_props names/stride/imgsz, output
    1 x (4+C) x N) whose output is one fixed box: centre (32, 32), 20x20 input pixels, class 0 at 0.9.
    The graph still reads the image (0 * its mean is added), so the runner really runs."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n = 3
    out = np.zeros((1, 4 + len(labels), n), np.float32)
    out[0, :, 0] = [32, 32, 20, 20, 0.9] + [0.05] * (len(labels) - 1)
    nodes = [helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=1),
             helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
             helper.make_node("Reshape", ["nothing", "shape3"], ["flat"]),
             helper.make_node("Add", ["flat", "boxes"], ["output0"])]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero"),
             numpy_helper.from_array(np.array([1, 1, 1], np.int64), "shape3"),
             numpy_helper.from_array(out, "boxes")]
    graph = helper.make_graph(nodes, "yolo", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                                            [1, 3, size, size])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(out.shape))],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in (("names", repr(dict(enumerate(labels)))), ("stride", "32"), ("imgsz", repr([size, size])),
                       ("task", "detect")):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return str(path)
