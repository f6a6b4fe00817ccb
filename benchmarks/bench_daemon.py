"""Daemon throughput against the bound its own stages set (docs/design/measurement.md, "The daemon's bound").

For torchvision resnet18 and mobilenet_v2 (random weights, exported to ONNX with edgekit metadata
here) on a 640x480 MP4 written by OpenCV, with the daemon's own settings (edgekit/service/daemon.py:
``resolve_workers``, ``ort_options``), in one run, interleaved in short bursts (this box's speed
drifts by +-15% within a second, so each repetition measures everything within a few seconds and the
claims are medians over the repetitions):
  - each stage alone, in the daemon's configuration, just before and again just after the daemon's
    run (``bracket``: the bound is their mean, so a steady drift of the box's speed cancels): decode
    (cv2.VideoCapture; one decoder thread when the workers read the file themselves), preprocess,
    inference, postprocess - wall and CPU time (process_time) per frame. Inference runs as the
    daemon runs it: with N workers, N threads call the runner at once (N frames in flight);
  - the daemon on the file read losslessly (every frame, as fast as it takes them; looping): this is
    where ``workers: auto`` puts one worker per core on a CPU, and ``chunk: auto`` has each worker
    take up to 16 frames at a time (as many as fit in 0.1 s): frames/s in steady state, from 0.1 s
    after the start to the moment the stop is asked, as the slope through every publication in that
    window (``steady_fps``: frames are published in bursts, and a count between the two ends moves
    by a whole burst; that count, ``window_fps``, is printed beside). The drain after the stop, where
    a worker that is done leaves its core idle, is not what a daemon running for hours sees; with the
    drain counted, printed beside. Beside it the same daemon with one frame per worker at a time;
  - the same stages with no daemon around them: N threads, each a plain loop decode -> preprocess ->
    infer -> postprocess over its own capture (nothing handed over, nothing published): frames/s and
    CPU per frame. It separates what running the stages one after another costs (each stage runs
    cold after the others) from what the daemon's own plumbing costs;
  - the same daemon with one worker (one frame at a time, ONNX Runtime's threads on all cores), as
    it runs for a live camera, with its own bound: frames/s;
  - the one-worker daemon on the file paced at 30 fps like a camera (newest frame kept): frame age
    at publication.
CPU-only box: bound = min(cores / CPU seconds per frame over the four stages, bare runner rate).
Claims: daemon fps / bound (goal >= 0.95) for the auto daemon, the median over REPEATS repetitions with
a distribution-free 95% interval for that median (order statistics); frame age p50 / inference p50 (goal
<= 1.5x). Printed beside: the bare runner's rate (one caller and N callers), the one-worker daemon
against its own bound, the bound with inference measured with a single caller ("strict": it omits
what two inferences at once cost each other in cache and memory bandwidth), the daemon's CPU per
frame over the stages' sum, and thread spinning during inference against spinning off.
"""

import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from _common import claim, make_video, median, median_interval, write  # noqa: E402

MODELS = ("mobilenet_v2", "resnet18")
REPEATS = 16
DAEMON_SECONDS = 1.0
STEADY_AFTER = 0.1
GOAL = 0.95                       # daemon fps / bound, for both models
AGE_SECONDS = 2.0
AGE_REPEATS = 3
VIDEO_FRAMES = 120


def export(name, path):
    import onnx
    import torch
    import torchvision

    from edgekit.meta import IMAGENET_MEAN, IMAGENET_STD, ModelMeta, attach_to_onnx

    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), path, input_names=["images"], output_names=["logits"],
                      opset_version=13, dynamo=False)
    proto = onnx.load(path)
    meta = ModelMeta(task="classification", labels=["class_%d" % i for i in range(1000)],
                     input={"name": "images", "shape": [1, 3, 224, 224]},
                     preprocess={"color": "RGB", "resize": "stretch", "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
                     decoder={"type": "classification", "top_k": 5})
    attach_to_onnx(proto, meta)
    onnx.save(proto, path)
    return path


def timed_loop(fn, seconds, min_iters=10):
    """Call fn until both `seconds` and `min_iters` are reached; (wall s/iter, cpu s/iter)."""
    fn()
    n, w0, c0 = 0, time.perf_counter(), time.process_time()
    while n < min_iters or time.perf_counter() - w0 < seconds:
        fn()
        n += 1
    return (time.perf_counter() - w0) / n, (time.process_time() - c0) / n


def concurrent_loop(fn, callers, seconds):
    """`callers` threads call fn for `seconds`; (wall s per call overall, cpu s per call)."""
    import threading

    if callers == 1:
        return timed_loop(fn, seconds)
    fn()
    counts = [0] * callers
    end = time.perf_counter() + seconds

    def work(i):
        while time.perf_counter() < end:
            fn()
            counts[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(callers)]
    w0, c0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n = sum(counts)
    return (time.perf_counter() - w0) / n, (time.process_time() - c0) / n


def open_capture(video, workers):
    """The video opened as the daemon's FileSource opens it for ``workers``: several workers read
    it themselves (pull mode) with a single-threaded decoder (edgekit/sources/capture.py)."""
    import cv2

    if workers > 1 and hasattr(cv2, "CAP_PROP_N_THREADS"):
        return cv2.VideoCapture(video, cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, 1])
    return cv2.VideoCapture(video)


