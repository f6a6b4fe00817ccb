"""Reports: a table for people, JSON for machines (every sample, versioned), CSV, Markdown, plots.

JSON schema (schema_version 1) — one run (``kind``: "model" or "pipeline"):
  schema_version, kind, model, context {backend, backend_version, provider, threads, precision,
  batch, input_shapes, cpu_model, cpu_count, python, numpy, edgekit, jetson {model, l4t,
  power_mode, clocks {pinned, ...}}}, config, load_ms, first_inference_ms, warmup {runs, ms},
  latency_ms {count, min, mean, std, p50, p90, p95, p99, max, samples [every sample, ms]},
  throughput_fps, iterations, wall_s, backend_timing_ms {h2d, compute, d2h: summary} (TensorRT),
  telemetry {cpu_pct_mean, cpu_pct_max, rss_mb_max, tegrastats {...}}, layers {runs, total_ms,
  layers [{name, op, provider, ms, calls, share}]}, estimate {target, precision, latency_ms,
  layers, method, error_note}, warnings [text].
  Pipeline runs add: stages {capture, preprocess, infer, postprocess, output, end_to_end,
  frame_age: summary}, frame_age_ms, first_frame_ms {stage: ms}, accounting, pipeline {frames,
  dropped, fps, ...}; their latency_ms is end_to_end.
A sweep is {schema_version, kind: "sweep", model, runs: [run, ...], warnings}.
"""

import csv
import io

from edgekit.errors import ConfigError, UserError
from edgekit.fsutil import atomic_write_json, atomic_write_text
from edgekit.profiler import stats
from edgekit.table import format_markdown, format_table

SCHEMA_VERSION = 1
KINDS = ("model", "pipeline", "sweep")


def runs_of(result):
    return result["runs"] if result.get("kind") == "sweep" else [result]


def _pcts(result):
    return [p for p in (result.get("config") or {}).get("percentiles") or stats.DEFAULT_PERCENTILES]


def _run_rows(result):
    rows = []
    for run in runs_of(result):
        lat, ctx = run["latency_ms"], run.get("context") or {}
        row = {"batch": ctx.get("batch"), "threads": ctx.get("threads"),
               "zero-copy": (ctx.get("runner") or {}).get("zero_copy"), "first ms": run.get("first_inference_ms"),
               "mean": lat.get("mean"), "std": lat.get("std")}
        for p in _pcts(run):
            row[stats.key(p)] = lat.get(stats.key(p))
        row.update({"max": lat.get("max"), "n": lat.get("count"), "fps": run.get("throughput_fps")})
        rows.append(row)
    with_zc = any(r["zero-copy"] is not None for r in rows)
    headers = ["batch", "threads"] + (["zero-copy"] if with_zc else []) + ["first ms", "mean", "std"] + [stats.key(p) for p in _pcts(runs_of(result)[0])] + [
        "max", "n", "fps"]
    return rows, headers


def _stage_rows(result):
    rows = []
    e2e = (result["stages"].get("end_to_end") or {}).get("mean") or 0.0
    for stage, summary in result["stages"].items():
        row = {"stage": stage, "mean": summary.get("mean"), "p50": summary.get("p50"), "p90": summary.get("p90"),
               "p99": summary.get("p99"), "max": summary.get("max"), "n": summary.get("count")}
        if stage in ("preprocess", "infer", "postprocess", "output") and e2e:
            row["% of e2e"] = 100.0 * (summary.get("mean") or 0.0) / e2e
        rows.append(row)
    return rows, ["stage", "mean", "p50", "p90", "p99", "max", "n", "% of e2e"]


def _layer_rows(layers):
    rows = [{"layer": x["name"], "op": x.get("op") or "-", "ms": x["ms"], "%": 100.0 * x.get("share", 0.0)}
            for x in layers["layers"]]
    if layers.get("others_count"):
        rows.append({"layer": "(%d others)" % layers["others_count"], "op": "", "ms": layers["others_ms"], "%": None})
    return rows, ["layer", "op", "ms", "%"]


def _estimate_rows(est, n):
    layers = sorted(est["layers"], key=lambda x: -x["ms"])[: n or None]
    return ([{"layer": x["name"], "op": x["op"], "ms": x["ms"], "bound": x["bound"]} for x in layers],
            ["layer", "op", "ms", "bound"])


