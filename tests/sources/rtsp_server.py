"""A tiny RTSP server for the tests (run by Debian's /usr/bin/python3 with python3-gi and
gir1.2-gst-rtsp-server-1.0): videotestsrc as Motion-JPEG over RTP at rtsp://127.0.0.1:PORT/test."""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PIPELINE = ("( videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1,format=I420 "
            "! jpegenc ! rtpjpegpay name=pay0 pt=26 )")


def main(port):
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/test", factory)
    server.attach(None)
    print("READY", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main(int(sys.argv[1]))