def measure_decode(video, workers):
    state = {"cap": open_capture(video, workers)}

    def step():
        ok, _ = state["cap"].read()
        if not ok:
            state["cap"].release()
            state["cap"] = open_capture(video, workers)
            state["cap"].read()

    result = timed_loop(step, 0.2)
    state["cap"].release()
    return result


def measure_stages(predictor, frame, video, callers):
    feed, info = predictor.preprocess(frame)
    outputs = predictor.infer(feed)
    stages = {
        "decode": measure_decode(video, callers),
        "preprocess": timed_loop(lambda: predictor.preprocess(frame), 0.1),
        "infer": concurrent_loop(lambda: predictor.infer(feed), callers, 0.3),
        "postprocess": timed_loop(lambda: predictor.postprocess(outputs, info), 0.1),
    }
    if callers > 1:
        stages["infer_one_caller"] = timed_loop(lambda: predictor.infer(feed), 0.2)
    return stages


def bracket(before, after):
    """Each stage's (wall, cpu) per frame, the mean of its measurements just before and just after the
    daemon's run: the box's speed drifts by several percent within seconds, and a bound measured on one
    side only of the run it judges carries that drift into the ratio; measured on both sides, a steady
    drift cancels."""
    return dict((k, tuple((a + b) / 2.0 for a, b in zip(before[k], after[k]))) for k in before)


def bound_of(stages, cores, infer="infer", callers=1):
    """(min(cores / CPU per frame over the four stages, bare runner rate), CPU per frame). With
    ``callers`` > 1 and inference measured with one caller, the runner's rate is callers / its time."""
    cpu = sum(stages[k][1] for k in ("decode", "preprocess", "postprocess")) + stages[infer][1]
    return min(cores / cpu, float(callers) / stages[infer][0]), cpu


class PublishTimes(object):
    """A sink that notes when each frame is published."""

    name = "publish-times"

    def __init__(self):
        self.times = []

    def submit(self, record, frame=None):
        self.times.append(time.perf_counter())
        return True

    def close(self, timeout=2.0):
        pass


def run_for(pipeline, seconds, min_frames):
    """Run the pipeline for at least `seconds` and `min_frames`; returns (frames, wall seconds,
    (publication times, time the stop was asked, time the run started)) - the last for ``steady_fps``."""
    import threading

    stop = threading.Event()
    start, first = time.perf_counter(), pipeline.frames
    clock = PublishTimes()
    pipeline.sinks.append(clock)
    asked = [None]

    def watch():
        while not stop.wait(0.02):
            if time.perf_counter() - start >= seconds and pipeline.frames - first >= min_frames:
                asked[0] = time.perf_counter()
                stop.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        pipeline.run(stop_event=stop)
    finally:
        pipeline.sinks.remove(clock)
    wall = time.perf_counter() - start
    stop.set()
    watcher.join()
    return pipeline.frames - first, wall, (clock.times, asked[0] or time.perf_counter(), start)


def steady_window(published, settle=STEADY_AFTER):
    """(publication times inside the steady window, its start, its end): from ``settle`` s after the
    start to the moment the stop is asked - what a daemon that runs for hours sees. Neither the start
    nor the drain after the stop counts: in the drain each worker finishes what it took (with chunks,
    up to 0.1 s of work) and a worker that is done leaves its core idle."""
    times, asked, start = published
    begin = start + settle
    return [t for t in times if begin < t <= asked], begin, asked


