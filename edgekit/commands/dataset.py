"""`edgekit dataset merge`: harvests from the boards -> one YOLO dataset `edgekit train` takes."""

from edgekit.commands import _args

HELP = "datasets: merge the boards' hard-example harvests into a YOLO dataset"
MERGE_DESCRIPTION = """Merge harvests (folders of images/, labels/, data.yaml and manifest.jsonl, as
`edgekit serve` harvests them and deploy/ansible/harvest.yml brings them home into harvest/<board>/)
into DATASET, a YOLO dataset:

    DATASET/data.yaml                       path: ., train: images/train, val: images/val, names
    DATASET/images/{train,val}/<board>-<name>.jpg
    DATASET/labels/{train,val}/<board>-<name>.txt
    DATASET/manifest.jsonl                  per image: sha256, split, board, why it was harvested, model

Images are deduplicated by the sha256 of their bytes (also against DATASET). An image's split is
decided by its hash (val when the hash's first 8 hex digits / 2^32 < --val-fraction), so it never
changes between merges, and images already in DATASET keep theirs. Every harvest (and DATASET)
must name the same classes in the same order; a different label set is refused, naming the
difference, and nothing is written. New files are staged first and moved into place at the end.
The board of a harvest is its folder's name. Labels are the model's pre-labels until you correct
them (CVAT and Label Studio import YOLO format)."""


def add_arguments(parser):
    import argparse

    sub = _args.add_actions(parser)
    merge = _args.add_action(sub, parser, "merge", help="merge harvests into a YOLO dataset (dedupe, stable split)",
                             description=MERGE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    merge.add_argument("harvests", nargs="+", metavar="HARVEST", help="harvest folders (harvest/* for every board)")
    merge.add_argument("--into", required=True, metavar="DATASET", help="the YOLO dataset to create or add to")
    merge.add_argument("--val-fraction", type=float, default=0.2, metavar="F",
                       help="share of new images that go to val, by hash (default 0.2)")
    merge.add_argument("--dry-run", action="store_true", help="report what would be merged; write nothing")
    _args.add_json(merge, "the merge report (counts per board, split and class)")


def run(args):
    import json
    import sys

    from edgekit.errors import ConfigError

    if getattr(args, "action", None) != "merge":
        raise ConfigError("`edgekit dataset` needs an action", hint="use `edgekit dataset merge harvest/* --into DATASET`")
    if not 0.0 <= args.val_fraction < 1.0:
        raise ConfigError("--val-fraction must be in [0, 1), got %s" % args.val_fraction, hint="e.g. --val-fraction 0.2")
    from edgekit.desktop.data.merge import merge_harvests

    report = merge_harvests(args.harvests, args.into, val_fraction=args.val_fraction, dry_run=args.dry_run)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(format_report(report) + "\n")
    for line in report["warnings"]:
        sys.stderr.write("edgekit dataset merge: warning: %s\n" % line)
    return 0


def format_report(report):
    from edgekit.table import format_table

    boards = [dict(b, board=name) for name, b in sorted(report["boards"].items())]
    headers = ["board", "images", "added", "duplicates", "train", "val"]
    text = format_table(boards, headers, title="%s %s (%s)" % ("would merge into" if report["dry_run"] else
                                                               "merged into", report["dataset"],
                                                               ", ".join(report["names"])))
    classes = [{"class": name, "boxes added": report["classes"][name]["added"],
                "boxes in dataset": report["classes"][name]["total"]} for name in report["names"]]
    text += "\n\n" + format_table(classes, ["class", "boxes added", "boxes in dataset"])
    totals = report["totals"]
    text += "\n\n%d image(s) added (%d train, %d val), %d duplicate(s); the dataset holds %d train, %d val" % (
        totals["added"], totals["train"], totals["val"], totals["duplicates"], totals["dataset_train"],
        totals["dataset_val"])
    return text
