"""Pipeline mode runs the daemon's own Pipeline (C5). Stage accounting is checked exactly with a
fake clock, a deterministic fake runner/predictor and a fake source; then on the real parts."""

import json

import numpy as np
import pytest

from edgekit import cli
from edgekit.profiler import pipeline as ppl
from edgekit.service import pipeline as service_pipeline
from edgekit.sources.base import Frame
from _clock import FakeClock


class FakeSource(object):
    """Frames captured 3 ms before read() hands them over; read() itself waits 2 ms."""

    def __init__(self, clock, frames=1000):
        self.clock, self.left, self.seq = clock, frames, 0
        self.connected, self.last_error = True, None

    def start(self):
        return self

    def read(self, timeout=1.0):
        if self.left <= 0:
            return None
        self.left -= 1
        self.clock.advance(2.0)
        self.seq += 1
        return Frame(np.zeros((8, 8, 3), np.uint8), self.seq, self.clock.time() - 0.003, self.clock.now - 0.003)

    @property
    def eof(self):
        return self.left <= 0

    def stats(self):
        return {"frames": self.seq, "dropped": 0, "reconnects": 0, "eof": self.eof}

    def describe(self):
        return "fake://"

    def close(self, timeout=2.0):
        pass


class FakeRunner(object):
    name = "fake"
    model_path = "fake.onnx"
    is_active = True

    def describe(self):
        return {"backend": "fake", "version": "0"}


class FakePredictor(object):
    """Deterministic stage costs: preprocess 1 ms, infer 5 ms, postprocess 0.5 ms."""

    meta = None

    def __init__(self, clock):
        self.clock, self.runner = clock, FakeRunner()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def preprocess(self, image):
        self.clock.advance(1.0)
        return {"images": image}, None

    def infer(self, feed):
        self.clock.advance(5.0)
        return {"logits": np.zeros((1, 2), np.float32)}

    def postprocess(self, outputs, info):
        self.clock.advance(0.5)
        return {"task": "classification", "top": []}


class FakeSink(object):
    def __init__(self, clock):
        self.clock, self.records = clock, []

    def submit(self, record, frame=None):
        self.clock.advance(0.25)
        self.records.append(record)
        return True


def test_stage_accounting_is_exact_with_a_fake_clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(service_pipeline, "time", clock)
    sink = FakeSink(clock)
    result = ppl.profile_pipeline("fake.onnx", None, frames=20, warmup_ms=0, predictor=FakePredictor(clock),
                                  source_obj=FakeSource(clock), sinks=[sink], telemetry=False, log=lambda m: None)
    stages = result["stages"]
    expected = {"capture": 2.0, "preprocess": 1.0, "infer": 5.0, "postprocess": 0.5, "output": 0.25,
                "end_to_end": 6.75, "frame_age": 3.0 + 1.0 + 5.0 + 0.5}
    for stage, ms in expected.items():
        assert stages[stage]["count"] == 20, stage
        assert stages[stage]["min"] == pytest.approx(ms) and stages[stage]["max"] == pytest.approx(ms), stage
    acc = result["accounting"]
    assert acc["frames"] == 20 and acc["unaccounted_mean_ms"] == pytest.approx(0.0, abs=1e-6)
    assert acc["stage_sum_mean_ms"] == pytest.approx(6.75)
    # warm-up frames are kept apart; the first frame is reported on its own
    assert len(sink.records) == 20 + ppl.MIN_WARMUP_FRAMES
    assert result["first_frame_ms"]["infer"] == pytest.approx(5.0) and result["first_inference_ms"] == pytest.approx(5.0)
    assert result["latency_ms"]["p50"] == pytest.approx(6.75) and result["frame_age_ms"]["p50"] == pytest.approx(9.5)
    assert result["kind"] == "pipeline" and result["frames"] == 20 and result["pipeline"]["frames"] == 23


