"""Pipeline mode: the daemon's own camera loop (``edgekit.service.pipeline.Pipeline``, docs/design/pipeline.md)
timed per stage: capture, preprocess, infer, postprocess, output, end to end, and frame age at
publication. Nothing here re-implements the loop; it warms it up, runs it, and reports its samples.

Stage accounting: the Pipeline's ``end_to_end`` spans preprocess start -> output done, so per frame
end_to_end = preprocess + infer + postprocess + output + (hand-off gaps); ``capture`` is the wait for
a frame before that; ``frame_age`` spans the capture timestamp -> result ready for publication.
"""

import threading
import time

from edgekit.profiler import stats
from edgekit.profiler.run import SCHEMA_VERSION, clock_warnings, host_context
from edgekit.progress import say

STAGES = ("capture", "preprocess", "infer", "postprocess", "output")
SUMMED = ("preprocess", "infer", "postprocess", "output")       # the parts of end_to_end
REPORTED = STAGES + ("end_to_end", "frame_age")
MIN_WARMUP_FRAMES = 3


def accounting(samples):
    """Per-frame check that the parts add up to the whole: {"frames", "stage_sum_mean_ms",
    "end_to_end_mean_ms", "unaccounted_mean_ms", "unaccounted_max_ms"}."""
    n = min(len(samples.get(s) or ()) for s in SUMMED + ("end_to_end",))
    if not n:
        return None
    sums = [sum(samples[s][i] for s in SUMMED) for i in range(n)]
    gaps = [samples["end_to_end"][i] - sums[i] for i in range(n)]
    return {"frames": n, "stage_sum_mean_ms": sum(sums) / n,
            "end_to_end_mean_ms": sum(samples["end_to_end"][:n]) / n,
            "unaccounted_mean_ms": sum(gaps) / n, "unaccounted_max_ms": max(gaps)}


def pipeline_result(samples, summary, context, percentiles=stats.DEFAULT_PERCENTILES, skip=0, wall_s=None,
                    first=None):
    """The --json object for a pipeline run from the Pipeline's samples (frames after ``skip``)."""
    kept = dict((stage, list(values)[skip:]) for stage, values in samples.items())
    stage_stats = dict((s, stats.summarize(kept.get(s) or [], percentiles)) for s in REPORTED if s in kept)
    frames = len(kept.get("end_to_end") or ())
    e2e = stage_stats.get("end_to_end") or stats.summarize([], percentiles)
    result = {
        "schema_version": SCHEMA_VERSION, "kind": "pipeline", "model": summary.get("model"),
        "source": summary.get("source"), "context": context,
        "first_inference_ms": (first or {}).get("infer"), "first_frame_ms": first,
        "latency_ms": e2e, "stages": stage_stats, "frame_age_ms": stage_stats.get("frame_age"),
        "accounting": accounting(kept), "frames": frames,
        "throughput_fps": frames / wall_s if wall_s else summary.get("fps"),
        "pipeline": dict((k, summary.get(k)) for k in ("frames", "dropped", "reconnects", "fps", "errors", "overlap",
                                                       "workers", "chunk")),
    }
    warnings = stats.warnings_for(e2e, percentiles, label="end_to_end") + clock_warnings(context)
    if summary.get("errors"):
        warnings.append("%d frame(s) failed in the pipeline" % summary["errors"])
    result["warnings"] = warnings
    return result


def _first_frame(samples):
    return dict((s, values[0]) for s, values in samples.items() if values) or None


