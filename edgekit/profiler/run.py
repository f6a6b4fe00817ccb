"""Model runs: warm-up apart, first inference apart, then time until both the minimum duration
and the minimum count are met (docs/design/measurement.md). Sweeps over batch and threads give one run each.

    result = profile_model("model.onnx", batch=1, threads=2)      # the --json object (C9)
"""

import os
import platform
import time

from edgekit.errors import ConfigError, UserError
from edgekit.profiler import stats
from edgekit.profiler.telemetry import Telemetry, cpu_model, jetson_state
from edgekit.progress import say

SCHEMA_VERSION = 1
MIN_ITERS = 100
MIN_WARMUP_RUNS = 3


def measure(fn, warmup_ms=200, duration_s=3.0, min_iters=MIN_ITERS, timing=None):
    """Time ``fn()``: returns {"first_ms", "warmup_runs", "warmup_ms", "samples" [ms], "wall_s",
    "stages" {name: [ms]}}. ``timing()`` (optional) returns a dict of per-call stage times
    (a runner's ``last_timing``) read after each timed call."""
    clock = time.perf_counter
    t = clock()
    fn()
    first = (clock() - t) * 1000.0
    warm_start, runs = clock(), 0
    while runs < MIN_WARMUP_RUNS or (clock() - warm_start) * 1000.0 < warmup_ms:
        fn()
        runs += 1
    warm_ms = (clock() - warm_start) * 1000.0
    samples, stages = [], {}
    start = clock()
    while True:
        t0 = clock()
        fn()
        t1 = clock()
        samples.append((t1 - t0) * 1000.0)
        if timing is not None:
            for name, value in (timing() or {}).items():
                stages.setdefault(name, []).append(float(value))
        if len(samples) >= min_iters and t1 - start >= duration_s:
            break
    return {"first_ms": first, "warmup_runs": runs, "warmup_ms": warm_ms, "samples": samples,
            "wall_s": clock() - start, "stages": stages}


def parse_input_shapes(items):
    """['images:1x3x224x224', ...] -> {"images": [1, 3, 224, 224]}."""
    shapes = {}
    for item in items or ():
        name, sep, dims = str(item).rpartition(":")
        try:
            values = [int(d) for d in dims.lower().replace(",", "x").split("x") if d]
        except ValueError:
            values = []
        if not sep or not name or not values or any(v <= 0 for v in values):
            raise ConfigError("bad --input-shape %r" % item, hint="write NAME:DIMS, e.g. images:1x3x224x224")
        shapes[name] = values
    return shapes


def parse_int_list(text, flag):
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v <= 0 for v in values):
        raise ConfigError("bad %s %r" % (flag, text), hint="give positive integers like %s 1,2,4" % flag)
    return values


def host_context():
    import numpy

    from edgekit import __version__

    ctx = {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
           "python": platform.python_version(), "numpy": numpy.__version__, "edgekit": __version__,
           "os": platform.platform()}
    jetson = jetson_state()
    if jetson:
        ctx["jetson"] = jetson
    return ctx


def clock_warnings(ctx):
    jetson = ctx.get("jetson")
    if not jetson:
        return []
    pinned = (jetson.get("clocks") or {}).get("pinned")
    if pinned is False:
        return ["Jetson clocks are not pinned: run `sudo jetson_clocks` (and pick the power mode with "
                "`sudo nvpmodel -m 0`) before measuring, or numbers move with DVFS"]
    if pinned is None:
        return ["could not tell whether the Jetson clocks are pinned (jetson_clocks --show needs sudo)"]
    return []


def model_precision(model, backend, precision):
    """The precision the run measures, said out loud: ONNX Runtime runs the file as it is."""
    from edgekit.meta import read_meta

    try:
        meta = read_meta(model, required=False) if str(model).endswith(".onnx") else None
    except UserError:
        meta = None
    stored = meta.precision if meta is not None else None
    if backend in ("onnxruntime", "opencv"):
        if precision and stored and precision != stored:
            raise ConfigError("%s runs the model file as it is (%s); --precision %s cannot change that" % (
                backend, stored, precision), hint="quantize to %s first (edgekit quantize), or drop --precision"
                % precision)
        return precision or stored or "fp32"
    return precision        # TensorRT: the build decides (default fp16); describe() reports it


