"""The quantize report: one dict (``--json``), a terminal table, a Markdown file beside the output."""

import os

from edgekit.desktop.quantize.job import calib_path_for
from edgekit.fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_file
from edgekit.table import format_markdown, format_table

SCHEMA = "edgekit-quantize/1"


def _side(metric, agreement, latency):
    side = dict(metric)
    side["agreement"] = agreement
    side["latency_ms"] = latency
    return side


def build(job, result):
    """The report dict (the --json object)."""
    ref_agree = None
    if job.evalset is not None:
        ref_agree = {"top1": 1.0, "cosine": 1.0, "images": len(job.evalset)}
    passed = job.max_drop is None or result.drop is None or result.drop <= job.max_drop
    files = {"reference": {"path": job.model, "bytes": os.path.getsize(job.model)},
             "model": {"path": job.out, "bytes": os.path.getsize(result.final_path)},
             "report_md": os.path.splitext(job.out)[0] + ".md"}
    if result.calib_cache is not None:
        files["calib_cache"] = {"path": calib_path_for(job.out), "tensors": len(result.calib_cache)}
    return {
        "schema": SCHEMA,
        "model": job.model,
        "out": job.out,
        "target": job.target.name,
        "runtime": job.target.runtime,
        "precision": job.precision,
        "forced": bool(job.force and job.precision not in job.target.fast_precisions),
        "scheme": result.scheme,
        "calibration": result.calibration,
        "evaluation": {"on": job.eval_on, "images": len(job.evalset) if job.evalset is not None else 0,
                       "source": getattr(job.evalset, "source", None) or (job.calib if job.eval_on else None)},
        "reference": _side(job.ref_metric, ref_agree, result.latency.get("reference")),
        "quantized": _side(result.metric, result.agreement, result.latency.get("quantized")),
        "speedup": (result.latency["reference"] / result.latency["quantized"]
                    if result.latency.get("quantized") else None),
        "drop_pp": result.drop,
        "drop_basis": result.basis,
        "max_drop": job.max_drop,
        "passed": passed,
        "excluded": list(result.excluded),
        "auto_excluded": list(result.auto_excluded),
        "sensitivity": result.sensitivity[:20],
        "auto_exclude_steps": result.auto_steps,
        "files": files,
        "notes": list(result.notes),
        "warnings": list(job.warnings),
    }


def _pct(value):
    return None if value is None else value * 100.0


def rows(report):
    ref, q = report["reference"], report["quantized"]
    out = []
    for key, label in (("accuracy", "accuracy %"), ("map50_95", "mAP@0.5:0.95 %"), ("map50", "mAP@0.5 %")):
        if key in ref:
            out.append([label, _pct(ref[key]), _pct(q.get(key)),
                        None if q.get(key) is None else "%+.2f pp" % ((q[key] - ref[key]) * 100.0)])
    if q.get("agreement"):
        out.append(["top-1 agreement %", 100.0, _pct(q["agreement"]["top1"]), None])
        out.append(["output cosine", 1.0, q["agreement"]["cosine"], None])
    speed = report.get("speedup")
    out.append(["latency ms (ORT CPU)", ref["latency_ms"], q["latency_ms"],
                "%.2fx speed-up" % speed if speed else None])
    files = report["files"]
    out.append(["file KB", files["reference"]["bytes"] / 1024.0, files["model"]["bytes"] / 1024.0,
                "%.2fx size" % (files["model"]["bytes"] / float(files["reference"]["bytes"]))])
    return out


def summary_lines(report):
    scheme = report["scheme"] or {}
    lines = ["scheme: %s -- %s" % (scheme.get("name"), scheme.get("why"))]
    if report["calibration"]:
        c = report["calibration"]
        lines.append("calibration: %d image%s, %s" % (c["count"], "" if c["count"] == 1 else "s", c["method"]))
    ev = report["evaluation"]
    lines.append("measured on: %s" % ("%d %s images" % (ev["images"], ev["on"]) if ev["on"] else "nothing"))
    if report["drop_pp"] is not None:
        lines.append("drop: %.2f pp (%s)%s" % (report["drop_pp"], report["drop_basis"], "" if report["max_drop"] is None
                     else "; limit %.2f pp: %s" % (report["max_drop"], "ok" if report["passed"] else "EXCEEDED")))
    lines.append("kept in FP32: %s" % (", ".join(report["excluded"]) or "none"))
    lines.extend("note: " + n for n in report["notes"])
    return lines


def show_table(report):
    from edgekit.progress import say

    headers = ["", "reference fp32", "quantized %s" % report["precision"], "change"]
    say(format_table(rows(report), headers, digits=3,
                     title="quantize %s -> %s (%s)" % (os.path.basename(report["model"]),
                                                       os.path.basename(report["out"]), report["target"])))
    for line in summary_lines(report):
        say(line)


def markdown(report):
    headers = ["", "reference fp32", "quantized %s" % report["precision"], "change"]
    parts = ["# Quantization report: %s" % os.path.basename(report["out"]), "",
             "Model `%s` -> `%s`, target `%s`, precision %s." % (
                 os.path.basename(report["model"]), os.path.basename(report["out"]), report["target"],
                 report["precision"]), "", format_markdown(rows(report), headers, digits=3), ""]
    parts.extend("- " + line for line in summary_lines(report))
    if report["sensitivity"]:
        parts += ["", "Most sensitive layers (relative output error when quantized alone):", "",
                  format_markdown([[s["node"], s["op"], s["score"]] for s in report["sensitivity"][:10]],
                                  ["node", "op", "error"], digits=5)]
    return "\n".join(parts) + "\n"


def write_outputs(job, result, report, json_path=None):
    """OUT.onnx, OUT.calib (INT8), OUT.md and --json, each atomically; records sha256."""
    from edgekit.engine.calib_cache import header_for, write_calibration_cache

    with open(result.final_path, "rb") as handle:
        atomic_write_bytes(job.out, handle.read())
    report["files"]["model"]["sha256"] = sha256_file(job.out)
    if result.calib_cache is not None:
        cache = report["files"]["calib_cache"]
        cache["header"] = header_for(job.target.tensorrt)
        write_calibration_cache(cache["path"], result.calib_cache, header=cache["header"])
        cache["bytes"] = os.path.getsize(cache["path"])
    atomic_write_text(report["files"]["report_md"], markdown(report))
    if json_path:
        atomic_write_json(json_path, report)
    from edgekit.progress import say

    say("wrote %s%s, %s" % (job.out, (", " + report["files"]["calib_cache"]["path"])
                             if "calib_cache" in report["files"] else "", report["files"]["report_md"]))
