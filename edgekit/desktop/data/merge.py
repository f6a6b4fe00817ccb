"""Merging the boards' harvests into one YOLO dataset (``edgekit dataset merge``).

A harvest is what edgekit.recordings.harvest writes on a board (images/, labels/, data.yaml,
manifest.jsonl); deploy/ansible/harvest.yml brings each home as harvest/<board>/. The dataset:

    DATASET/data.yaml   path: ., train: images/train, val: images/val, nc, names
    DATASET/images/{train,val}/*.jpg, DATASET/labels/{train,val}/*.txt, DATASET/manifest.jsonl

Order of work: read and check everything (label sets, label files) before writing anything; stage
the new images and labels in DATASET/.merge-<random>/; move them into place; write manifest.jsonl
and data.yaml atomically last. An error before the moves leaves DATASET untouched; an error during
them moves back what was moved.
"""

import hashlib
import json
import os
import shutil
import tempfile

from edgekit.desktop.data.datasets import is_image, label_path_for, parse_yolo_labels
from edgekit.errors import DatasetError
from edgekit.fsutil import atomic_write_text
from edgekit.recordings.harvest import label_difference, read_names

SPLITS = ("train", "val")


def split_of(sha, val_fraction):
    """The split an image's sha256 decides: stable across merges and machines."""
    return "val" if int(sha[:8], 16) / float(1 << 32) < val_fraction else "train"