def profile_model(model, backend="onnxruntime", batch=1, threads=None, warmup_ms=200, duration_s=3.0,
                  min_iters=MIN_ITERS, percentiles=stats.DEFAULT_PERCENTILES, precision=None, input_shapes=None,
                  providers=None, layers=None, estimate=None, telemetry=True, runner_options=None, log=say):
    """Profile one configuration; returns the result dict (the documented --json schema, C9).
    ``layers``: top-N per-layer times (ORT profiler / TensorRT IProfiler) or None;
    ``estimate``: a target name for the latency estimate (needs onnx: desktop side)."""
    from edgekit.runners import choose_backend, open_runner

    backend, _ = choose_backend(backend, model)
    asked_precision = precision
    precision = model_precision(model, backend, precision)
    options = dict(runner_options or {})
    if threads:
        options["threads"] = threads
    if providers:
        options["providers"] = providers
    if backend == "tensorrt" and precision:
        options.setdefault("precision", precision)
    t_load = time.perf_counter()
    with open_runner(backend, model, **options) as runner:
        load_ms = (time.perf_counter() - t_load) * 1000.0
        result = profile_runner(runner, batch, warmup_ms, duration_s, min_iters, percentiles, precision,
                                input_shapes, telemetry, log)
        feed = result.pop("_feed")
    result["load_ms"] = load_ms
    if layers:
        from edgekit.profiler.layers import profile_layers

        result["layers"] = profile_layers(model, backend, feed, options, top=layers)
    if estimate:
        result["estimate"] = estimate_for(model, estimate, asked_precision, input_shapes)
    return result


def profile_runner(runner, batch=1, warmup_ms=200, duration_s=3.0, min_iters=MIN_ITERS,
                   percentiles=stats.DEFAULT_PERCENTILES, precision=None, input_shapes=None, telemetry=True, log=say):
    """Profile an already active runner (the benchmark times the very same session this way).
    Returns the result dict without load_ms (and with the feed under ``_feed``)."""
    ctx = host_context()
    feed = _feed(runner, batch, input_shapes)
    ctx.update(_runner_context(runner, precision, batch, feed))
    log("profiling %s (%s, batch %d, threads %s): warm-up %d ms, then >= %.1f s and >= %d runs" % (
        os.path.basename(str(runner.model_path)), runner.name, batch, ctx.get("threads") or "default", warmup_ms,
        duration_s, min_iters))
    monitor = Telemetry() if telemetry else None
    if monitor:
        monitor.start()
    try:
        run = measure(lambda: runner.infer(feed, check=False), warmup_ms, duration_s, min_iters,
                      timing=lambda: runner.last_timing)
    finally:
        if monitor:
            monitor.stop()
    result = _result(runner.model_path, ctx, run, batch, percentiles, None,
                     {"warmup_ms": warmup_ms, "duration_s": duration_s, "min_iters": min_iters,
                      "percentiles": list(percentiles)})
    if monitor:
        result["telemetry"] = monitor.summary()
    result["_feed"] = feed
    return result


def _feed(runner, batch, input_shapes):
    specs = runner.input_specs()
    shapes = dict(input_shapes or {})
    unknown = sorted(set(shapes) - set(s.name for s in specs))
    if unknown:
        raise ConfigError("--input-shape names %s, the model's inputs are %s" % (
            ", ".join(unknown), ", ".join(s.name for s in specs)), hint="use the model's input names")
    for spec in specs:
        given = shapes.get(spec.name)
        if given is not None:
            fixed = [d if isinstance(d, int) and d > 0 else None for d in spec.shape]
            if len(given) != len(fixed) or any(f is not None and f != g for f, g in zip(fixed, given)):
                raise ConfigError("--input-shape %s:%s does not fit the model's %s" % (
                    spec.name, "x".join(str(g) for g in given), spec.shape),
                    hint="only dynamic dimensions can be set; re-export for another size")
            continue
        if batch == 1:
            continue
        first = spec.shape[0] if spec.shape else None
        if isinstance(first, int) and first > 0 and first != batch:
            raise ConfigError("input %s has a fixed batch of %d; cannot profile batch %d" % (spec.name, first, batch),
                              hint="export with a dynamic batch (edgekit export --batch 0) or profile --batch %d"
                              % first)
    return runner.random_feed(batch=batch, shapes=shapes)


