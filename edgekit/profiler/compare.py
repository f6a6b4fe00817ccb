"""`edgekit profile compare BASE.json NEW.json`: deltas per statistic, and a verdict for CI.

Exit codes: 0 no regression, 1 regression beyond --fail-over, 2 user error (bad file, bad flag).
Latency statistics regress when they grow; throughput regresses when it drops. Sweeps are
matched run by run on (batch, threads, zero-copy); pipeline files also compare each stage.
"""

from edgekit.errors import ConfigError
from edgekit.profiler import report

STATS = ("min", "mean", "p50", "p90", "p95", "p99", "max", "std")
HIGHER_IS_BETTER = ("throughput_fps",)
METRICS = STATS + HIGHER_IS_BETTER


def _key(run):
    ctx = run.get("context") or {}
    return (ctx.get("batch"), ctx.get("threads"), (ctx.get("runner") or {}).get("zero_copy"))


def _label(run):
    batch, threads, zero_copy = _key(run)
    return "batch %s threads %s%s" % (batch, threads, "" if zero_copy is None else " zero-copy %s" % zero_copy)


def _pct(base, new):
    if base in (None, 0) or new is None:
        return None
    return 100.0 * (new - base) / base


def _rows_for(label, base_summary, new_summary, base_fps=None, new_fps=None):
    rows = []
    for stat in STATS:
        b, n = base_summary.get(stat), new_summary.get(stat)
        if b is None and n is None:
            continue
        rows.append({"run": label, "statistic": stat, "base": b, "new": n,
                     "delta": (n - b) if b is not None and n is not None else None, "change %": _pct(b, n)})
    if base_fps is not None or new_fps is not None:
        rows.append({"run": label, "statistic": "throughput_fps", "base": base_fps, "new": new_fps,
                     "delta": (new_fps - base_fps) if None not in (base_fps, new_fps) else None,
                     "change %": _pct(base_fps, new_fps)})
    return rows


def compare(base, new, metric="p50", fail_over=None):
    """Compare two loaded profile results. Returns {"rows": [...], "regressions": [...], "metric",
    "fail_over", "regressed": bool}. A row regresses when its ``metric`` worsens by more than
    ``fail_over`` percent (latency up, throughput down)."""
    if metric not in METRICS:
        raise ConfigError("unknown --metric %r" % metric, hint="use one of %s" % ", ".join(METRICS))
    if fail_over is not None and fail_over < 0:
        raise ConfigError("--fail-over must be >= 0, got %s" % fail_over, hint="give a percentage like 5")
    base_runs = dict((_key(r), r) for r in report.runs_of(base))
    new_runs = report.runs_of(new)
    rows, unmatched = [], []
    for run in new_runs:
        ref = base_runs.get(_key(run))
        if ref is None and len(base_runs) == 1 and len(new_runs) == 1:
            ref = list(base_runs.values())[0]
        if ref is None:
            unmatched.append(_key(run))
            continue
        label = _label(run) if len(new_runs) > 1 else "latency"
        rows += _rows_for(label, ref["latency_ms"], run["latency_ms"], ref.get("throughput_fps"),
                          run.get("throughput_fps"))
        for stage, summary in sorted((run.get("stages") or {}).items()):
            if stage in (ref.get("stages") or {}) and stage != "end_to_end":
                rows += [r for r in _rows_for(stage, ref["stages"][stage], summary) if r["statistic"] in ("p50", "p90")]
    if not rows:
        raise ConfigError("the two profiles share no run (batch, threads) to compare",
                          hint="profile the same configurations")
    regressions = []
    for row in rows:
        if row["statistic"] != metric or row["change %"] is None or fail_over is None:
            continue
        worse = -row["change %"] if metric in HIGHER_IS_BETTER else row["change %"]
        if worse > fail_over:
            regressions.append(row)
    return {"rows": rows, "regressions": regressions, "metric": metric, "fail_over": fail_over,
            "regressed": bool(regressions), "unmatched": unmatched}


def context_differences(base, new):
    """Context fields that differ (a slower number on another CPU is not a regression of the model)."""
    a = report.runs_of(base)[0].get("context") or {}
    b = report.runs_of(new)[0].get("context") or {}
    keys = ("backend", "backend_version", "provider", "threads", "precision", "cpu_model", "input_shapes")
    return ["%s: %s -> %s" % (k, a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)]
