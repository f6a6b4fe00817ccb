"""CSI cameras on a Jetson (IMX219, ...) through nvarguscamerasrc:
``csi://0?width=1280&height=720&fps=30&flip=0`` (sensor id 0).

``nvvidconv`` converts NV12 to BGRx and scales the image to near the model's input size inside
the pipeline (``out=WxH``; by default the smallest size that keeps the aspect ratio and covers the
model input, when the daemon knows it; ``out=native`` keeps the sensor size): the scaling runs on
the video image compositor, not on the Nano's four Cortex-A57 cores, and far fewer bytes reach
Python (docs/design/platform.md).
"""

from edgekit.sources.base import SourceError, no_more_params, parse_query, take_int
from edgekit.sources.gst import GstreamerSource

PARAMS = ["width", "height", "fps", "flip", "out"]


def scaled_size(width, height, model_hw):
    """The smallest even-sized (w, h) with the sensor's aspect ratio that covers the model input."""
    if not model_hw:
        return width, height
    mh, mw = model_hw
    scale = max(mw / float(width), mh / float(height))
    if scale >= 1.0:
        return width, height
    return int(round(width * scale / 2.0)) * 2, int(round(height * scale / 2.0)) * 2


def parse_size(text, uri):
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise SourceError("%s: out must be WxH or native, got %r" % (uri, text), hint="e.g. out=640x360")
    return int(parts[0]), int(parts[1])


def csi_pipeline(sensor, width, height, fps, flip, out_size):
    ow, oh = out_size
    return ("nvarguscamerasrc sensor-id=%d ! video/x-raw(memory:NVMM),width=%d,height=%d,framerate=%d/1,format=NV12 "
            "! nvvidconv flip-method=%d ! video/x-raw,width=%d,height=%d,format=BGRx ! videoconvert "
            "! video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false"
            % (sensor, width, height, fps, flip, ow, oh))


class CsiSource(GstreamerSource):
    scheme = "csi"

    def __init__(self, uri, model_hw=None, **opts):
        uri = str(uri)
        sensor_text, params = parse_query(uri)
        try:
            sensor = int(sensor_text or 0)
        except ValueError:
            raise SourceError("%s: the sensor id must be an integer" % uri, hint="e.g. csi://0")
        width = take_int(params, "width", 1280, uri, 1)
        height = take_int(params, "height", 720, uri, 1)
        fps = take_int(params, "fps", 30, uri, 1)
        flip = take_int(params, "flip", 0, uri)
        out = params.pop("out", "")
        no_more_params(params, uri, PARAMS)
        if flip > 7:
            raise SourceError("%s: flip must be 0..7 (nvvidconv flip-method)" % uri, hint="0 = none, 2 = rotate 180")
        if out == "native":
            size = (width, height)
        elif out:
            size = parse_size(out, uri)
        else:
            size = scaled_size(width, height, model_hw)
        self.sensor, self.out_size = sensor, size
        super(CsiSource, self).__init__(uri, pipeline=csi_pipeline(sensor, width, height, fps, flip, size), **opts)

    def describe(self):
        return "csi://%d (%dx%d out)" % (self.sensor, self.out_size[0], self.out_size[1])

    def open_hint(self):
        return ("\"Failed to create CaptureSession\" usually means another process holds the camera or "
                "nvargus-daemon needs a restart (sudo systemctl restart nvargus-daemon)")
