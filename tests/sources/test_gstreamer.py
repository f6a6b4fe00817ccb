"""The GStreamer path through Debian's own /usr/bin/python3, its system numpy and GStreamer-enabled
cv2, with the project on PYTHONPATH: the situation on the board (JetPack's Python + OpenCV)."""

import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYSTEM_PYTHON = "/usr/bin/python3"

pytestmark = pytest.mark.system_python


def system_python(code, timeout=60):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run([SYSTEM_PYTHON, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, env=env, cwd="/")


def gstreamer_reason():
    if not os.path.exists(SYSTEM_PYTHON):
        return "%s is absent" % SYSTEM_PYTHON
    proc = system_python("import cv2; from edgekit.sources.capture import has_gstreamer; "
                         "print('GST', has_gstreamer(cv2))")
    if proc.returncode != 0:
        return "%s cannot import cv2 (apt install python3-opencv): %s" % (
            SYSTEM_PYTHON, proc.stderr.strip().splitlines()[-1:])
    if "GST True" not in proc.stdout:
        return "%s's cv2 has no GStreamer" % SYSTEM_PYTHON
    return None


REASON = gstreamer_reason()
needs_gst = pytest.mark.skipif(REASON is not None, reason=REASON or "")

READ_FRAMES = """
import json, sys
from edgekit.sources import open_source
source = open_source("gst://videotestsrc num-buffers=30 ! video/x-raw,width=160,height=120 ! videoconvert ! appsink")
shapes = []
with source:
    while True:
        frame = source.read(timeout=5.0)
        if frame is None:
            break
        shapes.append(list(frame.image.shape) + [str(frame.image.dtype)])
print(json.dumps({"pipeline": source.pipeline, "shapes": shapes, "stats": source.stats(),
                  "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "onnx"))}))
"""


@needs_gst
def test_videotestsrc_through_system_cv2():
    proc = system_python(READ_FRAMES)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["pipeline"].endswith("appsink drop=true max-buffers=1 sync=false")
    assert 1 <= len(out["shapes"]) <= 30
    assert all(s == [120, 160, 3, "uint8"] for s in out["shapes"])
    assert out["stats"]["eof"] is True and out["stats"]["frames"] == len(out["shapes"]) + out["stats"]["dropped"]
    assert out["modules"] == []


@needs_gst
def test_broken_pipeline_is_one_clear_error():
    proc = system_python("from edgekit.sources import open_source\n"
                         "try:\n"
                         "    open_source('gst://nosuchelement ! appsink').start()\n"
                         "except Exception as exc:\n"
                         "    print(type(exc).__name__, exc)\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("SourceError cannot open gst://nosuchelement ! appsink drop=true")
    assert "gst-launch-1.0" in proc.stdout


@needs_gst
def test_serve_from_a_gstreamer_pipeline_under_system_python(tmp_path):
    """`edgekit serve` on Debian's python3 reading a GStreamer pipeline: the board's situation."""
    import sys

    sys.path.insert(0, os.path.join(ROOT, "tests", "service"))
    from daemon_helpers import tiny_classifier

    model = tiny_classifier(tmp_path / "tiny.onnx")
    summary = str(tmp_path / "summary.json")
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run([SYSTEM_PYTHON, "-m", "edgekit", "serve", "--model", model, "--source",
                           "gst://videotestsrc is-live=true num-buffers=200 ! video/x-raw,width=320,height=240 ! videoconvert ! "
                           "video/x-raw,format=BGR ! appsink", "--frames", "10", "--summary", summary],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60,
                          env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    data = json.load(open(summary))
    assert data["frames"] == 10 and data["source"].endswith("appsink drop=true max-buffers=1 sync=false")
    assert "frames 320x240 are resized (stretch) to 32x32" in proc.stderr