def steady_fps(published, settle=STEADY_AFTER):
    """Frames/s in the steady window: the slope of a least-squares line through (publication time,
    how many were published by then). With chunks frames are published in bursts of up to 16, one per
    worker and chunk: a count between two fixed times moves by a whole burst as a burst lands just
    inside or just outside an end (up to 8 % of a 1 s run), while the slope uses every publication.
    Equal to the count between fixed ends on a steady stream (``window_fps``, printed beside)."""
    times = steady_window(published, settle)[0]
    if len(times) < 3:
        return window_fps(published, settle)
    n = len(times)
    mean_t, mean_i = sum(times) / n, (n - 1) / 2.0
    var = sum((t - mean_t) ** 2 for t in times)
    return sum((t - mean_t) * (i - mean_i) for i, t in enumerate(times)) / var if var > 0 else 0.0


def window_fps(published, settle=STEADY_AFTER):
    """Frames published between the steady window's two fixed ends, per second (the fifth session's
    measure): the ends are fixed times, not publications, since a window from the first to the last
    publication would count a burst whose work began before it."""
    times, begin, end = steady_window(published, settle)
    return len(times) / (end - begin) if end > begin else 0.0


def measure_daemon(predictor, video, workers, chunk="auto"):
    """Throughput: every frame of the video, as fast as the daemon takes them (lossless, looping);
    ``chunk`` as the daemon resolves pipeline.chunk (auto: up to 16 frames per worker at a time when the
    workers read the file). Frames/s in steady state (``steady_fps``); CPU per frame over the run."""
    from edgekit.service.daemon import resolve_chunk
    from edgekit.service.pipeline import Pipeline
    from edgekit.sources import open_source

    source = open_source(video, realtime=False, loop=True)    # started by the pipeline, as the daemon does
    try:
        chunk = resolve_chunk(chunk, workers, source)
        pipeline = Pipeline(source, predictor, workers=workers, chunk=chunk)
        pipeline.run(max_frames=2 * workers * chunk + 2)  # warm-up
        cpu0 = time.process_time()
        frames, wall, published = run_for(pipeline, DAEMON_SECONDS, 20)
        cpu = time.process_time() - cpu0
    finally:
        source.close()
    return {"fps": steady_fps(published), "fps_window": window_fps(published), "fps_with_drain": frames / wall,
            "frames": frames, "cpu_per_frame": cpu / frames}


def measure_plain(predictor, video, workers):
    """The stages with no daemon around them: ``workers`` threads, each a plain loop over its own
    capture (decode -> preprocess -> infer -> postprocess, nothing handed between threads, nothing
    published). What one frame costs when the stages run one after another on the same cores. Each
    thread warms up, then all start together, so no frame begun before the clock starts is counted
    (at 50 fps that alone would flatter a half-second run by several percent)."""
    import threading

    counts = [0] * workers
    end = [None]
    ready, go = threading.Barrier(workers + 1), threading.Event()

    def loop(i):
        cap = [open_capture(video, workers)]

        def step():
            ok, image = cap[0].read()
            if not ok:
                cap[0].release()
                cap[0] = open_capture(video, workers)
                ok, image = cap[0].read()
            feed, info = predictor.preprocess(image)
            predictor.postprocess(predictor.infer(feed), info)

        step()
        ready.wait()
        go.wait()
        while time.perf_counter() < end[0]:
            step()
            counts[i] += 1
        cap[0].release()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    ready.wait()
    w0, c0 = time.perf_counter(), time.process_time()
    end[0] = w0 + DAEMON_SECONDS
    go.set()
    for t in threads:
        t.join()
    frames = max(1, sum(counts))
    return {"fps": frames / (time.perf_counter() - w0), "cpu_per_frame": (time.process_time() - c0) / frames}


def measure_age(predictor, video):
    """Latency: the video paced at its 30 fps like a camera (newest frame kept, the rest dropped)."""
    from edgekit.service.pipeline import Pipeline
    from edgekit.sources import open_source

    with open_source(video, realtime=True, loop=True) as source:
        pipeline = Pipeline(source, predictor, workers=1)
        pipeline.run(max_frames=3)
        run_for(pipeline, AGE_SECONDS, 20)
    samples = pipeline.samples
    return {"frame_age_p50": median(samples["frame_age"][3:]), "infer_p50": median(samples["infer"][3:]),
            "dropped": pipeline.summary()["dropped"]}


