"""Fixtures for the service tests: a real mosquitto broker, frames and records like the pipeline's."""

import time

import numpy as np
import pytest

from _mosquitto import MOSQUITTO, SKIP_REASON, Broker  # noqa: F401


@pytest.fixture
def broker(tmp_path):
    if MOSQUITTO is None:
        pytest.skip(SKIP_REASON)
    b = Broker(tmp_path).start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def make_broker(tmp_path):
    """make_broker(extra_config_lines) -> a started Broker (TLS listeners, password files...)."""
    if MOSQUITTO is None:
        pytest.skip(SKIP_REASON)
    made = []

    def make(extra=""):
        workdir = tmp_path / ("broker%d" % len(made))
        workdir.mkdir()
        b = Broker(workdir, extra).start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


def make_frame(seq, width=320, height=240):
    """A BGR frame with a moving filled rectangle (what a detection would box)."""
    frame = np.full((height, width, 3), 40, dtype=np.uint8)
    x = 20 + (seq * 7) % (width - 120)
    frame[60:160, x:x + 80] = (40, 160, 230)
    return frame, [float(x), 60.0, float(x + 80), 160.0]


def make_record(seq, box=None, device="cam1", task="detection"):
    if task == "detection":
        result = {"task": "detection", "detections": [
            {"index": 1, "label": "box", "score": 0.91, "box": box or [20.0, 60.0, 100.0, 160.0]}]}
    else:
        result = {"task": "classification", "top": [{"index": 2, "label": "circle", "score": 0.87},
                                                    {"index": 0, "label": "square", "score": 0.1}]}
    now = time.time()
    return {"device": device, "seq": seq, "source": "synthetic://", "model": "tiny.onnx",
            "ts_capture": now - 0.01, "ts_published": now, "result": result,
            "latency_ms": {"preprocess": 0.8, "infer": 3.2, "postprocess": 0.3, "end_to_end": 5.1}}


@pytest.fixture
def record():
    """record(seq, box=None, device="cam1", task="detection") -> a record like the pipeline's."""
    return make_record


@pytest.fixture
def frames():
    """make(seq) -> (frame, record) pair."""
    def make(seq, task="detection"):
        frame, box = make_frame(seq)
        return frame, make_record(seq, box, task=task)
    return make
