"""Recordings on the device: a pre-roll ring of JPEG frames per camera, event clips written as MP4
off the caller's thread with retention and a disk-full pause, and hard-example harvesting.

    ring.PreRollRing          the last ``pre_s`` seconds of a camera as JPEG bytes, bounded in MB
    codec.probe_codec         which video codec this OpenCV/GStreamer build really writes (said)
    clips.ClipRecorder        per camera: ``add_frame(frame, t)``, ``event(t, ids, labels)``,
                              ``clip_status(event_id)``, ``state()``, ``close()``
    retention.enforce         max_gb / max_days per camera folder, oldest first
    harvest.Harvester         frames the model is unsure about, saved in YOLO format with pre-labels

Device side: Python 3.6, numpy and cv2 only. The daemon does not call these yet (see
docs/board/recordings.md).
"""
