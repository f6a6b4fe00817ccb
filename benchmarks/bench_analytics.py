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
(bench_daemon.steady_fps). Claim: median over the pairs of fps(on) / fps(off), goal >= 0.95, with a
distribution-free 95% interval for that median (order statistics, _common.median_interval; for 10
pairs the 2nd smallest and 2nd largest ratio).

Second claim: the hook alone, ``AnalyticsHook.process`` on 200 recorded frames of the small detector
(20 boxes a frame, the same 2 lines + 2 zones), CPU ms per frame in one process (one core), goal
<= 0.5 ms. Each timing runs in a fresh child process; they alternate with the same timing of the
tree before the rules were made cheap (BASELINE, extracted with ``git archive`` when this is a git
checkout that has it: the old code path, on the same detections); median over HOOK_REPEATS each.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from _common import ROOT, claim, make_video, median, median_interval, write  # noqa: E402
from bench_daemon import open_daemon_predictor, run_for, steady_fps  # noqa: E402

REPEATS = 10
DAEMON_SECONDS = 1.5
MODELS = (("light", 16, 3), ("small", 40, 4))      # name, channels, conv layers
GOAL = 0.95
HOOK_GOAL_MS = 0.5
HOOK_REPEATS = 5
BASELINE = "bc87cf6"           # the merge of issue 18, before the analytics were made cheap
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


def record_detections(predictor, video, path, frames=200):
    """The detector's results on ``frames`` frames of the video, as the hook gets them, to JSON."""
    import cv2

    cap = cv2.VideoCapture(video)
    records, shape = [], None
    while len(records) < frames:
        ok, image = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        shape = list(image.shape)
        records.append({"result": predictor.predict(image), "ts_capture": len(records) / 30.0,
                        "seq": len(records) + 1})
    cap.release()
    with open(path, "w") as handle:
        json.dump({"records": records, "shape": shape, "labels": list(predictor.meta.labels)}, handle, default=float)
    return path


def hook_child(records_path):
    """In a child process (``--hook-child``): CPU ms per frame of AnalyticsHook.process over the
    recorded frames, with whichever edgekit is first on sys.path (metrics on, no sinks)."""
    import copy

    import numpy as np

    from edgekit.analytics.config import validate_config
    from edgekit.service.analytics import AnalyticsHook
    from edgekit.service.metrics import Metrics

    with open(records_path) as handle:
        data = json.load(handle)
    image = np.zeros(data["shape"], np.uint8)
    labels = data["labels"]
    warm = AnalyticsHook(validate_config(RULES, labels=labels), camera="bench", labels=labels, metrics=Metrics())
    for record in copy.deepcopy(data["records"][:20]):
        warm.process(record, image)
    hook = AnalyticsHook(validate_config(RULES, labels=labels), camera="bench", labels=labels, metrics=Metrics())
    work = copy.deepcopy(data["records"])
    t0 = time.process_time()
    for record in work:
        hook.process(record, image)
    return (time.process_time() - t0) * 1000.0 / len(work)


def baseline_tree(workdir, ref=BASELINE):
    """The edgekit package of ``ref`` extracted under ``workdir``, or None (not a git checkout, no such commit)."""
    target = os.path.join(workdir, "baseline")
    try:
        archive = subprocess.run(["git", "-C", ROOT, "archive", ref, "edgekit"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, check=True).stdout
        os.makedirs(target)
        subprocess.run(["tar", "-x", "-C", target], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return target


def time_hook(tree, records_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([tree] + [p for p in os.environ.get("PYTHONPATH", "").split(
        os.pathsep) if p]))
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--hook-child", tree, records_path], env=env,
                         stdout=subprocess.PIPE, check=True).stdout
    return float(out.decode().strip().splitlines()[-1])


def bench_hook(predictor, video, workdir):
    """The hook alone, this tree against BASELINE alternating (each run a fresh process)."""
    records = record_detections(predictor, video, os.path.join(workdir, "records.json"))
    trees = {"now": ROOT}
    old = baseline_tree(workdir)
    if old is not None:
        trees["baseline"] = old
    runs = dict((name, []) for name in trees)
    for i in range(HOOK_REPEATS):
        for name in (sorted(trees) if i % 2 == 0 else sorted(trees, reverse=True)):
            runs[name].append(time_hook(trees[name], records))
    now = median(runs["now"])
    result = {"runs_ms": runs, "ms": now, "interval": median_interval(runs["now"]), "baseline": BASELINE if old else None}
    if old is not None:
        result["baseline_ms"] = median(runs["baseline"])
        print("context: hook alone %.3f ms/frame now, %.3f ms/frame at %s (runs now %s, then %s)" % (
            now, result["baseline_ms"], BASELINE, ", ".join("%.3f" % v for v in runs["now"]),
            ", ".join("%.3f" % v for v in runs["baseline"])), flush=True)
    result["claim"] = claim("analytics hook CPU ms per frame at 20 boxes, 2 lines + 2 zones, one core%s" % (
        " (%s: %.3f)" % (BASELINE, result["baseline_ms"]) if old else ""), now, "<= %.1f ms" % HOOK_GOAL_MS, " ms",
        now <= HOOK_GOAL_MS)
    return result


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
        if name == "small":
            with open_daemon_predictor(model, 1) as predictor:
                hook = bench_hook(predictor, video, workdir)
            claims.append(hook.pop("claim"))
            out["hook"] = hook
    write("analytics", {"claims": claims, "models": out, "workers": workers, "repeats": REPEATS,
                        "seconds": DAEMON_SECONDS, "load_average_at_start": os.getloadavg()})


def bench_model(name, model, video, workers):
    runs = {"on": [], "off": []}
    with open_daemon_predictor(model, workers) as predictor:
        for i in range(REPEATS):
            order = ("off", "on") if i % 2 == 0 else ("on", "off")
            for mode in order:
                runs[mode].append(measure(predictor, video, workers, mode == "on"))
            print("  %s pair %d: off %.1f fps, on %.1f fps (%d boxes, %d events)" % (
                name, i + 1, runs["off"][-1]["fps"], runs["on"][-1]["fps"], runs["on"][-1]["boxes"],
                runs["on"][-1]["events"]), flush=True)
    ratios = [a["fps"] / b["fps"] for a, b in zip(runs["on"], runs["off"]) if b["fps"] > 0]
    ratio = median(ratios)
    low, high = median_interval(ratios)
    result = {"claim": claim("%s detector: daemon fps analytics on / off (%d boxes/frame, 2 lines + 2 zones)" % (
        name, runs["on"][0]["boxes"]), ratio, ">= %.2f" % GOAL, "x", ratio >= GOAL)}
    print("context: %s per pair %s (95%% interval of the median %.3f-%.3f; >= %.2f in %d of %d pairs); off %.1f fps, "
          "on %.1f fps (medians); %d analytics errors" % (
              name, ", ".join("%.3f" % r for r in ratios), low, high, GOAL, sum(1 for r in ratios if r >= GOAL),
              len(ratios), median([r["fps"] for r in runs["off"]]), median([r["fps"] for r in runs["on"]]),
              sum(r["errors"] for r in runs["on"])), flush=True)
    result.update({"runs": runs, "ratios": ratios, "ratio_interval": [low, high]})
    return result


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--hook-child":
        sys.path.insert(0, sys.argv[2])
        print("%.6f" % hook_child(sys.argv[3]))
    else:
        main()
