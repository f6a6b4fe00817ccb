"""`edgekit inspect`: an ONNX file's inputs, metadata, ops, cost, TensorRT lint and latency estimate."""

from edgekit.commands import _args

HELP = "describe an ONNX model: I/O, metadata, ops, params, FLOPs, TensorRT lint, latency estimate"
DESCRIPTION = """Describe an ONNX file (any, including third-party models with dynamic dimensions):
inputs and outputs, the edgekit metadata, the op histogram, parameters and FLOPs (per layer with
--layers), the offline TensorRT lint for --target, and the estimated latency on that target."""


def add_arguments(parser):
    import argparse

    parser.add_argument("model", metavar="MODEL.onnx", help="ONNX file")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    _args.add_target(parser, help="device preset for the lint and the estimate",
                     default_text="the model's metadata target, else jetson-nano")
    parser.add_argument("--layers", action="store_true", help="per-layer FLOPs, params and estimated time")
    parser.add_argument("--input-size", metavar="H[xW]", help="height[xwidth] for FLOPs and the estimate when "
                        "the model's input size is dynamic")
    _args.add_json(parser, "the description")


def run(args):
    import json
    import sys

    from edgekit.desktop.export.inspect import inspect_model

    info = inspect_model(args.model, target=args.target, layers=args.layers, input_size=args.input_size)
    if args.json:
        sys.stdout.write(json.dumps(info, indent=2, sort_keys=True, default=float) + "\n")
    else:
        sys.stdout.write(render(info) + "\n")
    return 0


def _si(value, unit=""):
    if value is None:
        return "-"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return "%.2f %s%s" % (value / factor, prefix, unit)
    return "%d %s" % (value, unit) if unit else str(value)


def render(info):
    from edgekit.desktop.export.lint import format_problems, summary_line
    from edgekit.table import format_table

    out = ["%s  (%s, %.1f MiB, opset %s, %d nodes)" % (
        info["path"], info["producer"] or "unknown producer", info["bytes"] / 2.0 ** 20,
        ", ".join("%s %s" % kv for kv in info["opset"].items()), info["nodes"])]
    rows = [["input", v["name"], "x".join(str(d) for d in (v["shape"] or ["?"])), v["dtype"]] for v in info["inputs"]]
    rows += [["output", v["name"], "x".join(str(d) for d in (v["shape"] or ["?"])), v["dtype"]] for v in info["outputs"]]
    out += ["", format_table(rows, ["", "name", "shape", "dtype"])]
    meta = info["metadata"]
    if meta:
        p = meta["preprocess"]
        labels = meta["labels"]
        out += ["", "metadata: %s, %d labels (%s%s), %s %s mean=%s std=%s, decoder %s, precision %s, target %s" % (
            meta["task"], len(labels), ", ".join(labels[:4]), ", ..." if len(labels) > 4 else "", p["color"],
            p["resize"], p["mean"], p["std"], meta["decoder"].get("type"), meta["precision"], meta.get("target"))]
    elif info.get("recognised"):
        rec = info["recognised"]
        p = rec["preprocess"]
        out += ["", "metadata: no edgekit block; recognised as decoder %s from %s" % (
            rec["decoder"]["type"], rec["source"]["recognised"]),
            "  served as: %d labels, input %s %s, %s %s mean=%s std=%s (override with --meta FILE.yaml)" % (
                len(rec["labels"]), rec["input"]["name"], "x".join(str(d) for d in rec["input"]["shape"]),
                p["color"], p["resize"], [round(v, 4) for v in p["mean"]], [round(v, 4) for v in p["std"]])]
    else:
        why = info.get("metadata_error") or info.get("recognise_error")
        out += ["", "metadata: none%s" % (" (%s)" % why if why else
                                          " and no known output signature (describe it with --meta FILE.yaml, or "
                                          "add it with `edgekit export MODEL.onnx --labels ... --out ...`)")]
    ops = ", ".join("%s %d" % kv for kv in list(info["ops"].items())[:12])
    out += ["ops: %s%s" % (ops, ", ..." if len(info["ops"]) > 12 else "")]
    out += ["params: %s   FLOPs: %s%s" % (_si(info["params"]), _si(info["flops"]),
                                          "" if info["flops"] is not None else " (%s)" % info.get("flops_note"))]
    if info.get("input_size_note"):
        out += ["counted at: %s" % info["input_size_note"]]
    est = info.get("estimate")
    if est:
        out += ["estimated latency on %s (%s engine): %.2f ms" % (est["target"], est["precision"], est["latency_ms"]),
                "  (%s)" % est["error_note"]]
    elif info.get("estimate_note"):
        out += ["estimate: %s" % info["estimate_note"]]
    if info.get("layers"):
        rows = [[r["name"], r["op"], (r["flops"] or 0) / 1e6 if r["flops"] is not None else None, r["params"],
                 r.get("est_ms"), r.get("lint", "")] for r in info["layers"]]
        out += ["", format_table(rows, ["layer", "op", "MFLOPs", "params", "est ms", "lint"], digits=3)]
    out += ["", summary_line(info["lint"])] + format_problems(info["lint"])
    for note in info["lint"].get("notes", []):
        out.append("  note: %s" % note)
    return "\n".join(out)
