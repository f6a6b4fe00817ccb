"""Per-layer times: ONNX Runtime's profiler on any machine, TensorRT's IProfiler on the board.

ONNX Runtime: a second session with ``enable_profiling`` (the runner's ``profile=True`` option)
runs the same feed; its Chrome-trace JSON has one ``<node>_kernel_time`` event per node per run
(``cat: "Node"``, ``dur`` in microseconds, ``args.op_name``, ``args.provider``). The profiled run is
kept apart from the latency run because profiling itself adds overhead.

TensorRT: an ``IProfiler`` subclass set on the runner's execution context (``runner.context.profiler``)
receives ``report_layer_time(layer_name, ms)`` for every layer after each synchronous inference.
Checked here against a stand-in of those two calls; not verified on hardware.
"""

import json
import os
import shutil
import tempfile

DEFAULT_RUNS = 30
KERNEL_SUFFIX = "_kernel_time"


def parse_ort_profile(events, skip_first=True):
    """ORT trace events (list) -> {"runs": n, "total_ms", "layers": [{"name", "op", "provider", "ms",
    "calls", "share"}]}, ms the mean per run, slowest first. ``skip_first`` drops the first run
    (allocations and first-touch, reported apart as first inference)."""
    run_spans = sorted((e["ts"], e["ts"] + e.get("dur", 0)) for e in events
                       if e.get("cat") == "Session" and e.get("name") == "model_run")
    skip = run_spans[0] if skip_first and len(run_spans) > 1 else None
    runs = len(run_spans) - (1 if skip else 0)
    nodes = {}
    for e in events:
        name = e.get("name", "")
        if e.get("cat") != "Node" or not name.endswith(KERNEL_SUFFIX):
            continue
        if skip and skip[0] <= e.get("ts", 0) <= skip[1]:
            continue
        node = name[:-len(KERNEL_SUFFIX)]
        args = e.get("args") or {}
        entry = nodes.setdefault(node, {"name": node, "op": args.get("op_name"),
                                        "provider": args.get("provider"), "us": 0.0, "calls": 0})
        entry["us"] += float(e.get("dur", 0))
        entry["calls"] += 1
    return _rank(nodes.values(), max(runs, 1), runs)


def _rank(entries, divisor, runs):
    layers = []
    for entry in entries:
        ms = entry.pop("us") / 1000.0 / divisor if "us" in entry else entry.pop("total_ms") / divisor
        entry["ms"] = ms
        layers.append(entry)
    layers.sort(key=lambda x: -x["ms"])
    total = sum(x["ms"] for x in layers)
    for x in layers:
        x["share"] = x["ms"] / total if total > 0 else 0.0
    return {"runs": runs, "total_ms": total, "layers": layers}


def keep_top(report, n):
    """Keep the n slowest layers (all when n is None or <= 0); adds ``others_ms``."""
    if not n or n <= 0 or len(report["layers"]) <= n:
        return report
    kept, rest = report["layers"][:n], report["layers"][n:]
    out = dict(report)
    out["layers"] = kept
    out["others_ms"] = sum(x["ms"] for x in rest)
    out["others_count"] = len(rest)
    return out


def ort_layers(model, feed, options=None, runs=DEFAULT_RUNS):
    """Run 1 + ``runs`` profiled inferences in a fresh ORT session; returns parse_ort_profile()."""
    from edgekit.runners import open_runner

    workdir = tempfile.mkdtemp(prefix="edgekit-ortprof-")
    opts = dict(options or {})
    opts.update(profile=True, profile_prefix=os.path.join(workdir, "ort"))
    try:
        with open_runner("onnxruntime", model, **opts) as runner:
            for _ in range(runs + 1):
                runner.infer(feed, check=False)
            path = runner.end_profiling()
            with open(path) as handle:
                events = json.load(handle)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return parse_ort_profile(events)


# -- TensorRT ---------------------------------------------------------------------------------------
def make_trt_profiler(trt):
    """An IProfiler subclass for the given tensorrt module that sums time per layer."""

    class LayerProfiler(trt.IProfiler):
        def __init__(self):
            trt.IProfiler.__init__(self)
            self.totals = {}
            self.calls = {}

        def report_layer_time(self, layer_name, ms):
            self.totals[layer_name] = self.totals.get(layer_name, 0.0) + float(ms)
            self.calls[layer_name] = self.calls.get(layer_name, 0) + 1

    return LayerProfiler()


def trt_layers(runner, feed, runs=DEFAULT_RUNS, trt=None):
    """Attach a LayerProfiler to an active TensorRT runner's context, run, and aggregate."""
    if trt is None:
        import tensorrt as trt
    context = getattr(runner, "context", None)
    if context is None:
        from edgekit.errors import BackendUnavailable

        raise BackendUnavailable("this TensorRT runner exposes no execution context for IProfiler",
                                 hint="update edgekit's TensorRT runner")
    profiler = make_trt_profiler(trt)
    context.profiler = profiler
    try:
        for _ in range(runs):
            runner.infer(feed, check=False)
    finally:
        context.profiler = None
    entries = [{"name": name, "op": None, "provider": "tensorrt", "total_ms": total,
                "calls": profiler.calls[name]} for name, total in profiler.totals.items()]
    return _rank(entries, max(runs, 1), runs)


def profile_layers(model, backend, feed, options=None, top=None, runs=DEFAULT_RUNS):
    """Per-layer report for a model on a backend, cut to the ``top`` slowest layers."""
    if backend == "onnxruntime":
        report = ort_layers(model, feed, options, runs)
    elif backend == "tensorrt":
        from edgekit.runners import open_runner

        with open_runner("tensorrt", model, **(options or {})) as runner:
            runner.infer(feed, check=False)
            report = trt_layers(runner, feed, runs)
    else:
        from edgekit.errors import ConfigError

        raise ConfigError("--layers needs the onnxruntime or tensorrt backend, not %s" % backend,
                          hint="profile with --backend onnxruntime for per-layer times")
    report["backend"] = backend
    return keep_top(report, top)
