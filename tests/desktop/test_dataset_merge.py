"""Harvest on "boards" (the real Harvester) -> `edgekit dataset merge` -> `edgekit train` for one epoch."""

import json
import os

import numpy as np
import pytest
import yaml

from edgekit import cli
from edgekit.desktop.data.datasets import load_yolo
from edgekit.desktop.data.merge import split_of
from edgekit.recordings.harvest import Harvester

LABELS = ["circle", "square", "triangle"]


def image(seed, size=64):
    rng = np.random.RandomState(seed)
    frame = (rng.rand(size, size, 3) * 60).astype(np.uint8)
    x, y = 8 + seed % 20, 10 + (seed * 7) % 20
    frame[y:y + 24, x:x + 24] = (40 * (seed % 5), 255, 200)
    return frame, [x, y, x + 24, y + 24]


def harvest(folder, seeds, labels=LABELS, camera="cam"):
    h = Harvester(str(folder), labels, "det-v1", every_s=0, log=lambda s: None)
    for i, seed in enumerate(seeds):
        frame, box = image(seed)
        kept = h.offer(frame, {"detections": [{"index": seed % len(labels), "score": 0.4, "box": box}]},
                       t=1000.0 + i, camera=camera)
        assert kept == ["unsure"]
    assert h.flush()
    h.close()
    return str(folder)


def tree(folder):
    out = []
    for root, _, files in os.walk(folder):
        out.extend(os.path.relpath(os.path.join(root, f), folder) for f in files)
    return sorted(out)


@pytest.fixture
def boards(tmp_path):
    # seed 3 is seen by both boards (same frame bytes): merged once
    return [harvest(tmp_path / "harvest" / "nano-01", range(0, 8)),
            harvest(tmp_path / "harvest" / "nano-02", [3] + list(range(8, 14)), camera="yard")]


def test_merge_dedupes_keeps_the_split_and_reports(boards, tmp_path, capsys):
    dataset = str(tmp_path / "ds")
    assert cli.main(["dataset", "merge"] + boards + ["--into", dataset, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["boards"]["nano-01"]["added"] == 8 and report["boards"]["nano-02"] == {
        "images": 7, "added": 6, "duplicates": 1, "train": report["boards"]["nano-02"]["train"],
        "val": report["boards"]["nano-02"]["val"]}
    assert report["totals"]["added"] == 14 and report["totals"]["duplicates"] == 1
    assert sum(c["added"] for c in report["classes"].values()) == 14
    manifest = [json.loads(line) for line in open(os.path.join(dataset, "manifest.jsonl"))]
    assert len(manifest) == 14 and all(m["split"] == split_of(m["sha256"], 0.2) for m in manifest)
    assert {m["board"] for m in manifest} == {"nano-01", "nano-02"} and manifest[0]["why"] == ["unsure"]
    for split in ("train", "val"):
        samples, names = load_yolo(dataset, split)
        assert names == LABELS and len(samples) == report["totals"]["dataset_" + split]
    before = dict((m["sha256"], m["split"]) for m in manifest)

    # again, with a third board and a larger val fraction: nothing already merged moves or repeats
    third = harvest(tmp_path / "harvest" / "nano-03", range(14, 20))
    assert cli.main(["dataset", "merge"] + boards + [third, "--into", dataset, "--val-fraction", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "nano-03" in out and "6 image(s) added" in out and "15 duplicate(s)" in out
    manifest = [json.loads(line) for line in open(os.path.join(dataset, "manifest.jsonl"))]
    assert len(manifest) == 20 and len({m["sha256"] for m in manifest}) == 20
    for m in manifest:
        where = os.path.join(dataset, m["file"])
        assert os.path.isfile(where) and m["split"] in m["file"]
        if m["sha256"] in before:
            assert m["split"] == before[m["sha256"]]


def test_other_label_sets_are_refused_and_nothing_is_written(boards, tmp_path, capsys):
    odd = harvest(tmp_path / "harvest" / "nano-09", [30], labels=["circle", "square", "star"])
    dataset = str(tmp_path / "ds")
    assert cli.main(["dataset", "merge"] + boards + [odd, "--into", dataset]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "without triangle; with star" in err[0] and "nano-09" in err[0]
    assert not os.path.exists(dataset)
    assert cli.main(["dataset", "merge"] + boards + ["--into", dataset]) == 0
    capsys.readouterr()
    snapshot = tree(dataset)
    assert cli.main(["dataset", "merge", odd, "--into", dataset]) == 2
    assert "dataset" in capsys.readouterr().err and tree(dataset) == snapshot


def test_a_bad_label_file_stops_the_merge_before_anything_moves(boards, tmp_path, capsys):
    dataset = str(tmp_path / "ds")
    assert cli.main(["dataset", "merge", boards[0], "--into", dataset]) == 0
    snapshot = tree(dataset)
    bad = sorted(os.listdir(os.path.join(boards[1], "labels")))[-1]
    with open(os.path.join(boards[1], "labels", bad), "a") as handle:
        handle.write("7 0.5 0.5 0.1 0.1\n")
    capsys.readouterr()
    assert cli.main(["dataset", "merge", boards[1], "--into", dataset]) == 2
    assert "class 7 out of range" in capsys.readouterr().err and tree(dataset) == snapshot


def test_harvest_merge_train(boards, tmp_path, capsys):
    pytest.importorskip("torch")
    dataset = str(tmp_path / "ds")
    assert cli.main(["dataset", "merge"] + boards + ["--into", dataset, "--val-fraction", "0.3"]) == 0
    recipe = tmp_path / "det.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "tiny-det", "task": "detection", "model": {"arch": "tiny_centernet", "kwargs": {"width": 4}},
        "input": {"size": [48, 48]}, "preprocess": {"resize": "letterbox"}, "epochs": 1, "batch": 8}))
    capsys.readouterr()
    out = str(tmp_path / "run")
    assert cli.main(["train", str(recipe), "--data", dataset, "--out", out, "--no-progress", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["epochs_run"] == 1 and os.path.isfile(os.path.join(out, "best.pt"))
    with open(result["labels_path"]) as handle:
        text = handle.read()
    assert all(name in text for name in LABELS)          # the model's classes are the harvest's
