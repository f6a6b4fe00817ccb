"""`edgekit profile`: how fast is this model, where does the time go, did it get slower, and how
fast will it be on a Nano.

    edgekit profile model.onnx --batch 1,4 --threads 1,2 --report run.json --plot run.png
    edgekit profile model.onnx --pipeline --source synthetic://?fps=0 --frames 300
    edgekit profile model.onnx --layers 10 --estimate jetson-nano
    edgekit profile compare base.json new.json --fail-over 5        (exit 1 on regression)
"""

from edgekit.commands import _args

HELP = "latency of a model or the whole camera pipeline; compare runs; estimate a Jetson's latency"
DESCRIPTION = (
    "Profile MODEL (`edgekit profile MODEL` is `edgekit profile run MODEL`): warm-up and first inference "
    "apart, then time until both --duration and --min-iters are met; nearest-rank percentiles, throughput, "
    "telemetry, every sample kept in --report. "
    "`edgekit profile compare BASE.json NEW.json [--fail-over PCT] [--metric p50]` prints the deltas "
    "and exits 0 (no regression), 1 (regression beyond PCT) or 2 (user error).")


def add_arguments(parser):
    sub = _args.add_actions(parser, default="run")
    add_run_arguments(_args.add_action(
        sub, parser, "run", help="profile MODEL, or with --pipeline the daemon's camera pipeline (the default "
        "action: `edgekit profile MODEL ...` is `edgekit profile run MODEL ...`)"))
    cmp_ = _args.add_action(sub, parser, "compare", help="compare two profile reports; exit 1 on a regression "
                            "beyond --fail-over")
    cmp_.add_argument("files", nargs="*", metavar="FILE", help="BASE.json NEW.json (two --report files)")
    cmp_.add_argument("--fail-over", type=float, metavar="PCT", help="exit 1 when --metric worsens by more than PCT %%")
    cmp_.add_argument("--metric", default="p50", help="statistic judged by --fail-over: p50 (default), p90, p99, "
                      "mean, max, throughput_fps ...")
    _args.add_json(cmp_, "the comparison")


def add_run_arguments(parser):
    parser.add_argument("model", metavar="MODEL", help="an .onnx or engine file")
    run = parser.add_argument_group("model runs")
    _args.add_backend(run, default="auto")
    _args.add_precision(run, help="TensorRT build precision; with onnxruntime it must match the model file")
    run.add_argument("--providers", help="ONNX Runtime execution providers, e.g. cuda,cpu (default: cpu)")
    run.add_argument("--batch", default="1", help="batch sizes, comma separated: one row each (default: 1)")
    run.add_argument("--threads", default=None, help="intra-op threads, comma separated: one row each "
                     "(default: the backend's default)")
    run.add_argument("--zero-copy", choices=("off", "on", "both"), default=None,
                     help="TensorRT: mapped host memory instead of h2d/d2h copies; `both` gives a row each")
    run.add_argument("--warmup-ms", type=float, default=200.0, help="warm-up time before timing (default: 200)")
    run.add_argument("--duration", type=float, default=3.0, help="minimum seconds of timed runs (default: 3)")
    run.add_argument("--min-iters", type=int, default=None, help="minimum timed runs (default: 100)")
    run.add_argument("--percentiles", default="50,90,95,99", help="nearest-rank percentiles (default: 50,90,95,99)")
    run.add_argument("--input-shape", action="append", metavar="NAME:DIMS",
                     help="shape of a dynamic input, e.g. images:1x3x320x320 (repeatable)")
    run.add_argument("--input-size", metavar="H[xW]", help="height[xwidth] of an image input whose size is "
                     "dynamic (default: the model's metadata, e.g. Ultralytics imgsz)")
    run.add_argument("--layers", nargs="?", type=int, const=15, default=None, metavar="N",
                     help="per-layer times, the N slowest (default N: 15)")
    _args.add_target(run, flags=("--estimate",), help="also predict the latency on this device preset from the "
                     "ONNX graph")
    run.add_argument("--no-telemetry", action="store_true", help="do not sample CPU/RSS/tegrastats during the run")
    pipe = parser.add_argument_group("pipeline mode")
    pipe.add_argument("--pipeline", action="store_true", help="profile the daemon's camera pipeline per stage")
    pipe.add_argument("--source", help="frame source for --pipeline: video file, image folder, csi://0, "
                      "v4l2:///dev/video0, rtsp://..., synthetic://?fps=0")
    _args.add_frames(pipe, help="--pipeline: exactly this many timed frames")
    _args.add_workers(pipe, help="--pipeline: frames in flight, as `edgekit serve --workers` (default auto: one "
                      "per core when every frame of the source counts, e.g. synthetic://?fps=0 or "
                      "file:///clip.mp4?realtime=0, and ONNX Runtime runs on the CPU)")
    _args.add_meta(pipe, help="--pipeline with a model that carries no edgekit metadata: task, labels, input, "
                   "preprocess, decoder")
    out = parser.add_argument_group("outputs")
    _args.add_json(out, "the result with every sample", note="the table goes to stderr")
    _args.add_report(out, "the result with every sample (schema_version 1)")
    _args.keep_json_file_spelling(parser, "edgekit profile")
    out.add_argument("--csv", metavar="FILE", help="write one row per run or stage")
    out.add_argument("--md", metavar="FILE", help="write a Markdown report")
    out.add_argument("--plot", metavar="FILE.png", help="latency histogram + CDF (stacked stages for --pipeline)")


