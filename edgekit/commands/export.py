"""`edgekit export`: a PyTorch model or ONNX file -> TensorRT-ready ONNX for a target, verified."""

from edgekit.commands import _args

HELP = "export a model to ONNX for a target (checked, simplified, parity-tested, TensorRT-linted)"
DESCRIPTION = """Export SOURCE to a self-describing ONNX file for --target.

SOURCE is one of:
  runs/x/best.pt           an edgekit checkpoint (everything comes from its metadata)
  torchvision:NAME         a torchvision classifier, random init or --weights FILE (never downloads)
  package.module:factory   a callable returning a torch.nn.Module (--weights FILE optional)
  model.ts / model.pt      a TorchScript file (torch.jit.save)
  model.onnx               an ONNX file: re-checked, metadata added, simplified, linted

The opset comes from the target (jetson-nano: 13). The model is simplified with onnxslim, checked with
onnx.checker and shape inference, compared with PyTorch on several inputs, and linted for the target's
TensorRT. Nothing is written unless every check passes."""


def add_arguments(parser):
    import argparse

    from edgekit.targets import DEFAULT_TARGET

    parser.add_argument("source", metavar="SOURCE", help="checkpoint, torchvision:NAME, module:factory, "
                        "TorchScript or .onnx file")
    parser.add_argument("--out", "-o", metavar="MODEL.onnx",
                        help="output ONNX file (default: beside a checkpoint or TorchScript SOURCE, same name "
                        "with .onnx, e.g. runs/det/best.pt -> runs/det/best.onnx)")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    _args.add_target(parser, default=DEFAULT_TARGET)
    parser.add_argument("--input-size", metavar="H[xW]", help="input height[xwidth] (default: from the "
                        "checkpoint or ONNX file, else 224)")
    parser.add_argument("--batch", default="1", metavar="N|dynamic", help="batch size, or 'dynamic' "
                        "(default 1)")
    parser.add_argument("--opset", type=int, help="ONNX opset (default: the target's maximum)")
    parser.add_argument("--weights", metavar="FILE", help="state_dict for torchvision:NAME or module:factory")
    parser.add_argument("--labels", metavar="FILE", help="class names, one per line (or a JSON/YAML list)")
    _args.add_meta(parser, help="metadata fields (task, preprocess, decoder, labels) for non-edgekit models")
    parser.add_argument("--no-simplify", action="store_true", help="skip onnxslim")
    parser.add_argument("--strict", action="store_true", help="fail (exit 2, nothing written) on any "
                        "TensorRT lint problem")
    parser.add_argument("--atol", type=float, help="parity absolute tolerance (fp32 default 1e-4)")
    parser.add_argument("--rtol", type=float, help="parity tolerance relative to the output's scale "
                        "(fp32 default 1e-3)")
    _args.add_json(parser, "the report")


def run(args):
    import sys

    from edgekit.desktop.export.run import export_model, report_json
    from edgekit.progress import say

    report = export_model(
        args.source, default_out(args.source, args.out), target=args.target, input_size=args.input_size, batch=args.batch,
        opset=args.opset, weights=args.weights, labels=args.labels, simplify=not args.no_simplify,
        meta_overrides=args.meta, strict=args.strict,
        tolerance={"atol": args.atol, "rtol": args.rtol},
        log=(lambda text: None) if args.json else say)
    if args.json:
        sys.stdout.write(report_json(report) + "\n")
    else:
        _print_summary(report)
    return 0


def default_out(source, out):
    """--out, or SOURCE's path with .onnx for a file source (never the ONNX source itself)."""
    import os

    from edgekit.errors import ConfigError

    if out:
        return out
    stem, ext = os.path.splitext(source)
    if ext.lower() in (".pt", ".pth", ".ts", ".torchscript") and os.path.isfile(source):
        return stem + ".onnx"
    raise ConfigError("say where to write the ONNX file", hint="add --out MODEL.onnx")


def _print_summary(report):
    from edgekit.table import format_table

    rows = [[name, "%.2e" % p["max_abs"], "%.2e" % p["max_rel"], "%.7f" % p["cosine"]]
            for name, p in report["parity"].items()]
    print(format_table(rows, ["output", "max_abs", "max_rel", "cosine"],
                       title="parity vs reference (%d inputs)" % report["parity_inputs"]))
    lint = report["lint"]
    print("%s -> %s: opset %d, %d -> %d nodes, lint %s (%d problem(s)) for %s" % (
        report["source"], report["path"], report["opset"], report["nodes_before"], report["nodes_after"],
        "ok" if lint["ok"] else "FAILED", len(lint["problems"]), report["target"]))