def _sha(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _names(folder, what):
    data = os.path.join(folder, "data.yaml")
    if not os.path.isfile(data):
        raise DatasetError("%s %s has no data.yaml" % (what, folder),
                           hint="a harvest holds images/, labels/ and data.yaml (from the board's harvest folder)")
    try:
        return read_names(data)[0]
    except Exception as exc:          # ConfigError -> a dataset problem here
        raise DatasetError(getattr(exc, "message", str(exc)), hint=getattr(exc, "hint", None))


def _manifest(folder):
    """manifest.jsonl -> {image file relative to folder: record}."""
    out = {}
    path = os.path.join(folder, "manifest.jsonl")
    if os.path.isfile(path):
        with open(path) as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    raise DatasetError("%s line %d is not JSON" % (path, number), hint="fix or remove that line")
                out[record.get("file")] = record
    return out


def _existing(dataset, names):
    """sha256 -> split, name set per split, and boxes per class, of what DATASET already holds."""
    hashes, taken, boxes = {}, set(), dict((n, 0) for n in names)
    counts = dict((s, 0) for s in SPLITS)
    for split in SPLITS:
        folder = os.path.join(dataset, "images", split)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if not is_image(name):
                continue
            path = os.path.join(folder, name)
            hashes.setdefault(_sha(path), split)
            taken.add((split, os.path.splitext(name)[0]))
            counts[split] += 1
            label = label_path_for(path)
            if os.path.isfile(label):
                for row in parse_yolo_labels(label, len(names)):
                    boxes[names[int(row[0])]] += 1
    return hashes, taken, boxes, counts


def _read_harvest(folder, names):
    """[(image path, label path, label text, boxes array, manifest record)] of one harvest, checked."""
    images = os.path.join(folder, "images")
    if not os.path.isdir(images):
        raise DatasetError("harvest %s has no images/ folder" % folder, hint="give the folder harvest.yml fetched")
    records = _manifest(folder)
    out = []
    for name in sorted(os.listdir(images)):
        if not is_image(name):
            continue
        image = os.path.join(images, name)
        label = label_path_for(image)
        if not os.path.isfile(label):
            raise DatasetError("%s has no label file %s" % (image, label),
                               hint="an empty .txt marks an image with no objects; or remove the image")
        rows = parse_yolo_labels(label, len(names))
        with open(label) as handle:
            text = handle.read()
        out.append((image, label, text, rows, records.get("images/" + name, {})))
    return out


def merge_harvests(harvests, dataset, val_fraction=0.2, dry_run=False):
    """Merge ``harvests`` (folders) into ``dataset``; returns the report (see format_report)."""
    dataset = os.path.abspath(os.fspath(dataset))
    harvests = [os.path.abspath(os.fspath(h).rstrip("/")) for h in harvests]
    for h in harvests:
        if not os.path.isdir(h):
            raise DatasetError("harvest folder not found: %s" % h, hint="check the path (harvest/<board>)")
    boards = [os.path.basename(h) for h in harvests]
    if len(set(boards)) != len(boards):
        raise DatasetError("two harvests have the same folder name (%s): the board is the folder's name"
                           % ", ".join(sorted(set(b for b in boards if boards.count(b) > 1))),
                           hint="give each board's harvest its own folder name")
    names = _names(harvests[0], "harvest")
    for h in harvests[1:]:
        other = _names(h, "harvest")
        if other != names:
            raise DatasetError("harvest %s was made by a model with other classes than %s: %s"
                               % (h, harvests[0], label_difference(names, other)),
                               hint="merge harvests of one label set at a time, into a dataset of those classes")
    if os.path.exists(os.path.join(dataset, "data.yaml")):
        have = _names(dataset, "dataset")
        if have != names:
            raise DatasetError("dataset %s has other classes than the harvests: the harvests are %s"
                               % (dataset, label_difference(have, names)),
                               hint="merge into a dataset of the same classes (or a new folder)")
    elif os.path.exists(dataset) and os.listdir(dataset):
        raise DatasetError("%s exists and is not a YOLO dataset (no data.yaml)" % dataset,
                           hint="merge into a new folder or an edgekit-merged dataset")

    hashes, taken, boxes, counts = _existing(dataset, names)
    added_boxes = dict((n, 0) for n in names)
    plan = []                           # (split, stem, image, label text, record)
    report_boards = {}
    for folder, board in zip(harvests, boards):
        stats = {"images": 0, "added": 0, "duplicates": 0, "train": 0, "val": 0}
        for image, _, text, rows, record in _read_harvest(folder, names):
            stats["images"] += 1
            sha = _sha(image)
            if sha in hashes:
                stats["duplicates"] += 1
                continue
            split = split_of(sha, val_fraction)
            hashes[sha] = split
            stem = "%s-%s" % (board, os.path.splitext(os.path.basename(image))[0])
            if (split, stem) in taken:
                stem = "%s-%s" % (stem, sha[:8])
            taken.add((split, stem))
            for row in rows:
                added_boxes[names[int(row[0])]] += 1
            stats["added"] += 1
            stats[split] += 1
            entry = {"file": "images/%s/%s.jpg" % (split, stem), "sha256": sha, "split": split, "board": board,
                     "source": os.path.relpath(image, folder)}
            for key in ("camera", "time", "why", "model_version", "model_sha256"):
                if key in record:
                    entry[key] = record[key]
            plan.append((split, stem, image, text, entry))
        report_boards[board] = stats

    new = dict((s, sum(1 for p in plan if p[0] == s)) for s in SPLITS)
    report = {"dataset": dataset, "names": names, "dry_run": bool(dry_run), "val_fraction": val_fraction,
              "boards": report_boards,
              "classes": dict((n, {"added": added_boxes[n], "total": boxes[n] + added_boxes[n]}) for n in names),
              "totals": {"added": len(plan), "train": new["train"], "val": new["val"],
                         "duplicates": sum(b["duplicates"] for b in report_boards.values()),
                         "dataset_train": counts["train"] + new["train"], "dataset_val": counts["val"] + new["val"]},
              "warnings": []}
    for split in SPLITS:
        if report["totals"]["dataset_%s" % split] == 0:
            report["warnings"].append("the %s split is empty: `edgekit train` needs images in both splits (add "
                                      "more images, or change --val-fraction)" % split)
    if not dry_run:
        _write(dataset, names, plan)
    return report


def _write(dataset, names, plan):
    os.makedirs(dataset, exist_ok=True)
    stage = tempfile.mkdtemp(prefix=".merge-", dir=dataset)
    moved = []
    try:
        for split, stem, image, text, _ in plan:
            for kind in ("images", "labels"):
                os.makedirs(os.path.join(stage, kind, split), exist_ok=True)
            shutil.copyfile(image, os.path.join(stage, "images", split, stem + ".jpg"))
            with open(os.path.join(stage, "labels", split, stem + ".txt"), "w") as handle:
                handle.write(text)
        for split in SPLITS:
            for kind in ("images", "labels"):
                os.makedirs(os.path.join(dataset, kind, split), exist_ok=True)
        for split, stem, _, _, _ in plan:
            for kind, ext in (("labels", ".txt"), ("images", ".jpg")):
                src = os.path.join(stage, kind, split, stem + ext)
                dst = os.path.join(dataset, kind, split, stem + ext)
                if os.path.exists(dst):
                    raise DatasetError("%s appeared while merging" % dst, hint="run the merge again")
                os.rename(src, dst)
                moved.append((dst, src))
        atomic_write_text(os.path.join(dataset, "data.yaml"),
                          "# edgekit dataset merge: YOLO dataset (edgekit train --data %s)\npath: .\n"
                          "train: images/train\nval: images/val\nnc: %d\nnames: %s\n"
                          % (os.path.basename(dataset), len(names), json.dumps(names)))
        manifest = os.path.join(dataset, "manifest.jsonl")
        old = ""
        if os.path.isfile(manifest):
            with open(manifest) as handle:
                old = handle.read()
        atomic_write_text(manifest, old + "".join(json.dumps(p[4], sort_keys=True) + "\n" for p in plan))
    except BaseException:
        for dst, src in reversed(moved):
            try:
                os.rename(dst, src)
            except OSError:
                pass
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