def run_pipeline(pipeline, frames=None, duration_s=3.0, min_frames=100, warmup_ms=200):
    """Warm the pipeline up (by time, at least a few frames), then run it for ``frames`` frames, or
    until both ``duration_s`` and ``min_frames`` are met (or a finite source ends).
    Returns (skip, wall_s, first_frame): samples before ``skip`` are warm-up."""
    t0 = time.perf_counter()
    pipeline.run(max_frames=1)
    first = _first_frame(pipeline.samples)
    while pipeline.frames < MIN_WARMUP_FRAMES or (time.perf_counter() - t0) * 1000.0 < warmup_ms:
        before = pipeline.frames
        pipeline.run(max_frames=pipeline.frames + 1)
        if pipeline.frames == before:     # the source ended during warm-up
            break
    skip = len(pipeline.samples.get("end_to_end") or ())
    start = time.perf_counter()
    if frames:
        pipeline.run(max_frames=skip + frames)
    else:
        stop = threading.Event()
        timer = threading.Timer(duration_s, stop.set)
        timer.daemon = True
        timer.start()
        try:
            pipeline.run(stop_event=stop)
        finally:
            timer.cancel()
        if pipeline.frames - skip < min_frames and not pipeline.source.eof:
            pipeline.run(max_frames=skip + min_frames)
    return skip, time.perf_counter() - start, first


def profile_pipeline(model, source, backend="auto", frames=None, duration_s=3.0, min_frames=100, warmup_ms=200,
                     percentiles=stats.DEFAULT_PERCENTILES, threads=None, sinks=(), predictor=None, source_obj=None,
                     telemetry=True, log=say, meta=None, workers="auto", **source_opts):
    """Profile the daemon's pipeline on ``source`` (a URI, or ``source_obj`` already built) with
    ``model`` (or a ready ``predictor``; ``meta`` overrides the model's metadata), with the daemon's
    own choices: ``workers`` (a number, or auto as ``edgekit serve`` decides it) and, on ONNX
    Runtime, the daemon's threads and spinning. Returns the --json object with ``stages``."""
    from edgekit.service.daemon import configure_runner, resolve_chunk, resolve_workers
    from edgekit.service.pipeline import Pipeline, check_concurrent

    if predictor is None:
        from edgekit.predictor import Predictor

        predictor = Predictor.open(model, backend, meta=meta)
    if source_obj is None:
        from edgekit.sources import open_source

        source_obj = open_source(source, **source_opts)
    runner = getattr(predictor.runner, "name", None)
    count, why = resolve_workers(workers, runner, source_obj)
    chunk = resolve_chunk("auto", count, source_obj)
    if getattr(predictor.runner, "is_active", True):          # a ready predictor keeps its options
        if count > 1:
            check_concurrent(predictor)
    else:                                                     # options apply when the model loads
        configure_runner(predictor, runner, {"threads": threads, "spinning": None}, count)
        if threads and runner != "onnxruntime":
            predictor.runner.options["threads"] = threads
    context = host_context()
    monitor = None
    with predictor:
        context.update(_predictor_context(predictor))
        pipeline = Pipeline(source_obj, predictor, sinks=sinks, max_samples=10 ** 6, workers=count, chunk=chunk)
        log("%s (%s)" % (pipeline.describe_mode(), why))
        log("profiling the pipeline %s -> %s: warm-up %d ms, then %s" % (
            source_obj.describe(), context.get("model") or model, warmup_ms,
            "%d frames" % frames if frames else ">= %.1f s and >= %d frames" % (duration_s, min_frames)))
        if telemetry:
            from edgekit.profiler.telemetry import Telemetry

            monitor = Telemetry().start()
        try:
            skip, wall, first = run_pipeline(pipeline, frames, duration_s, min_frames, warmup_ms)
        finally:
            if monitor:
                monitor.stop()
            source_obj.close()
        summary = pipeline.summary()
    result = pipeline_result(pipeline.samples, summary, context, percentiles, skip, wall, first)
    result["pipeline"]["workers_why"] = why
    result["config"] = {"warmup_ms": warmup_ms, "duration_s": duration_s, "min_frames": min_frames,
                        "frames": frames, "percentiles": list(percentiles), "workers": workers}
    if monitor:
        result["telemetry"] = monitor.summary()
    return result


def _predictor_context(predictor):
    info = dict(predictor.runner.describe() or {})
    meta = predictor.meta
    return {"backend": info.get("backend"), "backend_version": info.get("version"),
            "provider": (info.get("providers") or [None])[0], "threads": info.get("threads"),
            "precision": getattr(meta, "precision", None), "batch": 1,
            "input_shapes": {meta.input_name: meta.input.get("shape")} if meta is not None else None,
            "model": str(getattr(predictor.runner, "model_path", ""))}