def open_daemon_predictor(path, workers, **model):
    """A Predictor with the ONNX Runtime options the daemon uses for `workers` (daemon.ort_options)."""
    from edgekit.predictor import Predictor
    from edgekit.service.daemon import ort_options

    settings = {"threads": None, "spinning": None}
    settings.update(model)
    return Predictor.open(path, backend="onnxruntime", **ort_options(settings, workers))


def bench_model(name, workdir, video, cores):
    import contextlib

    import cv2

    from edgekit.service.daemon import resolve_workers
    from edgekit.sources import open_source

    path = export(name, os.path.join(workdir, name + ".onnx"))
    workers, why = resolve_workers("auto", "onnxruntime", open_source(video, realtime=False))
    cap = cv2.VideoCapture(video)
    _, frame = cap.read()
    cap.release()
    runs = []
    with contextlib.ExitStack() as stack:
        auto = stack.enter_context(open_daemon_predictor(path, workers))
        one = stack.enter_context(open_daemon_predictor(path, 1))
        no_spin = stack.enter_context(open_daemon_predictor(path, 1, spinning=False))
        for rep in range(REPEATS):
            before = measure_stages(auto, frame, video, workers)
            daemon = measure_daemon(auto, video, workers)
            stages = bracket(before, measure_stages(auto, frame, video, workers))
            one_chunk = measure_daemon(auto, video, workers, chunk=1) if workers > 1 else daemon
            plain = measure_plain(auto, video, workers)
            one_stages = measure_stages(one, frame, video, 1)
            one_daemon = measure_daemon(one, video, 1)
            no_spin_daemon = measure_daemon(no_spin, video, 1)
            bound, cpu = bound_of(stages, cores)
            one_bound, _ = bound_of(one_stages, cores)
            run = {"stages_ms": dict((k, {"wall": w * 1e3, "cpu": c * 1e3}) for k, (w, c) in stages.items()),
                   "cpu_per_frame_ms": cpu * 1e3, "bound_fps": bound, "bare_fps": 1.0 / stages["infer"][0],
                   "daemon_fps": daemon["fps"], "ratio": daemon["fps"] / bound,
                   "ratio_with_drain": daemon["fps_with_drain"] / bound,
                   "ratio_window": daemon["fps_window"] / bound,
                   "ratio_bound_before": daemon["fps"] / bound_of(before, cores)[0],
                   "daemon_cpu_vs_stages": daemon["cpu_per_frame"] / cpu,
                   "chunk_vs_one_frame": daemon["fps"] / one_chunk["fps"],
                   "plain_loops_fps": plain["fps"], "daemon_vs_plain_loops": daemon["fps"] / plain["fps"],
                   "plain_loops_cpu_vs_stages": plain["cpu_per_frame"] / cpu,
                   "one_worker": {"daemon_fps": one_daemon["fps"], "bound_fps": one_bound,
                                  "bare_fps": 1.0 / one_stages["infer"][0], "ratio": one_daemon["fps"] / one_bound,
                                  "sequential_ceiling": 1.0 / sum(one_stages[k][0] for k in (
                                      "preprocess", "infer", "postprocess")) / one_bound,
                                  "spinning_off_fps": no_spin_daemon["fps"]},
                   "auto_vs_one_worker": daemon["fps"] / one_daemon["fps"],
                   "spinning_vs_off": one_daemon["fps"] / no_spin_daemon["fps"]}
            if workers > 1:
                strict, _ = bound_of(stages, cores, infer="infer_one_caller", callers=workers)
                run["bare_fps_one_caller"] = 1.0 / stages["infer_one_caller"][0]
                run["ratio_strict"] = daemon["fps"] / strict
            if rep < AGE_REPEATS:
                run["age"] = measure_age(one, video)
                run["age_ratio"] = run["age"]["frame_age_p50"] / run["age"]["infer_p50"]
            runs.append(run)

    def med(key, sub=None):
        values = [(r[sub] if sub else r).get(key) for r in runs]
        values = [v for v in values if v is not None]
        return median(values) if values else None

    result = {"workers": workers, "workers_why": why, "runs": runs,
              "ratio": med("ratio"), "ratio_interval": median_interval([r["ratio"] for r in runs]),
              "ratio_strict": med("ratio_strict"), "ratio_with_drain": med("ratio_with_drain"),
              "ratio_window": med("ratio_window"), "ratio_bound_before": med("ratio_bound_before"),
              "daemon_fps": med("daemon_fps"), "bound_fps": med("bound_fps"), "bare_fps": med("bare_fps"),
              "bare_fps_one_caller": med("bare_fps_one_caller"),
              "daemon_cpu_vs_stages": med("daemon_cpu_vs_stages"), "chunk_vs_one_frame": med("chunk_vs_one_frame"),
              "plain_loops_fps": med("plain_loops_fps"), "daemon_vs_plain_loops": med("daemon_vs_plain_loops"),
              "plain_loops_cpu_vs_stages": med("plain_loops_cpu_vs_stages"),
              "one_worker": dict((k, med(k, "one_worker")) for k in runs[0]["one_worker"]),
              "auto_vs_one_worker": med("auto_vs_one_worker"), "spinning_vs_off": med("spinning_vs_off"),
              "age_ratio": med("age_ratio")}
    last = runs[-1]["stages_ms"]
    print("%s: %d workers (%s); stages ms wall/cpu (last run): %s" % (
        name, workers, why, ", ".join("%s %.2f/%.2f" % (k, v["wall"], v["cpu"]) for k, v in last.items())), flush=True)
    print("%s: daemon %.1f fps, bound %.1f fps (bare runner %.1f fps with %d callers, %s with one); daemon/bound "
          "per run %s (95%% interval of the median %.3f-%.3f; >= %.2f in %d of %d runs); frames counted between "
          "fixed ends instead of the slope %.3f; bound measured before the daemon only %.3f; "
          "counting the drain at the stop as well %.3f; strict bound (inference measured with one caller) %s; "
          "daemon CPU per frame / stages' %.3f" % (
              name, result["daemon_fps"], result["bound_fps"], result["bare_fps"], workers,
              "%.1f" % result["bare_fps_one_caller"] if result["bare_fps_one_caller"] else "-",
              ", ".join("%.3f" % r["ratio"] for r in runs), result["ratio_interval"][0], result["ratio_interval"][1],
              GOAL, sum(1 for r in runs if r["ratio"] >= GOAL), len(runs), result["ratio_window"],
              result["ratio_bound_before"],
              result["ratio_with_drain"],
              "%.3f" % result["ratio_strict"] if result["ratio_strict"] else "-", result["daemon_cpu_vs_stages"]),
          flush=True)
    print("%s: %d plain loops (the stages one after another, no daemon) %.1f fps, their CPU per frame / the "
          "stages' alone %.3f; daemon / plain loops %.3f; daemon with chunks / one frame per worker at a time "
          "%.3f (paired, >1 in %d of %d runs)" % (
              name, workers, result["plain_loops_fps"], result["plain_loops_cpu_vs_stages"],
              result["daemon_vs_plain_loops"], result["chunk_vs_one_frame"],
              sum(1 for r in runs if r["chunk_vs_one_frame"] > 1), len(runs)), flush=True)
    one = result["one_worker"]
    print("%s: one worker (live sources): daemon %.1f fps, bound %.1f fps (bare %.1f), daemon/bound %.3f, sequential "
          "ceiling %.3f; %d workers / one %.2fx; spinning during inference / off %.2fx (%.1f fps off)" % (
              name, one["daemon_fps"], one["bound_fps"], one["bare_fps"], one["ratio"], one["sequential_ceiling"],
              workers, result["auto_vs_one_worker"], result["spinning_vs_off"], one["spinning_off_fps"]), flush=True)
    result["claims"] = [
        claim("daemon_%s_fps_vs_bound" % name, result["ratio"], ">= %.2f" % GOAL, ok=result["ratio"] >= GOAL),
        claim("daemon_%s_frame_age_p50_vs_infer_p50" % name, result["age_ratio"], "<= 1.5x",
              ok=result["age_ratio"] <= 1.5),
    ]
    return result


def main():
    cores = os.cpu_count() or 1
    out = {"cores": cores, "load_average_at_start": os.getloadavg(), "models": {}}
    with tempfile.TemporaryDirectory() as workdir:
        video = make_video(os.path.join(workdir, "clip.mp4"), VIDEO_FRAMES)
        for name in MODELS:
            out["models"][name] = bench_model(name, workdir, video, cores)
    write("daemon", out)
    return out


if __name__ == "__main__":
    main()