def sections(result, layers_n=None):
    """[(title, rows, headers)] shared by the text table and Markdown."""
    out = []
    first = runs_of(result)[0]
    if first.get("kind") == "pipeline":
        rows, headers = _stage_rows(first)
        workers = (first.get("pipeline") or {}).get("workers") or 1
        out.append(("pipeline stages (ms%s)" % (", %d workers: frames in flight" % workers if workers > 1 else ""),
                    rows, headers))
    else:
        rows, headers = _run_rows(result)
        out.append(("latency (ms)", rows, headers))
    if first.get("layers"):
        rows, headers = _layer_rows(first["layers"])
        out.append(("slowest layers (%s profiler, mean of %d runs)" % (first["layers"].get("backend"),
                                                                      first["layers"]["runs"]), rows, headers))
    est = first.get("estimate")
    if est and layers_n is not None:
        rows, headers = _estimate_rows(est, layers_n)
        out.append(("estimated layers on %s (%s)" % (est["target"], est["precision"]), rows, headers))
    return out


def context_line(result):
    ctx = runs_of(result)[0].get("context") or {}
    parts = ["%s %s" % (ctx.get("backend"), ctx.get("backend_version") or ""), ctx.get("provider"),
             "precision %s" % ctx.get("precision"), "input %s" % ctx.get("input_shapes"),
             "cpu %s x%s" % (ctx.get("cpu_model"), ctx.get("cpu_count"))]
    jetson = ctx.get("jetson")
    if jetson:
        mode = jetson.get("power_mode")
        parts.append("%s %s, power mode %s, clocks pinned: %s" % (
            jetson.get("model"), jetson.get("l4t"), mode.get("name") if isinstance(mode, dict) else mode,
            (jetson.get("clocks") or {}).get("pinned")))
    return ", ".join(str(p) for p in parts if p)


def text(result, layers_n=None):
    blocks = ["context: " + context_line(result)]
    for title, rows, headers in sections(result, layers_n):
        blocks.append(format_table(rows, headers, digits=3, title=title))
    first = runs_of(result)[0]
    acc = first.get("accounting")
    if acc:
        blocks.append("stage accounting: preprocess+infer+postprocess+output = %.2f ms of end_to_end %.2f ms "
                      "(unaccounted %.3f ms mean)" % (acc["stage_sum_mean_ms"], acc["end_to_end_mean_ms"],
                                                      acc["unaccounted_mean_ms"]))
    est = first.get("estimate")
    if est:
        blocks.append("estimate on %s (%s): %.3g ms  [%s]" % (est["target"], est["precision"], est["latency_ms"],
                                                              est["error_note"]))
    return "\n\n".join(blocks)


def markdown(result, layers_n=None):
    out = ["## edgekit profile: %s" % runs_of(result)[0].get("model"), "", "Context: " + context_line(result), ""]
    for title, rows, headers in sections(result, layers_n):
        out += ["### " + title, "", format_markdown(rows, headers, digits=3), ""]
    est = runs_of(result)[0].get("estimate")
    if est:
        out += ["Estimate on %s (%s): **%.3g ms**. %s." % (est["target"], est["precision"], est["latency_ms"],
                                                          est["error_note"]), ""]
    warnings = result.get("warnings") or []
    if warnings:
        out += ["Warnings:", ""] + ["- " + w for w in warnings] + [""]
    return "\n".join(out)


def csv_text(result):
    """One row per run (sweeps) or per stage (pipelines); statistics only (samples are in the JSON)."""
    first = runs_of(result)[0]
    buf = io.StringIO()
    if first.get("kind") == "pipeline":
        rows, headers = _stage_rows(first)
    else:
        rows, headers = _run_rows(result)
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if row.get(h) is None else row.get(h) for h in headers])
    return buf.getvalue()


# -- files -------------------------------------------------------------------------------------------
def write_json(path, result):
    atomic_write_json(path, result)


def write_csv(path, result):
    atomic_write_text(path, csv_text(result))


def write_markdown(path, result, layers_n=None):
    atomic_write_text(path, markdown(result, layers_n))


