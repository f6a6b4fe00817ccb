"""Fixtures for the service tests: a real mosquitto broker, frames and records like the pipeline's."""

import os
import pwd
import shutil
import socket
import subprocess
import time

import numpy as np
import pytest

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)


def free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Broker(object):
    """A real mosquitto on 127.0.0.1:<free port>, anonymous, that a test can stop and restart."""

    def __init__(self, workdir, extra=""):
        self.port = free_port()
        self.workdir = str(workdir)
        self.config = os.path.join(self.workdir, "mosquitto.conf")
        self.log = os.path.join(self.workdir, "mosquitto.log")
        with open(self.config, "w") as handle:
            # persistence: subscribers' sessions and queued QoS 1 messages survive a restart.
            # user: mosquitto started as root drops to "mosquitto", which could not write here
            handle.write("user %s\n" % pwd.getpwuid(os.getuid()).pw_name)
            handle.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\n"
                         "persistence_location %s/\nautosave_interval 0\n"
                         "log_dest file %s\nlog_type error\nlog_type warning\nlog_type notice\n"
                         % (self.port, self.workdir, self.log))
            handle.write(extra)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.config], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not wait_port(self.port):
            self.stop()
            raise RuntimeError("mosquitto did not start on port %d (log: %s)" % (self.port, self.log))
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture
def broker(tmp_path):
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (apt install mosquitto; .ci/system-packages.sh installs it)")
    b = Broker(tmp_path).start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def make_broker(tmp_path):
    """make_broker(extra_config_lines) -> a started Broker (TLS listeners, password files...)."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (apt install mosquitto; .ci/system-packages.sh installs it)")
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
