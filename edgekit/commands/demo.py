"""`edgekit demo`: the whole path on the CPU, end to end."""

HELP = "run the whole path on the CPU: dataset, train, export, quantize, profile, serve"
DESCRIPTION = ("Generate the synthetic shapes dataset, train a small model, export it to ONNX (x86-cpu and "
               "jetson-nano), quantize (INT8 for the CPU, FP16 for the Nano), profile it, estimate its "
               "latency on a Nano, bundle it, and run the camera daemon over a video file that OpenCV "
               "writes. Everything lands in --out with report.md and report.json.")


def add_arguments(parser):
    parser.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    parser.add_argument("--task", choices=("detection", "classification"), default="detection",
                        help="which model to train (default: detection)")
    parser.add_argument("--detector", default="shapes",
                        choices=("shapes", "mobilenet_v3", "mobilenet_v3_large", "resnet18"),
                        help="shapes: the tiny detector on the shapes set (default); a backbone: that detector "
                        "(320 px) trained for 90 s on generated scenes")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the demo's own)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--http", default="127.0.0.1:8080",
                        help="where the daemon serves its page while it runs (default: 127.0.0.1:8080; "
                        "port 0 picks a free one)")
    parser.add_argument("--keep-serving", action="store_true",
                        help="after the report, keep serving the looping video until Ctrl-C")
    parser.add_argument("--quick", action="store_true", help="smallest settings (for tests)")


def run(args):
    from edgekit.desktop.demo import run_demo

    return run_demo(args.out, task=args.task, epochs=args.epochs, seed=args.seed, http=args.http,
                    keep_serving=args.keep_serving, quick=args.quick, detector=args.detector)