def run(args):
    if args.action == "compare":
        return run_compare(args)
    if args.action is None:
        from edgekit.errors import ConfigError

        raise ConfigError("`edgekit profile` needs a model", hint="write `edgekit profile MODEL.onnx`, or "
                          "`edgekit profile compare BASE.json NEW.json`")
    return run_profile(args)


# -- compare -----------------------------------------------------------------------------------------
def run_compare(args):
    from edgekit.errors import ConfigError
    from edgekit.profiler import compare, report
    from edgekit.table import format_table

    if len(args.files) != 2:
        raise ConfigError("compare takes two files, got %d" % len(args.files),
                          hint="edgekit profile compare BASE.json NEW.json [--fail-over PCT]")
    base, new = (report.load_json(path) for path in args.files)
    outcome = compare.compare(base, new, metric=args.metric, fail_over=args.fail_over)
    if args.json:
        import json

        doc = dict(outcome, base=args.files[0], new=args.files[1], metric=args.metric, fail_over=args.fail_over,
                   context_differences=list(compare.context_differences(base, new)))
        print(json.dumps(doc, indent=2, sort_keys=True, default=float))
        return 1 if args.fail_over is not None and outcome["regressed"] else 0
    print(format_table(outcome["rows"], ["run", "statistic", "base", "new", "delta", "change %"], digits=3,
                       title="%s -> %s" % tuple(args.files)))
    for line in compare.context_differences(base, new):
        print("context differs: " + line)
    if outcome["unmatched"]:
        print("runs only in NEW (not compared): %s" % outcome["unmatched"])
    if args.fail_over is None:
        return 0
    if outcome["regressed"]:
        for row in outcome["regressions"]:
            print("REGRESSION: %s %s %.3f -> %.3f (%+.1f%%, limit %.1f%%)" % (
                row["run"], row["statistic"], row["base"], row["new"], row["change %"], args.fail_over))
        return 1
    print("ok: %s within %.1f%%" % (args.metric, args.fail_over))
    return 0