def load_json(path):
    """Read a profile JSON and check its schema version; UserError on anything else."""
    import json

    try:
        with open(path) as handle:
            data = json.load(handle)
    except OSError as exc:
        raise UserError("cannot read %s: %s" % (path, exc.strerror or exc), hint="check the path")
    except ValueError as exc:
        raise ConfigError("%s is not JSON: %s" % (path, exc), hint="give a file written by edgekit profile --json")
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ConfigError("%s is not an edgekit profile (no schema_version)" % path,
                          hint="give a file written by edgekit profile --json")
    if data["schema_version"] != SCHEMA_VERSION:
        raise ConfigError("%s has profile schema_version %r; this edgekit reads %d" % (
            path, data["schema_version"], SCHEMA_VERSION), hint="re-run the profile with this edgekit")
    if data.get("kind") not in KINDS:
        raise ConfigError("%s has an unknown kind %r" % (path, data.get("kind")), hint="re-run the profile")
    for run in runs_of(data):
        if not isinstance(run.get("latency_ms"), dict):
            raise ConfigError("%s lacks latency_ms" % path, hint="re-run the profile")
    return data


# -- plots -------------------------------------------------------------------------------------------
def pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserError("--plot needs matplotlib, which is not installed here",
                        hint="pip install matplotlib (on a Jetson: sudo apt install python3-matplotlib), or drop --plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(path, result):
    """Latency histogram + CDF for model runs; stacked per-stage bars + end-to-end CDF for pipelines."""
    plt = pyplot()
    first = runs_of(result)[0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    if first.get("kind") == "pipeline":
        _stage_bars(axes[0], first)
        _cdf(axes[1], [("end_to_end", first["stages"]["end_to_end"]["samples"]),
                       ("frame_age", first["stages"].get("frame_age", {}).get("samples") or [])])
    else:
        runs = runs_of(result)
        _histograms(axes[0], runs)
        axes[0].set_xlabel("latency (ms)")
        axes[0].set_ylabel("runs")
        if len(runs) > 1:
            axes[0].legend(fontsize=8)
        _cdf(axes[1], [(_label(r), r["latency_ms"]["samples"]) for r in runs])
    fig.suptitle(str(first.get("model")), fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    from edgekit.fsutil import atomic_write_bytes

    atomic_write_bytes(path, buf.getvalue())


def _histograms(ax, runs):
    """Histograms up to the 99.5th percentile of all runs, so rare outliers do not squash the
    body; the runs beyond are counted in the title (the CDF shows them all)."""
    everything = sorted(v for r in runs for v in r["latency_ms"]["samples"])
    if not everything:
        return
    lo, hi = everything[0], stats.percentile(everything, 99.5)
    beyond = sum(1 for v in everything if v > hi)
    for run in runs:
        ax.hist(run["latency_ms"]["samples"], bins=60, range=(lo, hi if hi > lo else lo + 1e-3), alpha=0.6,
                label=_label(run))
    ax.set_title("latency histogram" + (" (%d runs above %.3g ms not shown; max %.3g)" % (
        beyond, hi, everything[-1]) if beyond else ""), fontsize=9)


def _label(run):
    ctx = run.get("context") or {}
    zero_copy = (ctx.get("runner") or {}).get("zero_copy")
    return "batch %s, threads %s%s" % (ctx.get("batch"), ctx.get("threads"),
                                       "" if zero_copy is None else ", zero-copy %s" % zero_copy)


def _cdf(ax, series):
    for label, samples in series:
        values = sorted(samples)
        if not values:
            continue
        n = float(len(values))
        ax.step(values, [(i + 1) / n for i in range(len(values))], where="post", label=label)
    ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of runs <= x")
    ax.set_title("CDF (every sample)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _stage_bars(ax, run):
    stages = [s for s in ("capture", "preprocess", "infer", "postprocess", "output") if s in run["stages"]]
    stats_names = ["mean", "p50", "p90", "p99"]
    bottoms = [0.0] * len(stats_names)
    for stage in stages:
        values = [run["stages"][stage].get(k) or 0.0 for k in stats_names]
        ax.bar(stats_names, values, bottom=bottoms, label=stage)
        bottoms = [b + v for b, v in zip(bottoms, values)]
    ax.set_ylabel("ms (stages stacked)")
    ax.set_title("per-stage time (stacked; a sum of percentiles is not the end-to-end one)", fontsize=9)
    ax.legend(fontsize=8)
