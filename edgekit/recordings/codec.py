"""Which video codec this machine's OpenCV really writes, found by writing, never assumed.

``probe_codec(prefer=None)`` tries, in order, each candidate by opening a ``cv2.VideoWriter`` in a
temporary folder, writing a few frames, closing it and reading it back with ``cv2.VideoCapture``:

    jetson-h264   GStreamer: appsrc ! videoconvert ! nvvidconv ! nvv4l2h264enc ! h264parse ! qtmux ! filesink
                  (the Jetson's hardware encoder; needs OpenCV built with GStreamer, as JetPack's is)
    gst-x264, gst-openh264   the same pipeline with a software H.264 encoder (desktop GStreamer)
    avc1, h264    H.264 through OpenCV's FFmpeg backend (when its FFmpeg has an H.264 encoder)
    mp4v          MPEG-4 Part 2 in MP4 (every FFmpeg build; browsers other than Safari may not play it)
    mjpeg         Motion JPEG in AVI (OpenCV's built-in writer: always there, large files)

The result is a ``Codec`` whose ``describe()`` says what was chosen and why the ones before it were
not; the recorder logs that line at start. Nothing falls back silently.
"""

import os
import shutil
import tempfile

import cv2
import numpy as np

from edgekit.errors import ConfigError


def gst_h264_pipeline(path, fps, size, encoder="nvv4l2h264enc", bitrate=4000000):
    """The GStreamer pipeline string for cv2.VideoWriter(..., cv2.CAP_GSTREAMER, 0, fps, size, True).

    OpenCV's appsrc pushes BGR frames. For the Jetson's nvv4l2h264enc, videoconvert makes BGRx and
    nvvidconv copies it into NVMM memory as NV12 (what the hardware encoder takes on JetPack 4.6);
    a software encoder (x264enc, openh264enc) gets I420 from videoconvert. h264parse + qtmux write an
    MP4 whose index is written at EOS (VideoWriter.release()). The file name is quoted for
    GStreamer's parser.
    """
    w, h = int(size[0]), int(size[1])
    location = '"%s"' % os.fspath(path).replace("\\", "\\\\").replace('"', '\\"')
    head = "appsrc ! video/x-raw,format=BGR,width=%d,height=%d,framerate=%d/1 ! queue ! videoconvert ! " % (
        w, h, max(1, int(round(fps))))
    if encoder.startswith("nvv4l2"):
        middle = ("video/x-raw,format=BGRx ! nvvidconv ! video/x-raw(memory:NVMM),format=NV12 ! "
                  "%s bitrate=%d insert-sps-pps=true" % (encoder, int(bitrate)))
    else:
        middle = "video/x-raw,format=I420 ! %s" % encoder
    return head + middle + " ! h264parse ! qtmux ! filesink location=%s sync=false" % location


class Codec(object):
    """A way to write clips: ``name``, container ``ext``, ``h264`` or not, and the attempts before it."""

    def __init__(self, name, ext, fourcc=None, gstreamer=None, h264=False, attempts=()):
        self.name = name
        self.ext = ext
        self.fourcc = fourcc
        self.gstreamer = gstreamer        # the GStreamer encoder element, or None (OpenCV's FFmpeg)
        self.h264 = h264
        self.attempts = list(attempts)      # [(name, why it was not taken)]

    def open(self, path, fps, size):
        """A cv2.VideoWriter for ``path`` (opened, or None)."""
        if self.gstreamer:
            writer = cv2.VideoWriter(gst_h264_pipeline(path, fps, size, self.gstreamer), cv2.CAP_GSTREAMER, 0, float(fps),
                                     (int(size[0]), int(size[1])), True)
        else:
            writer = cv2.VideoWriter(os.fspath(path), cv2.VideoWriter_fourcc(*self.fourcc), float(fps),
                                     (int(size[0]), int(size[1])))
        if not writer.isOpened():
            writer.release()
            return None
        return writer

    def describe(self):
        text = "clips: %s in .%s%s" % (self.name, self.ext, " (H.264)" if self.h264 else " (not H.264)")
        if self.attempts:
            text += "; not available here: " + "; ".join("%s (%s)" % a for a in self.attempts)
        return text

    def to_dict(self):
        return {"codec": self.name, "ext": self.ext, "h264": self.h264,
                        "encoder": self.gstreamer, "not_available": [{"codec": n, "why": w} for n, w in self.attempts]}


CANDIDATES = (
    ("jetson-h264", dict(ext="mp4", gstreamer="nvv4l2h264enc", h264=True)),
    ("gst-x264", dict(ext="mp4", gstreamer="x264enc", h264=True)),
    ("gst-openh264", dict(ext="mp4", gstreamer="openh264enc", h264=True)),
    ("avc1", dict(ext="mp4", fourcc="avc1", h264=True)),
    ("h264", dict(ext="mp4", fourcc="H264", h264=True)),
    ("mp4v", dict(ext="mp4", fourcc="mp4v")),
    ("mjpeg", dict(ext="avi", fourcc="MJPG")),
)
NAMES = tuple(name for name, _ in CANDIDATES)


def gstreamer_available():
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1]
    return False


def _try(codec, folder):
    """None when ``codec`` writes a readable file here, else why not."""
    path = os.path.join(folder, "probe." + codec.ext)
    size = (64, 48)
    writer = codec.open(path, 10, size)
    if writer is None:
        return "the writer did not open"
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    for i in range(3):
        frame[:] = 40 * i
        writer.write(frame)
    writer.release()
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return "it wrote no file"
    cap = cv2.VideoCapture(path)
    try:
        ok, _ = cap.read()
    finally:
        cap.release()
    return None if ok else "its file does not read back"


def probe_codec(prefer=None):
    """The first candidate (from ``prefer`` on, when named) that really writes here -> Codec."""
    names = list(NAMES)
    if prefer not in (None, "auto"):
        if prefer not in names:
            raise ConfigError("unknown clip codec %r" % (prefer,), hint="use auto or one of: " + ", ".join(names))
        names = names[names.index(prefer):]
    attempts = []
    folder = tempfile.mkdtemp(prefix="edgekit-codec-")
    try:
        for name, kwargs in CANDIDATES:
            if name not in names:
                continue
            codec = Codec(name, attempts=list(attempts), **kwargs)
            if codec.gstreamer and not gstreamer_available():
                attempts.append((name, "OpenCV is built without GStreamer"))
                continue
            why = _try(codec, folder)
            if why is None:
                codec.attempts = list(attempts)
                return codec
            attempts.append((name, why))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    raise ConfigError("this OpenCV writes none of the clip codecs (%s)" % "; ".join("%s: %s" % a for a in attempts),
                      hint="install an OpenCV with FFmpeg or GStreamer")
