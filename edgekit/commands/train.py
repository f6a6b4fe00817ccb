"""`edgekit train`: train a recipe from models/ on a dataset folder or the built-in shapes set."""

from edgekit.commands import _args

HELP = "train a classifier or detector from a recipe (ImageFolder, YOLO or the built-in shapes set)"
DESCRIPTION = """Train a recipe (models/*.yaml or a recipe name) and write best.pt, last.pt, metrics.json,
curves.png and labels.txt to --out. `edgekit export OUT/best.pt` takes the result with no more flags.
Runs unchanged under `torchrun --nproc_per_node N` (DistributedDataParallel; only rank 0 writes).

examples:
  edgekit train shapes-classifier --data shapes --out runs/cls
  edgekit train shapes-detector --data shapes --out runs/det --epochs 30
  edgekit train models/resnet18.yaml --data ~/flowers --weights resnet18.pth --out runs/flowers
  edgekit train shapes-detector --data shapes --out runs/det --resume --epochs 40
"""


def add_arguments(parser):
    import argparse

    parser.formatter_class = argparse.RawDescriptionHelpFormatter      # keep the examples' lines
    parser.add_argument("recipe", help="recipe YAML path or name in models/ (shapes-classifier, shapes-detector, "
                        "mobilenet_v2, mobilenet_v3_small, resnet18)")
    parser.add_argument("--data", required=True, metavar="DIR|shapes",
                        help="ImageFolder root (train/ and val/); for detectors a YOLO root or data.yaml, a COCO "
                        "folder (annotations/instances_{train,val}.json or {train,valid}/_annotations.coco.json), a "
                        "Pascal VOC folder (Annotations/, JPEGImages/, ImageSets/Main/); or `shapes` to generate "
                        "the built-in synthetic set")
    parser.add_argument("--classes", metavar="A,B",
                        help="detection: train only these classes (names as the annotation file spells them)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (best.pt, last.pt, ...)")
    parser.add_argument("--epochs", type=int, help="number of epochs (default: the recipe's)")
    parser.add_argument("--time-budget", type=float, metavar="SECONDS",
                        help="train for this much wall-clock time (epochs become an upper bound; validates at the end)")
    parser.add_argument("--batch", type=int, help="global batch size, split over DDP processes (default: recipe)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: auto")
    parser.add_argument("--seed", type=int, help="random seed (default: the recipe's)")
    parser.add_argument("--weights", metavar="FILE",
                        help="initial weights: a local torchvision state_dict or edgekit checkpoint")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--strict", action="store_true",
                        help="images without labels or labels without images are errors, not warnings")
    parser.add_argument("--data-cache", metavar="DIR", help="where `--data shapes` is generated (default OUT/data)")
    _args.add_json(parser, "the result")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args):
    import json
    import os

    from edgekit.desktop.train.run import train
    from edgekit.table import format_table

    result = train(args.recipe, args.data, args.out, epochs=args.epochs, batch=args.batch, device=args.device,
                   seed=args.seed, weights=args.weights, resume=args.resume, strict=args.strict,
                   progress=not args.no_progress, data_cache=args.data_cache,
                   classes=args.classes, time_budget=args.time_budget)
    if result.get("rank", 0) != 0:
        return 0
    if args.json:
        doc = dict(result)
        doc.pop("history", None)
        print(json.dumps(doc, indent=2, sort_keys=True, default=float))
        return 0
    best = result["best"] or {}
    rows = [["best " + str(best.get("metric")), "%.4f (epoch %d)" % (best.get("value", 0.0), best.get("epoch", 0) + 1)]]
    for key in ("map50_95", "val_loss"):
        if key in best.get("metrics", {}):
            rows.append([key, "%.4f" % best["metrics"][key]])
    best_epoch = [h for h in result.get("history") or [] if h.get("epoch") == best.get("epoch")]
    per_class = best_epoch[0].get("per_class_ap50_95") if best_epoch else None
    if per_class:
        labels = _labels(result["labels_path"])
        for index, ap in enumerate(per_class):          # COCO AP@0.5:0.95 per class (pycocotools)
            name = labels[index] if index < len(labels) else str(index)
            rows.append(["AP50-95 " + name, "no val boxes" if ap is None else "%.4f" % ap])
    rows.append(["epochs run", str(result["epochs_run"])])
    for key in ("best_path", "last_path", "metrics_path", "curves_path", "labels_path"):
        rows.append([key.replace("_path", ""), os.path.relpath(result[key])])
    print(format_table(rows, ["result", "value"]))
    print("next: edgekit export %s" % os.path.relpath(result["best_path"]))
    return 0


def _labels(path):
    try:
        with open(path) as handle:
            return [line.strip() for line in handle if line.strip()]
    except OSError:
        return []
