"""Frame sources: cameras, streams, files and synthetic frames behind one small protocol.

    with open_source("synthetic://?width=640&height=480&fps=30") as source:
        frame = source.read(timeout=1.0)      # Frame(image, seq, ts_capture, t_capture) or None

URIs:
  csi://0?width=1280&height=720&fps=30&flip=0      Jetson CSI camera (nvarguscamerasrc)
  v4l2:///dev/video0?width=&height=&fps=&fourcc=   USB camera (MJPG); or an index: 0
  rtsp://user:pass@host/stream                     network camera (GStreamer or FFmpeg)
  gst://PIPELINE ! appsink                         any GStreamer pipeline ending in appsink
  path/to/video.mp4, file:///video.mp4?realtime=0  video file
  path/to/folder                                   image folder
  synthetic://?width=640&height=480&fps=30         moving coloured shapes (deterministic)
Source classes are imported only when their scheme is used.
"""

import os

from edgekit.registry import Registry
from edgekit.sources.base import Frame, Source, SourceError  # noqa: F401

# scheme -> Source class; ``options``: what each kind understands beyond COMMON
SOURCES = Registry("source scheme", unknown=SourceError)
SOURCES.register("csi", "edgekit.sources.csi:CsiSource", options=("model_hw",))
SOURCES.register("v4l2", "edgekit.sources.v4l2:V4l2Source")
SOURCES.register("rtsp", "edgekit.sources.rtsp:RtspSource", options=("decoder", "codec"))
SOURCES.register("rtsps", "edgekit.sources.rtsp:RtspSource", options=("decoder", "codec"))
SOURCES.register("gst", "edgekit.sources.gst:GstreamerSource")
SOURCES.register("file", "edgekit.sources.file:FileSource", options=("realtime", "fps"))
SOURCES.register("images", "edgekit.sources.images:ImageFolderSource", options=("fps",))
SOURCES.register("synthetic", "edgekit.sources.synthetic:SyntheticSource")
COMMON = ("loop", "lossless", "backoff_initial", "backoff_max", "read_timeout")


def source_kind(uri):
    """The registry key for a URI: its scheme, or for a plain path 'file' / 'images', or 'v4l2'
    for a bare camera index."""
    uri = str(uri)
    if uri.isdigit():
        return "v4l2"
    if "://" in uri:
        scheme = uri.split("://", 1)[0].lower()
        if scheme not in SOURCES:
            raise SourceError("unknown source scheme %r in %s" % (scheme, uri),
                              hint="use one of %s, a video file or an image folder"
                              % ", ".join(s + "://" for s in sorted(SOURCES) if s not in ("file", "images")))
        return scheme
    path = os.path.expanduser(uri)
    if os.path.isdir(path):
        return "images"
    if os.path.isfile(path):
        return "file"
    raise SourceError("source not found: %s" % uri,
                      hint="give a video file, an image folder, or a URI such as csi://0, v4l2:///dev/video0, "
                      "rtsp://..., gst://..., synthetic://")


def open_source(uri, **opts):
    """Build (not start) the source for ``uri``. Options a kind does not use are ignored when
    they are None, and refused otherwise (so a typo never passes silently)."""
    kind = source_kind(uri)
    allowed = set(COMMON) | set(SOURCES.get(kind, "options", ()))
    given = dict((k, v) for k, v in opts.items() if v is not None)
    if "model_hw" in given and "model_hw" not in allowed:
        given.pop("model_hw")          # only sources that scale in the pipeline use the model size
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise SourceError("option(s) %s do not apply to a %s source" % (", ".join(unknown), kind),
                          hint="remove them for this source")
    return SOURCES.load(kind)(str(uri), **given)
