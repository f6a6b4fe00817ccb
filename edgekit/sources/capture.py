"""Sources read through OpenCV's ``cv2.VideoCapture`` (files, V4L2, RTSP, GStreamer pipelines).

Read timeouts: where OpenCV supports ``CAP_PROP_OPEN_TIMEOUT_MSEC`` / ``CAP_PROP_READ_TIMEOUT_MSEC``
(FFmpeg backend, OpenCV >= 4.5) they are passed at open time so a vanished camera makes a read
fail instead of hanging. Where not (OpenCV 4.1.1 on JetPack 4.6), a hung read stalls only the
grabber thread: the inference loop keeps its own timeout and the systemd watchdog is no longer
petted, so systemd restarts the daemon.
"""

from edgekit.sources.base import Source, SourceError


def cv2_module():
    try:
        import cv2
    except ImportError:
        raise SourceError("video sources need OpenCV (cv2)",
                          hint="pip install opencv-python-headless; on a Jetson use JetPack's python3-opencv")
    return cv2


def has_gstreamer(cv2=None):
    """True when this OpenCV was built with GStreamer (JetPack's and Debian's are; PyPI's is not)."""
    cv2 = cv2 or cv2_module()
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1]
    return False


def ensure_appsink(pipeline):
    """Make the pipeline end in ``appsink drop=true max-buffers=1 sync=false``: OpenCV sets
    max-buffers=1 when absent but never drop and leaves sync (docs/design/platform.md), and a buffered
    appsink is where camera latency hides."""
    elements = [e.strip() for e in pipeline.strip().split("!")]
    last = elements[-1].split()
    if not last or last[0] != "appsink":
        raise SourceError("GStreamer pipeline must end in appsink: %s" % pipeline,
                          hint="append `! videoconvert ! video/x-raw,format=BGR ! appsink`")
    props = dict((p.split("=", 1)[0], p) for p in last[1:] if "=" in p)
    words = [last[0]] + [p for p in last[1:]]
    for key, value in (("drop", "true"), ("max-buffers", "1"), ("sync", "false")):
        if key not in props:
            words.append("%s=%s" % (key, value))
    elements[-1] = " ".join(words)
    return " ! ".join(elements)


class CaptureSource(Source):
    """A cv2.VideoCapture behind the grabber. Subclasses set ``self.target`` (what to open),
    ``self.api`` (a cv2.CAP_* name, e.g. "CAP_GSTREAMER") and may override ``_configure(cap)``."""

    api = "CAP_ANY"

    def __init__(self, uri, **opts):
        super(CaptureSource, self).__init__(uri, **opts)
        self.target = uri
        self._cap = None
        self.fps_reported = 0.0
        self.size = None

    def _params(self, cv2):
        """(open parameters, optional ones: tried first, dropped when the backend refuses them)."""
        params = []
        for name, seconds in (("CAP_PROP_OPEN_TIMEOUT_MSEC", max(self.read_timeout, 5.0)),
                              ("CAP_PROP_READ_TIMEOUT_MSEC", self.read_timeout)):
            if hasattr(cv2, name) and seconds > 0:
                params += [getattr(cv2, name), int(seconds * 1000)]
        optional = []
        if self.pulling and hasattr(cv2, "CAP_PROP_N_THREADS"):
            # pull mode: the workers that read are the parallelism; a frame-threaded decoder's own
            # threads would only compete with them for the cores (bench_daemon, mobilenet_v2 on 2
            # cores: 1.05x the frames/s, 2 % less CPU per frame). OpenCV < 4.7 has no such property,
            # and a backend other than FFmpeg may refuse it: then the file opens without it.
            optional = [cv2.CAP_PROP_N_THREADS, 1]
        return params, optional

    def _open(self):
        cv2 = cv2_module()
        api = getattr(cv2, self.api, cv2.CAP_ANY)
        params, optional = self._params(cv2)
        cap = self._video_capture(cv2, api, params + optional)
        if optional and not cap.isOpened():     # a backend refusing an optional setting fails the open
            cap.release()
            cap = self._video_capture(cv2, api, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError("cannot open %s" % self.describe(), hint=self.open_hint())
        self._configure(cap)
        self.fps_reported = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._cap = cap

    def _video_capture(self, cv2, api, params):
        if params:
            try:
                return cv2.VideoCapture(self.target, api, params)
            except (TypeError, cv2.error):     # OpenCV < 4.5: no open parameters
                pass
        return cv2.VideoCapture(self.target, api)

    def open_hint(self):
        return "check that the device or file exists and is not in use by another process"

    def _configure(self, cap):
        pass

    def _grab(self):
        ok, image = self._cap.read()
        if not ok or image is None:
            return None
        if self.size is None:
            self.size = (image.shape[1], image.shape[0])
        return image

    def _release(self):
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()
