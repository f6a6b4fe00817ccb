"""Network cameras: ``rtsp://user:pass@host:554/stream``.

Decoder, chosen by ``decoder=`` (option, or config ``source.decoder``):
  ``nvv4l2``  GStreamer with the Jetson's hardware decoder (nvv4l2decoder + nvvidconv, which also
              scales to near the model input), the default on a Jetson;
  ``gst``     GStreamer with a software decodebin, the default elsewhere when OpenCV has GStreamer;
  ``ffmpeg``  OpenCV's FFmpeg backend (TCP transport, open/read timeouts), the fallback.
Every GStreamer variant ends in ``appsink drop=true max-buffers=1 sync=false`` with ``latency=0``
on rtspsrc: buffered frames are where RTSP latency hides. (The stream's size is unknown before it
plays, so RTSP frames are not scaled in the pipeline; CSI frames are.)
"""

import os

from edgekit.sources.base import SourceError
from edgekit.sources.capture import CaptureSource, cv2_module, has_gstreamer

DECODERS = ("auto", "nvv4l2", "gst", "ffmpeg")


def is_jetson():
    return os.path.exists("/etc/nv_tegra_release")


def rtsp_pipeline(url, decoder, codec="h264"):
    head = "rtspsrc location=%s latency=0 ! " % url
    if decoder == "nvv4l2":
        return (head + "rtp%sdepay ! %sparse ! nvv4l2decoder ! nvvidconv ! video/x-raw,format=BGRx ! "
                "videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false"
                % (codec, codec))
    return head + ("decodebin ! videoconvert ! video/x-raw,format=BGR ! "
                   "appsink drop=true max-buffers=1 sync=false")


class RtspSource(CaptureSource):
    scheme = "rtsp"

    def __init__(self, uri, decoder="auto", codec="h264", **opts):
        if decoder not in DECODERS:
            raise SourceError("unknown RTSP decoder %r" % (decoder,), hint="use one of %s" % ", ".join(DECODERS))
        if codec not in ("h264", "h265"):
            raise SourceError("unknown RTSP codec %r" % (codec,), hint="use h264 or h265")
        super(RtspSource, self).__init__(uri, **opts)
        self.decoder_asked = decoder
        self.codec = codec
        self.decoder = None

    def _choose(self):
        if self.decoder_asked != "auto":
            return self.decoder_asked
        if has_gstreamer():
            return "nvv4l2" if is_jetson() else "gst"
        return "ffmpeg"

    def _open(self):
        cv2 = cv2_module()
        self.decoder = self._choose()
        if self.decoder == "ffmpeg":
            os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
            self.api, self.target = "CAP_FFMPEG", self.uri
        else:
            if not has_gstreamer(cv2):
                raise SourceError("RTSP decoder %s needs OpenCV with GStreamer" % self.decoder,
                                  hint="use decoder ffmpeg, or JetPack's / the distribution's python3-opencv")
            self.api, self.target = "CAP_GSTREAMER", rtsp_pipeline(self.uri, self.decoder, self.codec)
        super(RtspSource, self)._open()

    def _params(self, cv2):
        return super(RtspSource, self)._params(cv2) if self.api == "CAP_FFMPEG" else ([], [])

    def describe(self):
        text = super(RtspSource, self).describe()
        return "%s (%s)" % (text, self.decoder) if self.decoder else text

    def open_hint(self):
        return "check the URL, credentials and network; test with ffprobe or gst-launch-1.0"
