"""The status page in real headless Chromium, served while frames are being submitted.

Opened the documented way for a token-protected server (``/?token=...`` once; the session cookie
carries the page's own requests, the stream included). Keeps a screenshot under
runs/test-artifacts/ for people to look at.
"""

import os
import re
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

from edgekit.service.sinks.http import HttpServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "runs", "test-artifacts")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
TOKEN = "browser-test-token-0123456789"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt install chromium)")


def chromium(tmp_path, url, *extra):
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=%s" % (tmp_path / "profile"),
            "--window-size=1100,700", "--virtual-time-budget=4000"] + list(extra) + [url]
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90)
    return proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


@pytest.fixture
def live_server(frames):
    state = {"frames": 0}

    def status():
        return {"ready": True, "model": "shapes-detector.onnx", "precision": "fp16", "backend": "onnxruntime",
                "frames": state["frames"], "fps": 29.7, "dropped": 2, "reconnects": 1, "uptime_s": 754.2,
                "source": "synthetic://", "last_error": None, "device": "cam1"}

    server = HttpServer(port=0, token=TOKEN, status_fn=status, labels=["square", "box"], stream_fps=0).start()
    stop = threading.Event()

    def feed():
        seq = 0
        while not stop.is_set():
            seq += 1
            state["frames"] = seq
            frame, record = frames(seq)
            server.submit(record, frame)
            time.sleep(0.03)

    feeder = threading.Thread(target=feed)
    feeder.start()
    time.sleep(0.2)
    try:
        yield server
    finally:
        stop.set()
        feeder.join()
        server.close()


def test_page_shows_live_figures_and_the_stream(live_server, tmp_path):
    dom, err = chromium(tmp_path, live_server.url + "?token=" + TOKEN, "--dump-dom")
    assert 'id="ready" class="badge ok">ready<' in dom, err[-2000:]
    frames = int(re.search(r'<dd id="frames">(\d+)</dd>', dom).group(1))
    assert frames > 0
    assert 'data-top="box"' in dom and "1 object" in dom
    assert '<dd id="model">shapes-detector.onnx</dd>' in dom and '<dd id="precision">fp16</dd>' in dom
    assert '<dd id="uptime">12m 34s</dd>' in dom
    memory = re.search(r'<dd id="memory">(\d+) MB, (\d+) threads, (\d+) files</dd>', dom)
    assert memory and int(memory.group(1)) > 10 and int(memory.group(2)) > 1, dom  # this process's /proc figures
    assert 'src="v1/stream.mjpg"' in dom and "stream unavailable" not in dom
    assert "<td>infer</td><td>3.2</td>" in dom
    assert TOKEN not in dom                                 # the token is not left in the page


def test_screenshot_is_kept_as_an_artefact(live_server, tmp_path):
    import cv2

    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "http-status-page.png")
    if os.path.exists(shot):
        os.remove(shot)
    _, err = chromium(tmp_path, live_server.url + "?token=" + TOKEN, "--screenshot=%s" % shot)
    assert os.path.exists(shot), err[-2000:]
    image = cv2.imread(shot, cv2.IMREAD_COLOR)
    assert image.shape[:2] == (700, 1100)
    # the streamed frame is on screen: the moving rectangle's fill colour (BGR 40,160,230) and the
    # frame background (40,40,40) both appear in the left part of the page
    view = image[60:600, :720].astype(int)
    fill = (np.abs(view - np.array([40, 160, 230])).sum(axis=2) < 40).mean()
    background = (np.abs(view - np.array([40, 40, 40])).sum(axis=2) < 12).mean()
    assert fill > 0.02 and background > 0.2, (fill, background)
    assert live_server.latest.encodes > 0
    metrics = live_server.metrics.render_prometheus()
    assert 'edgekit_http_requests_total{code="200",route="/v1/stream.mjpg"}' in metrics
    assert 'code="401"' not in metrics                     # every request of the page was authorised