# -- profile -----------------------------------------------------------------------------------------
def _check_flags(args):
    from edgekit.errors import ConfigError

    if args.pipeline and not args.source:
        raise ConfigError("--pipeline needs --source", hint="e.g. --source synthetic://?fps=0 or a video file")
    if (args.source or args.meta or args.frames or args.workers) and not args.pipeline:
        raise ConfigError("--source, --frames, --meta and --workers are for --pipeline", hint="add --pipeline")
    if args.pipeline and (args.batch != "1" or (args.threads and "," in args.threads) or args.layers):
        raise ConfigError("--pipeline runs the daemon's loop at batch 1 with one thread setting, without --layers",
                          hint="profile the model alone for batch/thread sweeps and per-layer times")
    if args.zero_copy and args.backend != "tensorrt":
        raise ConfigError("--zero-copy is a TensorRT runner option", hint="add --backend tensorrt (on a Jetson)")
    if args.duration <= 0 or args.warmup_ms < 0 or (args.min_iters is not None and args.min_iters <= 0):
        raise ConfigError("--duration must be > 0, --warmup-ms >= 0 and --min-iters > 0",
                          hint="e.g. --duration 3 --min-iters 100")
    if args.layers is not None and args.layers < 0:
        raise ConfigError("--layers N must be >= 0", hint="0 shows every layer")
    if args.plot:
        if not args.plot.lower().endswith(".png"):
            raise ConfigError("--plot writes PNG: give a .png path, got %s" % args.plot, hint="e.g. --plot run.png")
        from edgekit.profiler.report import pyplot

        pyplot()                # matplotlib missing: a clear error before the run, not after


def _input_shapes(args):
    """--input-shape, plus --input-size or the model's metadata for dynamic image sizes (said on stderr)."""
    from edgekit.profiler import run as prun

    shapes = prun.parse_input_shapes(args.input_shape)
    if not str(args.model).endswith(".onnx"):
        return shapes
    from edgekit.inputsize import fill_onnx_shapes
    from edgekit.progress import say

    return fill_onnx_shapes(args.model, shapes, args.input_size, log=say)


def run_profile(args):
    import json
    import os

    from edgekit.errors import ModelError
    from edgekit.profiler import report, run as prun, stats
    from edgekit.progress import warn

    _check_flags(args)
    if not os.path.exists(args.model):
        raise ModelError("model file not found: %s" % args.model, hint="check the path")
    percentiles = stats.parse_percentiles(args.percentiles)
    min_iters = args.min_iters or prun.MIN_ITERS
    threads = prun.parse_int_list(args.threads, "--threads") if args.threads else [None]
    if args.pipeline:
        from edgekit.profiler.pipeline import profile_pipeline

        meta = None
        if args.meta:
            from edgekit.meta import load_meta_yaml

            meta = load_meta_yaml(args.meta, model=args.model)
        result = profile_pipeline(args.model, args.source, backend=args.backend, frames=args.frames, meta=meta,
                                  duration_s=args.duration, min_frames=min_iters, warmup_ms=args.warmup_ms,
                                  percentiles=percentiles, threads=threads[0], telemetry=not args.no_telemetry,
                                  workers=args.workers or "auto")
        if args.estimate:
            result["estimate"] = prun.estimate_for(args.model, args.estimate, args.precision)
    else:
        from edgekit.runners.onnxruntime import parse_providers

        kwargs = dict(backend=args.backend, warmup_ms=args.warmup_ms, duration_s=args.duration, min_iters=min_iters,
                      percentiles=percentiles, precision=args.precision,
                      input_shapes=_input_shapes(args),
                      providers=parse_providers(args.providers) if args.providers else None,
                      layers=-1 if args.layers == 0 else args.layers,      # -1: every layer
                      estimate=args.estimate, telemetry=not args.no_telemetry)
        batches = prun.parse_int_list(args.batch, "--batch")
        zero_copy = {None: [None], "off": [False], "on": [True], "both": [False, True]}[args.zero_copy]
        if len(batches) == 1 and len(threads) == 1 and len(zero_copy) == 1:
            if zero_copy[0] is not None:
                kwargs["runner_options"] = {"zero_copy": zero_copy[0]}
            result = prun.profile_model(args.model, batch=batches[0], threads=threads[0], **kwargs)
        else:
            result = prun.profile_sweep(args.model, batches=batches, threads=threads, zero_copy=zero_copy, **kwargs)
    for line in result.get("warnings") or ():
        warn(line)
    table = report.text(result, layers_n=args.layers)
    if args.json:
        import sys

        sys.stderr.write(table + "\n")
        print(json.dumps(result, indent=2, sort_keys=True, default=float))
    else:
        print(table)
    if args.report:
        report.write_json(args.report, result)
    if args.csv:
        report.write_csv(args.csv, result)
    if args.md:
        report.write_markdown(args.md, result, layers_n=args.layers)
    if args.plot:
        report.plot(args.plot, result)
    return 0
