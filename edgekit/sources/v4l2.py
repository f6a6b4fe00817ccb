"""USB cameras through V4L2: ``v4l2:///dev/video0?width=1280&height=720&fps=30&fourcc=MJPG`` or an
index (``0``). MJPG is asked for by default: most webcams reach 720p30 only in MJPG mode."""

import os

from edgekit.sources.base import SourceError, no_more_params, parse_query, take_int
from edgekit.sources.capture import CaptureSource

PARAMS = ["width", "height", "fps", "fourcc"]


class V4l2Source(CaptureSource):
    scheme = "v4l2"
    api = "CAP_V4L2"

    def __init__(self, uri, **opts):
        uri = str(uri)
        if uri.isdigit():
            device, params = "/dev/video%s" % uri, {}
        else:
            device, params = parse_query(uri)
            if device.isdigit():
                device = "/dev/video%s" % device
        self.width = take_int(params, "width", 0, uri)
        self.height = take_int(params, "height", 0, uri)
        self.cam_fps = take_int(params, "fps", 0, uri)
        self.fourcc = params.pop("fourcc", "MJPG")
        no_more_params(params, uri, PARAMS)
        if len(self.fourcc) != 4:
            raise SourceError("%s: fourcc must have 4 characters, got %r" % (uri, self.fourcc),
                              hint="e.g. fourcc=MJPG or fourcc=YUYV")
        super(V4l2Source, self).__init__(uri, **opts)
        self.device = device
        self.target = device

    def describe(self):
        return self.device

    def open_hint(self):
        if not os.path.exists(self.device):
            return "%s does not exist: is the camera plugged in? (ls /dev/video*)" % self.device
        return "check that your user is in the video group and no other process holds the camera"

    def _configure(self, cap):
        import cv2

        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc))
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, self.width), (cv2.CAP_PROP_FRAME_HEIGHT, self.height),
                            (cv2.CAP_PROP_FPS, self.cam_fps)):
            if value:
                cap.set(prop, value)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)    # ignored by some drivers: the grabber keeps the newest anyway
