"""The daemon with analytics on against off, on the same video, side by side (issue 18, item 10).

Models: ONNX detectors built here, YOLOv8-shaped (Ultralytics metadata, 1 x (4+C) x K output), whose
cost is a stack of 3x3 convolutions on the 160x160 input - "light" (3 x 16 channels, the daemon at
about 100+ frames/s here, the cost of edgekit's shapes detector) and "small" (4 x 40 channels, about
a fifth of that: the order of a YOLOv8n-class detector on this CPU, or a camera's 25-30 frames/s on
a Nano's GPU) - and that really look at the frame: it finds the centroid of the
bright pixels and reports K = 20 people on a 4 x 5 grid around it, so 20 boxes move across the
frame with the synthetic source's shapes (640x480 MP4 written by OpenCV, every frame read,
looping). Analytics: bytetrack, two lines and two zones (one with loitering), the daemon's
``AnalyticsHook`` (track ids on every box, events, counts, metrics) in the publishing path; off:
the same pipeline without it. The two alternate, REPEATS times each, DAEMON_SECONDS each, with the
daemon's own settings (workers auto, ONNX Runtime options); frames/s in steady state
(bench_daemon.steady_fps). Claim: median over the pairs of fps(on) / fps(off), goal >= 0.95.
Printed beside: the analytics' own cost per frame (ms, the hook timed alone over the same frames'
detections) and the boxes per frame.
"""

import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from _common import claim, make_video, median, write  # noqa: E402
from bench_daemon import open_daemon_predictor, run_for, steady_fps  # noqa: E402

REPEATS = 10
DAEMON_SECONDS = 1.5
MODELS = (("light", 16, 3), ("small", 40, 4))      # name, channels, conv layers
GOAL = 0.95
SIZE = 160
OBJECTS = 20
RULES = {
    "tracker": "bytetrack",
    "lines": [{"name": "door", "points": [[0.5, 0.0], [0.5, 1.0]], "in": "left"},
              {"name": "hall", "points": [[0.0, 0.5], [1.0, 0.5]]}],
    "zones": [{"name": "left", "points": [[0, 0], [0.4, 0], [0.4, 1], [0, 1]]},
              {"name": "bay", "points": [[0.6, 0.2], [1, 0.2], [1, 0.8], [0.6, 0.8]], "loiter_s": 1.0}],
}