def _runner_context(runner, precision, batch, feed):
    info = dict(runner.describe() or {})
    ctx = {"backend": info.pop("backend", runner.name), "backend_version": info.pop("version", None),
           "provider": (info.pop("providers", None) or [None])[0], "threads": info.pop("threads", None),
           "precision": info.pop("precision", None) or precision or "unknown", "batch": batch,
           "input_shapes": dict((k, list(v.shape)) for k, v in feed.items()),
           "input_dtypes": dict((k, str(v.dtype)) for k, v in feed.items())}
    if info:
        ctx["runner"] = info
    return ctx


def _result(model, ctx, run, batch, percentiles, load_ms, config):
    latency = stats.summarize(run["samples"], percentiles)
    result = {
        "schema_version": SCHEMA_VERSION, "kind": "model", "model": str(model), "context": ctx, "config": config,
        "load_ms": load_ms, "first_inference_ms": run["first_ms"],
        "warmup": {"runs": run["warmup_runs"], "ms": run["warmup_ms"]},
        "latency_ms": latency, "iterations": len(run["samples"]), "wall_s": run["wall_s"],
        "throughput_fps": batch * len(run["samples"]) / run["wall_s"] if run["wall_s"] > 0 else None,
    }
    if run["stages"]:
        result["backend_timing_ms"] = dict((k, stats.summarize(v, percentiles)) for k, v in run["stages"].items())
    result["warnings"] = stats.warnings_for(latency, percentiles) + clock_warnings(ctx)
    return result


def estimate_for(model, target, precision=None, input_shapes=None):
    """The latency estimate (desktop side: needs onnx for the graph) at ``precision`` (default
    fp16: what a TensorRT build on a Jetson runs)."""
    try:
        from edgekit.desktop.export.graph import layer_costs
    except ImportError:
        raise UserError("--estimate reads the ONNX graph and needs the onnx package (desktop side)",
                        hint="pip install onnx, or run the estimate on the workstation")
    from edgekit.profiler.estimate import estimate

    if not str(model).endswith(".onnx"):
        raise ConfigError("--estimate needs an .onnx model, got %s" % model, hint="pass the ONNX file")
    return estimate(layer_costs(model, input_shapes), target, precision or "fp16")


def profile_sweep(model, batches=(1,), threads=(None,), zero_copy=(None,), **kwargs):
    """One run per (batch, threads, zero_copy); returns {"schema_version", "kind": "sweep", "runs": [...]}.
    ``zero_copy`` (TensorRT runner option: mapped host memory instead of h2d/d2h copies) lets a
    Jetson show which path is faster for a model."""
    runs, warnings = [], []
    base_options = dict(kwargs.pop("runner_options", None) or {})
    target = kwargs.pop("estimate", None)
    estimated = estimate_for(model, target, kwargs.get("precision"), kwargs.get("input_shapes")) if target else None
    for b in batches:
        for t in threads:
            for z in zero_copy:
                options = dict(base_options)
                if z is not None:
                    options["zero_copy"] = z
                run = profile_model(model, batch=b, threads=t, runner_options=options, **kwargs)
                if estimated:
                    run["estimate"] = estimated       # the graph's estimate: the same for every row
                runs.append(run)
                label = "batch %d, threads %s%s" % (b, t or "default", "" if z is None else ", zero-copy %s" % z)
                warnings += ["%s: %s" % (label, w) for w in run["warnings"]]
    return {"schema_version": SCHEMA_VERSION, "kind": "sweep", "model": str(model), "runs": runs,
            "warnings": warnings}
