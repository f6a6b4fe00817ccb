"""`edgekit doctor`."""

import argparse

from edgekit.commands import _args

HELP = "check this machine for edgekit: Jetson, JetPack, TensorRT, CUDA, OpenCV+GStreamer, cameras, power, memory"
DESCRIPTION = ("Check what this machine has for edgekit, each item with ✓ or ✗ and what to do: the Jetson board, "
               "L4T/JetPack, Python, TensorRT, CUDA, cuDNN, pycuda, ONNX Runtime, OpenCV and its GStreamer support, "
               "cameras, power mode, clocks, memory and swap, disk. On a laptop the Jetson-only checks are skipped "
               "with the reason. Exits 1 when a check fails.")


def add_arguments(parser):
    _args.add_json(parser, "the report")
    parser.add_argument("--root", default="/", help=argparse.SUPPRESS)    # tests: a recorded file tree


def run(args):
    import json
    import sys

    from edgekit.doctor import System, diagnose, format_report

    report = diagnose(System(root=args.root))
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        encoding = (getattr(sys.stdout, "encoding", None) or "").lower()
        print(format_report(report, ascii_only="utf" not in encoding))
    return 0 if report["ok"] else 1