def build_model(path, size=SIZE, objects=OBJECTS, channels=16, layers=3):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper as h, numpy_helper as nh

    rng = np.random.RandomState(0)
    nodes, inits = [], []
    prev, cin = "images", 3
    for i in range(layers):
        w = nh.from_array((rng.randn(channels, cin, 3, 3) * 0.1).astype(np.float32), "w%d" % i)
        inits.append(w)
        nodes.append(h.make_node("Conv", [prev, "w%d" % i], ["c%d" % i], pads=[1, 1, 1, 1]))
        nodes.append(h.make_node("Relu", ["c%d" % i], ["r%d" % i]))
        prev, cin = "r%d" % i, channels
    nodes.append(h.make_node("ReduceMean", [prev], ["feat"], keepdims=0))        # the convs' work, x 0 below
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    nodes += [h.make_node("ReduceMean", ["images"], ["gray"], axes=[1], keepdims=1),
              h.make_node("Greater", ["gray", "thresh"], ["on"]),
              h.make_node("Cast", ["on"], ["mask"], to=TensorProto.FLOAT),
              h.make_node("ReduceSum", ["mask"], ["area"], keepdims=0),
              h.make_node("Mul", ["mask", "xgrid"], ["mx"]), h.make_node("Mul", ["mask", "ygrid"], ["my"]),
              h.make_node("ReduceSum", ["mx"], ["sx"], keepdims=0), h.make_node("ReduceSum", ["my"], ["sy"], keepdims=0),
              h.make_node("Max", ["area", "one"], ["safe"]),
              h.make_node("Div", ["sx", "safe"], ["cx"]), h.make_node("Div", ["sy", "safe"], ["cy"]),
              h.make_node("Mul", ["feat", "zero"], ["nothing"]),
              h.make_node("Add", ["cx", "nothing"], ["cxn"]),
              h.make_node("Reshape", ["cxn", "one_shape"], ["cxn_1"]),
              h.make_node("Reshape", ["cy", "one_shape"], ["cy_1"]),
              h.make_node("Reshape", ["zero", "one_shape"], ["zero_1"]),
              h.make_node("Concat", ["cxn_1", "cy_1", "zero_1", "zero_1"], ["centre"], axis=0),
              h.make_node("Reshape", ["centre", "centre_shape"], ["centre_b"]),       # 1 x 4 x 1
              h.make_node("Add", ["centre_b", "offsets"], ["boxes"]),                 # 1 x 4 x K
              h.make_node("Concat", ["boxes", "scores"], ["output0"], axis=1)]
    grid = [((i % 5) - 2) * 22.0 for i in range(objects)], [((i // 5) - 1.5) * 22.0 for i in range(objects)]
    offsets = np.zeros((1, 4, objects), np.float32)
    offsets[0, 0], offsets[0, 1] = grid
    offsets[0, 2:] = 14.0                                       # w, h in model pixels
    scores = np.zeros((1, 2, objects), np.float32)
    scores[0, 0] = 0.9
    inits += [nh.from_array(np.array(0.45, np.float32), "thresh"), nh.from_array(xs[None, None], "xgrid"),
              nh.from_array(ys[None, None], "ygrid"), nh.from_array(np.array(1.0, np.float32), "one"),
              nh.from_array(np.array(0.0, np.float32), "zero"), nh.from_array(np.array([1], np.int64), "one_shape"),
              nh.from_array(np.array([1, 4, 1], np.int64), "centre_shape"), nh.from_array(offsets, "offsets"),
              nh.from_array(scores, "scores")]
    graph = h.make_graph(nodes, "bench-detector", [h.make_tensor_value_info("images", TensorProto.FLOAT,
                                                                            [1, 3, size, size])],
                         [h.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, objects])], initializer=inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in (("names", repr({0: "person", 1: "car"})), ("stride", "32"), ("imgsz", repr([size, size])),
                       ("task", "detect")):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, path)
    return path


def measure(predictor, video, workers, analytics):
    from edgekit.analytics.config import validate_config
    from edgekit.service.analytics import AnalyticsHook
    from edgekit.service.daemon import resolve_chunk
    from edgekit.service.metrics import Metrics
    from edgekit.service.pipeline import Pipeline
    from edgekit.sources import open_source

    source = open_source(video, realtime=False, loop=True)
    hook = None
    try:
        chunk = resolve_chunk("auto", workers, source)
        metrics = Metrics()
        if analytics:
            hook = AnalyticsHook(validate_config(RULES, labels=predictor.meta.labels), camera="bench",
                                 labels=predictor.meta.labels, metrics=metrics)
        pipeline = Pipeline(source, predictor, workers=workers, chunk=chunk, metrics=metrics, analytics=hook)
        pipeline.run(max_frames=2 * workers * chunk + 2)
        frames, wall, published = run_for(pipeline, DAEMON_SECONDS, 20)
    finally:
        source.close()
    boxes = len((pipeline.last_result or {}).get("detections") or [])
    return {"fps": steady_fps(published), "frames": frames, "boxes": boxes,
            "events": hook.events_total if hook else 0, "errors": pipeline.analytics_errors}


def hook_cost(predictor, video, frames=200):
    """The analytics alone: ms per frame of AnalyticsHook.process on recorded detections."""
    import copy

    import cv2

    from edgekit.analytics.config import validate_config
    from edgekit.service.analytics import AnalyticsHook

    cap = cv2.VideoCapture(video)
    records = []
    while len(records) < frames:
        ok, image = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        result = predictor.predict(image)
        records.append(({"result": result, "ts_capture": len(records) / 30.0, "seq": len(records) + 1}, image))
    cap.release()
    hook = AnalyticsHook(validate_config(RULES, labels=predictor.meta.labels), camera="bench",
                         labels=predictor.meta.labels)
    work = [(copy.deepcopy(r), i) for r, i in records]
    t0 = time.perf_counter()
    for record, image in work:
        hook.process(record, image)
    return (time.perf_counter() - t0) * 1000.0 / len(work)


def main():
    from edgekit.service.daemon import resolve_workers
    from edgekit.sources import open_source

    workdir = tempfile.mkdtemp(prefix="bench-analytics-")
    video = make_video(os.path.join(workdir, "shapes.mp4"), 150)
    probe = open_source(video, realtime=False, loop=True)
    workers, why = resolve_workers("auto", "onnxruntime", probe)
    probe.close()
    print("workers %d (%s)" % (workers, why), flush=True)
    claims, out = [], {}
    for name, channels, layers in MODELS:
        model = build_model(os.path.join(workdir, name + ".onnx"), channels=channels, layers=layers)
        result = bench_model(name, model, video, workers)
        claims.append(result.pop("claim"))
        out[name] = result
    write("analytics", {"claims": claims, "models": out, "workers": workers, "repeats": REPEATS,
                        "seconds": DAEMON_SECONDS})


def bench_model(name, model, video, workers):
    runs = {"on": [], "off": []}
    with open_daemon_predictor(model, workers) as predictor:
        for i in range(REPEATS):
            order = ("off", "on") if i % 2 == 0 else ("on", "off")
            for mode in order:
                runs[mode].append(measure(predictor, video, workers, mode == "on"))
            print("  %s repeat %d: off %.1f fps, on %.1f fps (%d boxes, %d events)" % (
                name, i + 1, runs["off"][-1]["fps"], runs["on"][-1]["fps"], runs["on"][-1]["boxes"],
                runs["on"][-1]["events"]), flush=True)
    with open_daemon_predictor(model, 1) as predictor:
        cost_ms = hook_cost(predictor, video)
    ratios = [a["fps"] / b["fps"] for a, b in zip(runs["on"], runs["off"]) if b["fps"] > 0]
    ratio = median(ratios)
    result = {"claim": claim("%s detector: daemon fps analytics on / off (%d boxes/frame, 2 lines + 2 zones)" % (
        name, runs["on"][0]["boxes"]), ratio, ">= %.2f" % GOAL, "x", ratio >= GOAL)}
    print("context: off %.1f fps, on %.1f fps (medians); analytics %.3f ms/frame alone; %d analytics errors" % (
        median([r["fps"] for r in runs["off"]]), median([r["fps"] for r in runs["on"]]), cost_ms,
        sum(r["errors"] for r in runs["on"])), flush=True)
    result.update({"runs": runs, "ratios": ratios, "hook_ms_per_frame": cost_ms})
    return result


if __name__ == "__main__":
    main()
