"""`edgekit quantize`: FP16 / INT8 in the form the target runs, with the accuracy cost measured first."""

from edgekit.commands import _args

HELP = "quantize an ONNX model to fp16 or int8 for a target, measuring what it costs"
DESCRIPTION = """Quantize MODEL.onnx for a target and measure, before anything is written, what it costs:
reference vs quantized accuracy or COCO mAP@0.5:0.95 (pycocotools; --val: a YOLO, COCO or VOC set), top-1 agreement and output cosine, and ONNX Runtime
CPU latency side by side. FP16 on TensorRT targets is a builder flag (the ONNX stays FP32, metadata says
fp16); on x86-cpu it is an FP16 ONNX with FP32 inputs/outputs. INT8 is static QDQ calibrated through the
model's own preprocessing, with the target's scheme (TensorRT: symmetric S8S8; x86-cpu: U8S8), plus a
TensorRT calibration cache (OUT.calib). Writes OUT.onnx, OUT.md and --report FILE; --json prints the
report on stdout."""


def add_arguments(parser):
    parser.add_argument("model", metavar="MODEL.onnx", help="FP32 ONNX model (with edgekit metadata, or --meta)")
    _args.add_precision(parser, required=True, choices=("fp16", "int8"), help="target precision")
    _args.add_target(parser, required=True)
    parser.add_argument("--out", required=True, metavar="OUT.onnx", help="output model")
    parser.add_argument("--calib", metavar="DIR", help="calibration images (INT8; also held-out agreement)")
    parser.add_argument("--calib-method", default="minmax", choices=("minmax", "entropy", "percentile"),
                        help="calibration method (default minmax)")
    parser.add_argument("--calib-count", type=int, metavar="N", help="calibration images to use (default 200)")
    parser.add_argument("--val", metavar="DIR", help="labelled validation set: ImageFolder (classifier); for a "
                        "detector a YOLO (data.yaml), COCO JSON or Pascal VOC folder, scored with pycocotools")
    parser.add_argument("--max-drop", type=float, metavar="PP",
                        help="fail (exit 2, nothing written) when accuracy drops by more percentage points")
    parser.add_argument("--exclude", nargs="+", default=[], metavar="NODE", help="nodes to keep in FP32")
    parser.add_argument("--auto-exclude", action="store_true",
                        help="keep the most sensitive layers in FP32 until the drop is within --max-drop")
    parser.add_argument("--force", action="store_true",
                        help="allow a precision the target has no fast path for (e.g. INT8 for a Nano bundle "
                        "meant for Xavier/Orin)")
    _args.add_meta(parser)
    _args.add_json(parser, "the report")
    _args.add_report(parser, "the report")
    _args.keep_json_file_spelling(parser, "edgekit quantize")


def run(args):
    from edgekit.desktop.quantize.run import quantize

    report = quantize(args.model, args.out, args.precision, args.target, calib=args.calib,
                      calib_method=args.calib_method, calib_count=args.calib_count, val=args.val,
                      max_drop=args.max_drop, exclude=args.exclude, auto_exclude=args.auto_exclude, force=args.force,
                      json_path=args.report, meta=args.meta)
    if args.json:
        import sys

        from edgekit.jsonutil import dumps

        sys.stdout.write(dumps(report, indent=2, sort_keys=True) + "\n")
    return 0
