"""`edgekit demo` end to end, through the CLI as `make demo` runs it (with --quick sizes)."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "results.jsonl").write_text('{"stale": "from an earlier demo run"}\n')
    proc = subprocess.run([sys.executable, "-m", "edgekit", "demo", "--quick", "--out", str(out),
                           "--http", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the summary table on the terminal
    assert "edgekit demo (detection)" in proc.stdout
    for step in ("dataset", "train", "export", "quantize", "profile", "estimate", "bundle", "video", "serve"):
        assert "\n" + step in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert [s["step"] for s in report["steps"]][-1] == "serve"
    # every artefact the report promises exists
    for name in ("model.onnx", "model-nano.onnx", "model-int8.onnx", "model-nano-fp16.onnx", "model-int8.calib",
                 "bundle-jetson-nano.tar.gz", "camera.mp4", "results.jsonl", "report.md", "serve-summary.json"):
        assert (out / name).exists(), name
    assert (out / "train" / "best.pt").exists() and (out / "train" / "curves.png").exists()
    # export parity held and the Nano export passes the TensorRT 8.2 lint
    assert report["export"]["jetson-nano"]["opset"] <= 13
    assert report["export"]["jetson-nano"]["lint"]["ok"] is True
    # quantized for the CPU in the scheme ONNX Runtime runs fast; the Nano got FP16, not INT8
    assert report["quantize"]["int8"]["scheme"]["name"] == "U8S8"
    from edgekit.meta import read_meta

    assert read_meta(str(out / "model-nano-fp16.onnx")).precision == "fp16"
    assert read_meta(str(out / "model-int8.onnx")).precision == "int8"
    # the daemon processed every frame of the video and wrote one JSON line per frame
    serve = report["serve"]["summary"]
    frames = sum(1 for _ in open(str(out / "results.jsonl")))
    assert serve["frames"] == frames == 30
    assert "removed results.jsonl from an earlier demo run" in proc.stderr + proc.stdout
    p = report["profile"]["model.onnx"]["latency_ms"]
    assert 0 < p["p50"] <= p["p90"] <= p["p99"]
    assert report["estimate"]["latency_ms"] > 0
    md = (out / "report.md").read_text()
    assert "## The daemon over camera.mp4" in md and "frame_age" in md
    assert not [f for f in os.listdir(str(out)) if f.endswith((".tmp", ".part.mp4"))]


@pytest.mark.slow
def test_demo_with_a_backbone_detector(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "edgekit", "demo", "--quick", "--detector", "mobilenet_v3",
                           "--out", str(out), "--http", "127.0.0.1:0"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["detector"] == "mobilenet_v3" and report["steps"][-1]["step"] == "serve"
    assert report["export"]["jetson-nano"]["lint"]["ok"] is True
    assert report["quantize"]["int8"]["drop_basis"] == "map50_95"
    from edgekit.meta import read_meta

    meta = read_meta(str(out / "model-nano-fp16.onnx"))
    assert meta.precision == "fp16" and meta.decoder["type"] == "centernet" and meta.input["shape"][2:] == [320, 320]
    assert report["serve"]["summary"]["frames"] > 0
