"""Any GStreamer pipeline ending in appsink: ``gst://videotestsrc ! videoconvert ! appsink``.

``drop=true max-buffers=1 sync=false`` are added to the appsink where missing. Needs an OpenCV
built with GStreamer (JetPack's, Debian's python3-opencv; PyPI's wheels have none). A pipeline
with ``num-buffers=`` or a ``filesrc`` is finite: its end is the end of the source.
"""

from edgekit.sources.base import SourceError
from edgekit.sources.capture import CaptureSource, cv2_module, ensure_appsink, has_gstreamer

NO_GSTREAMER_HINT = ("this OpenCV has no GStreamer (PyPI wheels do not): use JetPack's or the distribution's "
                     "python3-opencv, with the system python3")


class GstreamerSource(CaptureSource):
    scheme = "gst"
    api = "CAP_GSTREAMER"

    def __init__(self, uri, pipeline=None, **opts):
        uri = str(uri)
        if pipeline is None:
            pipeline = uri.split("://", 1)[1] if uri.startswith("gst://") else uri
        if not pipeline.strip():
            raise SourceError("empty GStreamer pipeline", hint="e.g. gst://videotestsrc ! videoconvert ! appsink")
        self.pipeline = ensure_appsink(pipeline)
        super(GstreamerSource, self).__init__(uri, **opts)
        self.target = self.pipeline
        self.finite = "num-buffers=" in self.pipeline or "filesrc" in self.pipeline

    def describe(self):
        return "gst://" + self.pipeline

    def _open(self):
        cv2 = cv2_module()
        if not has_gstreamer(cv2):
            raise SourceError("cannot open a GStreamer pipeline", hint=NO_GSTREAMER_HINT)
        super(GstreamerSource, self)._open()

    def _params(self, cv2):
        return [], []        # the GStreamer backend takes no open/read timeout parameters

    def open_hint(self):
        return "test the pipeline with gst-launch-1.0 (replace appsink with fakesink)"
