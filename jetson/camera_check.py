#!/usr/bin/env python3
"""Camera check for a Jetson: list V4L2 devices and CSI sensors, grab one frame from each.

    python3 jetson/camera_check.py                # every camera found
    python3 jetson/camera_check.py --csi 0 --out frame.jpg
    python3 jetson/camera_check.py --device /dev/video1

CSI cameras are read through GStreamer (nvarguscamerasrc -> nvvidconv -> BGR appsink, with
drop=true max-buffers=1 sync=false); USB cameras through V4L2. Runs on the board's Python 3.6 with
JetPack's cv2. "Failed to create CaptureSession" usually means another process holds the camera or
nvargus-daemon needs `sudo systemctl restart nvargus-daemon`.
"""

import argparse
import glob
import os
import sys
import time

CSI_PIPELINE = ("nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width={width},height={height},"
                "framerate={fps}/1,format=NV12 ! nvvidconv flip-method=0 ! video/x-raw,format=BGRx ! "
                "videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false")


def list_cameras(root="/"):
    """[{"device", "name", "kind": "csi"|"v4l2", "sensor"}] from /dev/video* and sysfs names."""
    cams = []
    for dev in sorted(glob.glob(os.path.join(root, "dev", "video*"))):
        node = os.path.basename(dev)
        try:
            with open(os.path.join(root, "sys", "class", "video4linux", node, "name")) as handle:
                name = handle.read().strip()
        except (IOError, OSError):
            name = ""
        csi = "vi-output" in name or "imx" in name.lower()
        cams.append({"device": "/dev/" + node, "name": name, "kind": "csi" if csi else "v4l2",
                     "sensor": int(node[5:]) if csi and node[5:].isdigit() else None})
    return cams


def open_capture(camera, width=1280, height=720, fps=30):
    import cv2

    if camera["kind"] == "csi":
        pipeline = CSI_PIPELINE.format(sensor=camera["sensor"] or 0, width=width, height=height, fps=fps)
        return cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
    cap = cv2.VideoCapture(camera["device"], cv2.CAP_V4L2)
    cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
    cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    return cap


def grab(camera, tries=30):
    """(frame or None, seconds to the first frame, error text or None)."""
    start = time.time()
    cap = open_capture(camera)
    try:
        if not cap.isOpened():
            return None, None, "cannot open %s (%s)" % (camera["device"], camera["kind"])
        for _ in range(tries):          # CSI sensors take a few frames to settle exposure
            ok, frame = cap.read()
            if ok and frame is not None:
                return frame, time.time() - start, None
        return None, None, "opened %s but read no frame" % camera["device"]
    finally:
        cap.release()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", help="a V4L2 device such as /dev/video1")
    parser.add_argument("--csi", type=int, help="a CSI sensor id such as 0")
    parser.add_argument("--out", help="save the first frame to this JPEG")
    args = parser.parse_args(argv)
    cams = list_cameras()
    if args.device:
        cams = [c for c in cams if c["device"] == args.device] or [{"device": args.device, "name": "",
                                                                      "kind": "v4l2", "sensor": None}]
    if args.csi is not None:
        cams = [{"device": "csi://%d" % args.csi, "name": "", "kind": "csi", "sensor": args.csi}]
    if not cams:
        print("no cameras found (/dev/video*)")
        return 1
    failures = 0
    for cam in cams:
        frame, seconds, error = grab(cam)
        if error:
            failures += 1
            print("x %s %s: %s" % (cam["device"], cam["name"], error))
            continue
        print("ok %s %s: %dx%d frame after %.1f s" % (cam["device"], cam["name"], frame.shape[1], frame.shape[0],
                                                     seconds))
        if args.out:
            import cv2

            cv2.imwrite(args.out, frame)
            print("saved %s" % args.out)
            args.out = None
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