def test_finite_source_ends_the_run(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(service_pipeline, "time", clock)
    result = ppl.profile_pipeline("fake.onnx", None, duration_s=0.05, min_frames=1000, warmup_ms=0,
                                  predictor=FakePredictor(clock), source_obj=FakeSource(clock, frames=10),
                                  telemetry=False, log=lambda m: None)
    assert result["frames"] == 10 - ppl.MIN_WARMUP_FRAMES
    assert any("too few" in w for w in result["warnings"])


def test_accounting_by_hand():
    samples = {"preprocess": [1.0, 2.0], "infer": [5.0, 5.0], "postprocess": [0.5, 0.5], "output": [0.5, 0.5],
               "end_to_end": [7.5, 8.5]}
    acc = ppl.accounting(samples)
    assert acc["unaccounted_mean_ms"] == pytest.approx(0.5) and acc["unaccounted_max_ms"] == pytest.approx(0.5)
    assert ppl.accounting({"preprocess": []}) is None


def test_real_pipeline_from_the_cli(tiny_model, tmp_path, capsys):
    """The real daemon Pipeline, a real Predictor on ONNX Runtime and the synthetic source."""
    out = tmp_path / "p.json"
    code = cli.main(["profile", tiny_model, "--pipeline", "--source", "synthetic://?width=64&height=48&fps=0",
                     "--frames", "30", "--warmup-ms", "0", "--backend", "onnxruntime", "--json", str(out),
                     "--plot", str(tmp_path / "p.png"), "--csv", str(tmp_path / "p.csv")])
    assert code == 0
    assert "pipeline stages" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["kind"] == "pipeline" and data["frames"] == 30
    for stage in ("capture", "preprocess", "infer", "postprocess", "output", "end_to_end", "frame_age"):
        assert data["stages"][stage]["count"] == 30
    acc = data["accounting"]
    # end_to_end = preprocess + infer + postprocess + output + hand-off gaps (never negative)
    assert acc["unaccounted_mean_ms"] >= -1e-6 and acc["stage_sum_mean_ms"] <= acc["end_to_end_mean_ms"] + 1e-6
    assert data["stages"]["frame_age"]["mean"] >= data["stages"]["infer"]["mean"]
    assert (tmp_path / "p.csv").read_text().splitlines()[0].startswith("stage,")
    assert (tmp_path / "p.png").stat().st_size > 1000


@pytest.mark.parametrize("workers", ["auto", "1", "2"])
def test_real_pipeline_with_the_daemons_workers(tiny_model, tmp_path, capsys, workers):
    """--workers as `edgekit serve` takes it: auto gives a lossless source on ONNX Runtime one worker
    per core (at most 4), each with the daemon's intra-op threads; the JSON and the table say so."""
    import os

    out = tmp_path / "w.json"
    code = cli.main(["profile", tiny_model, "--pipeline", "--source", "synthetic://?width=64&height=48&fps=0",
                     "--frames", "24", "--warmup-ms", "0", "--backend", "onnxruntime", "--json", str(out),
                     "--workers", workers, "--no-telemetry"])
    assert code == 0
    captured = capsys.readouterr()
    data = json.loads(out.read_text())
    expected = min(os.cpu_count() or 1, 4) if workers == "auto" else int(workers)
    assert data["pipeline"]["workers"] == expected and data["frames"] == 24
    assert data["pipeline"]["chunk"] == (16 if expected > 1 else 1)       # chunks as the daemon takes them
    assert data["stages"]["infer"]["count"] == 24
    if expected > 1:
        assert "pipeline with %d workers" % expected in captured.err
        assert "%d workers: frames in flight" % expected in captured.out
        assert data["context"]["threads"] == max(1, (os.cpu_count() or 1) // expected)
        assert data["pipeline"]["workers_why"] in ("pipeline.workers: 2",
                                                   "auto: every frame of the source counts and inference runs on the CPU")
    else:
        assert "pipeline sequential" in captured.err


def test_pipeline_workers_refused_where_the_daemon_refuses_them(tiny_model, capsys):
    for argv, message in (
            (["--pipeline", "--source", "synthetic://?fps=0", "--workers", "2", "--backend", "opencv"],
             "the opencv runner infers one frame at a time; pipeline workers must be 1"),
            (["--pipeline", "--source", "synthetic://?fps=0", "--workers", "0"], "--workers must be auto or an integer"),
            (["--workers", "2"], "--source, --frames, --meta and --workers are for --pipeline")):
        code = cli.main(["profile", tiny_model] + argv)
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, err


def test_real_pipeline_on_a_video_file_until_its_end(tiny_model, make_video):
    """A real MP4 written by OpenCV as the camera stand-in; the run stops at the end of the file."""
    video = make_video("clip.mp4", frames=25, width=96, height=64)
    result = ppl.profile_pipeline(tiny_model, video, backend="onnxruntime", duration_s=30.0, min_frames=1000,
                                  warmup_ms=0, telemetry=False, log=lambda m: None, realtime=False)
    counted = result["frames"] + ppl.MIN_WARMUP_FRAMES
    assert result["pipeline"]["frames"] == counted == 25 and result["pipeline"]["dropped"] == 0     # lossless file
    assert result["stages"]["infer"]["count"] == result["frames"]
    assert result["source"].endswith("clip.mp4")
