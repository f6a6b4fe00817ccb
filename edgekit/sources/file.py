"""Video files as camera stand-ins: ``path/to/video.mp4`` or ``file:///abs/video.mp4?realtime=0``.

``realtime=True`` (default) paces frames at the file's frame rate and drops what the consumer
misses, like a camera; ``realtime=False`` delivers every frame as fast as the consumer takes them
(lossless: for benchmarks and batch runs). ``loop=True`` starts again at the end.
"""

import os

from edgekit.sources.base import Pacer, SourceError, no_more_params, parse_query, take_int
from edgekit.sources.capture import CaptureSource

class FileSource(CaptureSource):
    scheme = "file"
    finite = True
    api = "CAP_ANY"

    def __init__(self, uri, realtime=True, fps=None, **opts):
        path = uri
        if str(uri).startswith("file://"):
            path, params = parse_query(uri)
            realtime = params.pop("realtime", "1" if realtime else "0") not in ("0", "false", "no")
            if "fps" in params:
                fps = take_int(params, "fps", 0, uri, 1)
            no_more_params(params, uri, ["realtime", "fps"])
        path = os.path.realpath(os.path.expanduser(str(path)))
        if not os.path.isfile(path):
            raise SourceError("video file not found: %s" % path, hint="check the --source path")
        opts.setdefault("lossless", not realtime)
        super(FileSource, self).__init__(uri, **opts)
        self.path = self.target = path
        self.realtime = bool(realtime)
        self.fps = fps
        self._pacer = None

    def describe(self):
        return self.path

    def open_hint(self):
        return "check that %s is a video OpenCV can decode (ffprobe it)" % self.path

    def _configure(self, cap):
        if self._pacer is None:
            import cv2

            fps = self.fps or float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 30.0
            self._pacer = Pacer(fps if self.realtime else 0, self._stop)

    def _grab(self):
        self._pacer.wait()
        return super(FileSource, self)._grab()
