"""`--json` means JSON on stdout in every command that has it: each command runs here on tiny inputs
and its stdout must parse as one JSON document (people's tables and progress go to stderr)."""

import json
import os

import numpy as np
import pytest

from edgekit import cli
from test_cli_flags import EXPECTED, commands_with

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def tiny(tmp_path, name="m.onnx", scale=1.0):
    from bundle.bundle_helpers import make_classifier

    return make_classifier(tmp_path / name, scale=scale)


def bundle(tmp_path, name="b.tar.gz", scale=1.0):
    out = str(tmp_path / name)
    assert cli.main(["bundle", tiny(tmp_path, "b%s.onnx" % scale, scale), "--target", "x86-cpu", "--out", out]) == 0
    return out


def installed(tmp_path, count=1):
    root = str(tmp_path / "root")
    for i in range(count):
        assert cli.main(["bundle", "install", bundle(tmp_path, "b%d.tar.gz" % i, 1.0 + i), "--root", root,
                         "--target", "x86-cpu"]) == 0
    return root


def profile_report(tmp_path):
    out = str(tmp_path / "r.json")
    assert cli.main(["profile", tiny(tmp_path), "--backend", "onnxruntime", "--duration", "0.05", "--min-iters", "5",
                     "--warmup-ms", "0", "--no-telemetry", "--report", out]) == 0
    return out


def fleet_argv(tmp_path):
    from _mosquitto import MOSQUITTO, Broker

    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed")
    broker = Broker(tmp_path).start()
    return ["fleet", "status", "--broker", "127.0.0.1:%d" % broker.port, "--wait", "0.2"], broker.stop


def train_argv(tmp_path):
    pytest.importorskip("torch")
    import yaml

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "tiny-cls", "task": "classification", "model": {"arch": "tiny_cnn", "kwargs": {"width": 4}},
        "input": {"size": [32, 32]}, "epochs": 1, "batch": 8, "data": {"shapes": {"train": 12, "val": 6, "size": 32}}}))
    return ["train", str(recipe), "--data", "shapes", "--data-cache", str(tmp_path / "data"), "--out",
            str(tmp_path / "o"), "--no-progress"]


def track_argv(tmp_path):
    dets = tmp_path / "det.txt"              # MOTChallenge detections: one box walking right for 5 frames
    dets.write_text("".join("%d,-1,%d,10,20,40,0.9,-1,-1,-1\n" % (f, 10 + 5 * f) for f in range(1, 6)))
    return ["track", str(dets), "--out", str(tmp_path / "tracks.txt"), "--fps", "10"]


def dataset_argv(tmp_path):
    from edgekit.recordings.harvest import Harvester

    h = Harvester(str(tmp_path / "harvest" / "nano-01"), ["a", "b"], "v1", every_s=0, log=lambda s: None)
    h.offer(np.zeros((32, 32, 3), np.uint8), {"detections": [{"index": 0, "score": 0.4, "box": [4, 4, 20, 20]}]}, t=1.0)
    h.close()
    return ["dataset", "merge", str(tmp_path / "harvest" / "nano-01"), "--into", str(tmp_path / "ds")]


# path -> function(tmp_path) -> argv (without --json), or (argv, cleanup)
CASES = {
    "build": lambda t: ["build", "--list", "--cache-dir", str(t / "cache")],
    "bundle make": lambda t: ["bundle", "make", tiny(t), "--target", "x86-cpu", "--out", str(t / "o.tar.gz")],
    "bundle verify": lambda t: ["bundle", "verify", bundle(t), "--target", "x86-cpu"],
    "bundle install": lambda t: ["bundle", "install", bundle(t), "--root", str(t / "root"), "--target", "x86-cpu"],
    "bundle rollback": lambda t: ["bundle", "rollback", "--root", installed(t, 2)],
    "bundle list": lambda t: ["bundle", "list", "--root", installed(t)],
    "dataset merge": dataset_argv,
    "doctor": lambda t: ["doctor", "--root", str(t)],
    "export": lambda t: ["export", tiny(t), "--target", "x86-cpu", "--out", str(t / "e.onnx")],
    "fleet status": fleet_argv,
    "inspect": lambda t: ["inspect", tiny(t), "--target", "jetson-nano"],
    "profile run": lambda t: ["profile", "run", tiny(t), "--backend", "onnxruntime", "--duration", "0.05",
                              "--min-iters", "5", "--warmup-ms", "0", "--no-telemetry"],
    "profile compare": lambda t: ["profile", "compare", profile_report(t), profile_report(t), "--fail-over", "1000"],
    "quantize": lambda t: ["quantize", tiny(t), "--precision", "fp16", "--target", "jetson-nano", "--out",
                           str(t / "q.onnx")],
    "serve": lambda t: ["serve", "--model", tiny(t), "--backend", "onnxruntime", "--source",
                        "synthetic://?width=32&height=24&fps=0", "--frames", "3"],
    "track": track_argv,
    "train": train_argv,
}


def test_every_command_with_json_has_a_case():
    assert sorted(CASES) == commands_with("--json") == EXPECTED["--json"]


@pytest.mark.parametrize("path", sorted(CASES))
def test_json_is_one_document_on_stdout(path, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made = CASES[path](tmp_path)
    argv, cleanup = made if isinstance(made, tuple) else (made, None)
    capsys.readouterr()
    try:
        code = cli.main(argv + ["--json"])
    finally:
        if cleanup:
            cleanup()
    out, err = capsys.readouterr()
    assert code in ((0, 1) if path == "doctor" else (0,)), err
    doc = json.loads(out)
    assert isinstance(doc, (dict, list)) and doc, out
    assert "Traceback" not in err
    if path == "profile compare":
        assert doc["regressed"] is False and doc["rows"]
    if path == "bundle make":
        assert doc["target"] == "x86-cpu" and os.path.exists(doc["out"])
