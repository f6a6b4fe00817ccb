"""RTSP against a real RTSP server (GStreamer's, in Debian's python3): the FFmpeg decoder in this
venv's cv2, the GStreamer decoder through Debian's cv2, and reconnection when the server restarts."""

import json
import os
import subprocess
import time

import pytest

from edgekit.sources import open_source
from _net import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SYSTEM_PYTHON = "/usr/bin/python3"


def server_reason():
    if not os.path.exists(SYSTEM_PYTHON):
        return "%s is absent" % SYSTEM_PYTHON
    proc = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                           "from gi.repository import GstRtspServer"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    if proc.returncode != 0:
        return "no GStreamer RTSP server for %s (apt install python3-gi gir1.2-gst-rtsp-server-1.0)" % SYSTEM_PYTHON
    return None


REASON = server_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")



class RtspServer(object):
    def __init__(self):
        self.port = free_port()
        self.proc = None
        self.url = "rtsp://127.0.0.1:%d/test" % self.port

    def start(self):
        self.proc = subprocess.Popen([SYSTEM_PYTHON, os.path.join(HERE, "rtsp_server.py"), str(self.port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True)
        assert self.proc.stdout.readline().strip() == "READY"
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc.stdout.close()
            self.proc = None


@pytest.fixture
def rtsp_server():
    server = RtspServer().start()
    try:
        yield server
    finally:
        server.stop()


def read_frames(source, n, timeout=10.0):
    frames, deadline = [], time.monotonic() + timeout
    while len(frames) < n and time.monotonic() < deadline:
        frame = source.read(timeout=1.0)
        if frame is not None:
            frames.append(frame)
    return frames


def test_ffmpeg_reads_and_reconnects_after_the_server_restarts(rtsp_server):
    source = open_source(rtsp_server.url, decoder="ffmpeg", read_timeout=1.0, backoff_initial=0.1, backoff_max=0.5)
    with source:
        frames = read_frames(source, 5)
        assert len(frames) == 5 and frames[0].image.shape == (240, 320, 3)
        rtsp_server.stop()
        deadline = time.monotonic() + 20
        while source.stats()["failures"] == 0 and time.monotonic() < deadline:
            source.read(timeout=0.2)
        assert source.stats()["failures"] >= 1 and not source.connected
        rtsp_server.start()
        frames = read_frames(source, 5, timeout=30)
        stats = source.stats()
    assert len(frames) == 5 and stats["reconnects"] >= 1
    assert source.describe() == rtsp_server.url + " (ffmpeg)"


def test_gstreamer_decoder_through_system_python(rtsp_server):
    code = ("import json\nfrom edgekit.sources import open_source\n"
            "s = open_source(%r, decoder='gst')\n"
            "with s:\n"
            "    frames = [s.read(5.0) for _ in range(5)]\n"
            "print(json.dumps({'shapes': [list(f.image.shape) for f in frames if f is not None],"
            " 'describe': s.describe()}))\n" % rtsp_server.url)
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run([SYSTEM_PYTHON, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["shapes"] == [[240, 320, 3]] * 5 and out["describe"].endswith("(gst)")
