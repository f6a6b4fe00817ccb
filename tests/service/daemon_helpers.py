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
    return save_ultralytics(graph, path, labels, size)


def save_ultralytics(graph, path, labels, size):
    """Save ``graph`` at opset 13 with the metadata_props an Ultralytics YOLOv8 export writes."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in (("names", repr(dict(enumerate(labels)))), ("stride", "32"), ("imgsz", repr([size, size])),
                       ("task", "detect")):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return str(path)


def centroid_detector(path, size=128, labels=("person", "car"), thresh=0.7):
    """A YOLOv8-shaped ONNX detector that really looks at the image: it boxes the bright pixels
    (channel mean > ``thresh`` after the 0..1 scaling) as one square ``person`` around their
    centroid, side sqrt(area), score 0.9 (0 when there are none). Output 1 x (4+C) x 1."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    h = helper
    nodes = [h.make_node("ReduceMean", ["images"], ["gray"], axes=[1], keepdims=1),
             h.make_node("Greater", ["gray", "thresh"], ["on"]),
             h.make_node("Cast", ["on"], ["mask"], to=TensorProto.FLOAT),
             h.make_node("ReduceSum", ["mask"], ["area"], keepdims=1),
             h.make_node("Mul", ["mask", "xgrid"], ["mx"]),
             h.make_node("Mul", ["mask", "ygrid"], ["my"]),
             h.make_node("ReduceSum", ["mx"], ["sx"], keepdims=1),
             h.make_node("ReduceSum", ["my"], ["sy"], keepdims=1),
             h.make_node("Max", ["area", "one"], ["safe"]),
             h.make_node("Div", ["sx", "safe"], ["cx0"]),
             h.make_node("Div", ["sy", "safe"], ["cy0"]),
             h.make_node("Add", ["cx0", "half"], ["cx"]),
             h.make_node("Add", ["cy0", "half"], ["cy"]),
             h.make_node("Sqrt", ["area"], ["side"]),
             h.make_node("Min", ["area", "one"], ["seen"]),
             h.make_node("Mul", ["seen", "score"], ["p0"]),
             h.make_node("Mul", ["seen", "zero"], ["p1"])]
    parts = ["cx", "cy", "side", "side", "p0", "p1"][:4 + len(labels)]
    for name in set(parts):
        nodes.append(h.make_node("Reshape", [name, "shape3"], [name + "_r"]))
    nodes.append(h.make_node("Concat", [p + "_r" for p in parts], ["output0"], axis=1))
    inits = [numpy_helper.from_array(np.array(thresh, np.float32), "thresh"),
             numpy_helper.from_array(xs[None, None], "xgrid"), numpy_helper.from_array(ys[None, None], "ygrid"),
             numpy_helper.from_array(np.array(1.0, np.float32), "one"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half"),
             numpy_helper.from_array(np.array(0.9, np.float32), "score"),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
             numpy_helper.from_array(np.array([1, 1, 1], np.int64), "shape3")]
    graph = h.make_graph(nodes, "centroid", [h.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
                         [h.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + len(labels), 1])],
                         initializer=inits)
    return save_ultralytics(graph, path, labels, size)


def square_path(n, frames=70, width=256, height=192, pause=10):
    """Where the white square is on frame ``n``: left to right, a rest of ``pause`` frames at the
    far end (a person stopping before turning: the tracker's velocity settles), then back."""
    run = (frames - pause) // 2
    step = (width - 60) / float(run - 1)     # ends at x = width - 50: the square (40) stays inside
    k = n if n < run else (run - 1 if n < run + pause else frames - 1 - n)
    return int(round(10 + step * k)), height // 2 - 20


def moving_square_video(path, frames=70, width=256, height=192, fps=30, side=40):
    """An MP4 (OpenCV's writer) of a white square on a dark floor walking right, resting, walking back."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for n in range(frames):
        image = np.full((height, width, 3), 30, np.uint8)
        x, y = square_path(n, frames, width, height)
        image[y:y + side, x:x + side] = 255
        writer.write(image)
    writer.release()
    return str(path)


DOOR_RULES = """\
tracker: bytetrack
lines:
  - name: door
    points: [[0.5, 0.05], [0.5, 0.95]]
    in: left
    classes: [person]
zones:
  - name: hall
    points: [[0.6, 0.0], [1.0, 0.0], [1.0, 1.0], [0.6, 1.0]]
    classes: [person]
"""
