"""Sources: URIs, the latest-frame grabber, lossless files, end of stream, loops, reconnects."""

import os
import threading
import time

import numpy as np
import pytest

from edgekit.errors import UserError
from edgekit.sources import SourceError, open_source, source_kind
from edgekit.sources.base import Source, parse_query
from edgekit.sources.capture import ensure_appsink
from edgekit.sources.csi import csi_pipeline, scaled_size
from edgekit.sources.rtsp import rtsp_pipeline
from edgekit.sources.synthetic import synthetic_frame
from _clock import FakeClock


def drain(source, timeout=2.0, delay=0.0):
    frames = []
    while True:
        frame = source.read(timeout=timeout)
        if frame is None:
            return frames
        frames.append(frame)
        if delay:
            time.sleep(delay)


def test_source_kind_table(tmp_path, make_video):
    video = make_video(frames=2)
    assert source_kind("0") == "v4l2"
    assert source_kind("v4l2:///dev/video0") == "v4l2"
    assert source_kind("csi://0?width=640") == "csi"
    assert source_kind("rtsp://cam/stream") == "rtsp"
    assert source_kind("gst://videotestsrc ! appsink") == "gst"
    assert source_kind("synthetic://") == "synthetic"
    assert source_kind(video) == "file"
    assert source_kind(str(tmp_path)) == "images"
    with pytest.raises(SourceError, match="unknown source scheme 'ftp'"):
        source_kind("ftp://x")
    with pytest.raises(SourceError, match="source not found"):
        source_kind(str(tmp_path / "missing.mp4"))


def test_bad_uris_are_user_errors():
    with pytest.raises(UserError, match="width='abc' is not an integer"):
        open_source("synthetic://?width=abc")
    with pytest.raises(UserError, match="unknown parameter"):
        open_source("synthetic://?widht=10")
    with pytest.raises(UserError, match="do not apply"):
        open_source("synthetic://", realtime=True)
    with pytest.raises(UserError, match="flip must be 0..7"):
        open_source("csi://0?flip=9")
    with pytest.raises(UserError, match="must end in appsink"):
        open_source("gst://videotestsrc ! fakesink")


def test_synthetic_frames_are_deterministic_and_move():
    a, b = synthetic_frame(5, 160, 120, seed=1), synthetic_frame(5, 160, 120, seed=1)
    assert a.shape == (120, 160, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, synthetic_frame(6, 160, 120, seed=1))


def test_lossless_synthetic_delivers_every_frame_then_eof():
    with open_source("synthetic://?width=64&height=48&fps=0&frames=25") as source:
        frames = drain(source)
        assert [f.seq for f in frames] == list(range(1, 26))
        assert source.eof
        stats = source.stats()
    assert stats["frames"] == 25 and stats["dropped"] == 0 and stats["eof"] is True
    f = frames[0]
    assert f.image.shape == (48, 64, 3) and f.ts_capture > 1e9 and f.t_capture > 0


def test_video_file_lossless_and_realtime(make_video):
    path = make_video(frames=20, fps=50)
    with open_source(path, realtime=False) as source:
        assert len(drain(source)) == 20
        assert source.stats()["dropped"] == 0
    # paced like a camera, with a slow consumer: only the newest frames, the rest dropped and counted
    with open_source(path) as source:
        got = drain(source, delay=0.06)
        stats = source.stats()
    assert stats["frames"] == 20
    assert stats["dropped"] > 0 and len(got) + stats["dropped"] == 20
    assert all(b.seq > a.seq for a, b in zip(got, got[1:]))


def test_file_uri_with_query(make_video):
    path = make_video(frames=5)
    with open_source("file://%s?realtime=0" % path) as source:
        assert len(drain(source)) == 5


def test_video_loop_restarts(make_video):
    path = make_video(frames=6, fps=1000)
    with open_source(path, loop=True, realtime=False) as source:
        frames = [source.read(timeout=2.0) for _ in range(15)]
        assert all(f is not None for f in frames)
        assert source.stats()["loops"] >= 2
        assert not source.eof


def test_image_folder(tmp_path):
    import cv2

    for i in range(4):
        cv2.imwrite(str(tmp_path / ("%02d.png" % i)), synthetic_frame(i, 40, 30))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "99.jpg").write_bytes(b"broken")
    with open_source(str(tmp_path)) as source:
        frames = drain(source)
        stats = source.stats()
    assert len(frames) == 4 and frames[0].image.shape == (30, 40, 3)
    assert stats["failures"] == 1 and "99.jpg" in stats["last_error"]


def test_missing_file_or_empty_folder(tmp_path):
    with pytest.raises(SourceError, match="video file not found"):
        open_source("file://%s" % (tmp_path / "nope.mp4"))
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path)).start()


class FlakySource(Source):
    """A test source that dies after every 5 frames and fails to open twice before coming back."""

    scheme = "flaky"

    def __init__(self, **opts):
        super(FlakySource, self).__init__("flaky://", backoff_initial=0.001, backoff_max=0.004, **opts)
        self.opens = 0
        self.fail_opens = 0
        self.n = 0

    def _open(self):
        self.opens += 1
        if self.fail_opens > 0:
            self.fail_opens -= 1
            raise SourceError("camera gone")
        self.n = 0

    def _grab(self):
        self.n += 1
        if self.n > 5:
            self.fail_opens = 2
            return None
        time.sleep(0.001)
        return np.zeros((8, 8, 3), np.uint8)


def test_source_that_dies_and_returns_many_times():
    with FlakySource() as source:
        frames = []
        deadline = time.monotonic() + 10
        while len(frames) < 60 and time.monotonic() < deadline:
            frame = source.read(timeout=1.0)
            if frame is not None:
                frames.append(frame)
        stats = source.stats()
    assert len(frames) == 60
    assert stats["reconnects"] >= 10
    assert stats["failures"] >= 3 * stats["reconnects"]       # one read failure + two failed opens each time
    assert stats["last_error"] in ("camera gone.", "read failed on flaky://")


def clocked_flaky_source(monkeypatch, backoff_initial, backoff_max, stop_after=None):
    """A FlakySource whose first read fails, on a fake clock (edgekit.sources.base's time): each backoff
    wait is recorded (rounded) and advances the clock; with ``stop_after`` the source is stopped at that
    many waits."""
    from edgekit.sources import base

    clock = FakeClock()
    monkeypatch.setattr(base, "time", clock)
    waits = []
    source = FlakySource(lossless=True)
    source.backoff_initial, source.backoff_max = backoff_initial, backoff_max

    def record(delay):
        waits.append(round(delay, 6))
        clock.advance(delay * 1000.0)
        if stop_after and len(waits) >= stop_after:
            source._stop.set()
        return source._stop.is_set()

    source._sleep = record
    source.n = 99
    return source, waits


@pytest.mark.parametrize("pull", [False, True], ids=["grabber", "pull"])
def test_backoff_is_capped_and_exponential(monkeypatch, pull):
    source, waits = clocked_flaky_source(monkeypatch, 0.01, 0.04, stop_after=6)

    def gone():
        raise SourceError("gone")

    source._open = gone
    if pull:
        source.pulling = True
        assert source.read(timeout=60.0) is None       # every reopen fails until the source is stopped
    else:
        thread = threading.Thread(target=source._run)
        thread.start()
        thread.join(5)
    assert waits[:5] == [0.01, 0.02, 0.04, 0.04, 0.04]
    assert source.eof


def test_pull_read_waits_no_longer_than_its_timeout(monkeypatch):
    """In pull mode a backoff longer than the read's timeout is waited in parts: the reader gets
    None at its deadline and the next read waits out the rest before reopening."""
    source, waits = clocked_flaky_source(monkeypatch, 0.3, 0.3)      # the first read fails; reopen after 0.3 s
    source.pulling = True
    assert source.read(timeout=0.2) is None
    assert waits == [0.2] and source.opens == 0
    source.fail_opens = 0                 # (FlakySource's failed read also set up two failing opens)
    frame = source.read(timeout=0.2)
    assert waits == [0.2, 0.1] and source.opens == 1
    assert frame is not None and frame.seq == 1 and source.stats()["reconnects"] == 1


def test_pull_mode_delivers_every_frame_to_several_readers(make_video):
    """Pull mode: no grabber thread; several threads read one lossless file and between them get
    every frame once, in order per reader, then eof."""
    path = make_video(name="pull.mp4", frames=40, fps=1000)
    got, lock = [], threading.Lock()
    with open_source(path, realtime=False) as probe:
        assert probe.lossless
    source = open_source(path, realtime=False).start(pull=True)
    assert source.pulling and source._thread is None
    source.start(pull=True)                            # a second start does nothing
    import cv2

    if hasattr(cv2, "CAP_PROP_N_THREADS"):             # OpenCV >= 4.7: the readers are the parallelism
        assert source._cap.get(cv2.CAP_PROP_N_THREADS) == 1

    def reader():
        while True:
            frame = source.read(timeout=2.0)
            if frame is None:
                return
            with lock:
                got.append(frame.seq)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    stats = source.stats()
    source.close()
    assert sorted(got) == list(range(1, 41))
    assert stats["eof"] and stats["frames"] == 40 and stats["dropped"] == 0


class _RefusingCv2(object):
    """Stand-in for a cv2 >= 4.7 whose backend for this file refuses CAP_PROP_N_THREADS (OpenCV then
    fails the open: "unsupported parameters in .open()"), as a non-FFmpeg backend may. The cv2 here
    is FFmpeg's, which takes it, and Debian's 4.6 has no such property."""

    CAP_ANY, CAP_PROP_N_THREADS, CAP_PROP_FPS = 0, 70, 5
    CAP_PROP_OPEN_TIMEOUT_MSEC, CAP_PROP_READ_TIMEOUT_MSEC = 53, 54
    error = RuntimeError

    def __init__(self):
        self.attempts = []
        self.dead = False                 # True: nothing opens (a device that is gone)
        outer = self

        class VideoCapture(object):
            def __init__(self, target, api=0, params=None):
                outer.attempts.append(list(params or []))
                self.opened = not outer.dead and outer.CAP_PROP_N_THREADS not in (params or [])[::2]

            def isOpened(self):
                return self.opened

            def get(self, prop):
                return 25.0

            def release(self):
                pass

        self.VideoCapture = VideoCapture


def test_pull_mode_opens_without_the_decoder_thread_setting_when_refused(make_video, monkeypatch):
    from edgekit.sources import capture

    fake = _RefusingCv2()
    monkeypatch.setattr(capture, "cv2_module", lambda: fake)
    path = make_video(name="refuse.mp4", frames=2)
    source = open_source(path, realtime=False).start(pull=True)
    assert source.pulling and source.connected
    assert [a[::2] for a in fake.attempts] == [[53, 54, 70], [53, 54]]     # with it, then without
    assert fake.attempts[0][-2:] == [70, 1]
    fake.attempts[:] = []
    grabbing = open_source(path, realtime=False)
    grabbing._open()                                    # not pulling: never asks for one decoder thread
    assert [a[::2] for a in fake.attempts] == [[53, 54]]
    fake.attempts[:], fake.dead = [], True
    with pytest.raises(SourceError):                    # a device that is gone: one open, with its timeouts,
        open_source(path, realtime=False)._open()       # never retried without them
    assert [a[::2] for a in fake.attempts] == [[53, 54]]


def test_pull_mode_refuses_a_live_source():
    with pytest.raises(ValueError):
        FlakySource().start(pull=True)


def test_file_that_disappears_and_reappears(make_video, tmp_path):
    """A looping video whose file vanishes: the source keeps retrying with backoff and comes back."""
    path = make_video(name="cam.mp4", frames=4, fps=1000)
    hidden = str(tmp_path / "hidden.mp4")
    source = open_source(path, loop=True, realtime=False, backoff_initial=0.01, backoff_max=0.05)
    with source:
        for _ in range(3):
            assert source.read(timeout=2.0) is not None
            before = source.stats()
            os.rename(path, hidden)
            deadline = time.monotonic() + 5
            while source.stats()["failures"] == before["failures"] and time.monotonic() < deadline:
                source.read(timeout=0.05)
            os.rename(hidden, path)
            deadline = time.monotonic() + 5
            while source.stats()["reconnects"] == before["reconnects"] and time.monotonic() < deadline:
                source.read(timeout=0.05)
        stats = source.stats()
    assert stats["reconnects"] >= 3 and stats["failures"] >= 3


def test_gstreamer_pipeline_texts():
    text = ensure_appsink("videotestsrc ! videoconvert ! appsink")
    assert text.endswith("appsink drop=true max-buffers=1 sync=false")
    text = ensure_appsink("videotestsrc ! appsink max-buffers=2 name=s")
    assert "max-buffers=2" in text and "drop=true" in text and "sync=false" in text and text.count("max-buffers") == 1
    csi = csi_pipeline(0, 1280, 720, 30, 2, scaled_size(1280, 720, (224, 224)))
    assert csi.startswith("nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,"
                          "framerate=30/1,format=NV12 ! nvvidconv flip-method=2 ! video/x-raw,width=398,height=224")
    assert csi.endswith("appsink drop=true max-buffers=1 sync=false")
    assert scaled_size(640, 480, (1000, 1000)) == (640, 480)
    source = open_source("csi://1?width=1920&height=1080&fps=60&out=native")
    assert "sensor-id=1" in source.pipeline and "width=1920,height=1080,format=BGRx" in source.pipeline
    rtsp = rtsp_pipeline("rtsp://cam/s", "nvv4l2")
    assert "nvv4l2decoder" in rtsp and "latency=0" in rtsp and rtsp.endswith("sync=false")
    assert "decodebin" in rtsp_pipeline("rtsp://cam/s", "gst")


def test_query_parsing_and_redaction():
    assert parse_query("synthetic://?a=1&b=x") == ("", {"a": "1", "b": "x"})
    source = open_source("rtsp://admin:secret@10.0.0.2/stream")
    assert "secret" not in source.describe() and "admin:***@10.0.0.2" in source.describe()


def test_gst_without_gstreamer_says_why():
    from edgekit.sources.capture import has_gstreamer

    if has_gstreamer():
        pytest.skip("this cv2 has GStreamer: covered by test_gstreamer.py")
    with pytest.raises(SourceError, match="no GStreamer"):
        open_source("gst://videotestsrc num-buffers=3 ! videoconvert ! appsink").start()


def test_rtsp_that_refuses_is_a_clear_error():
    """FFmpeg backend against a port nobody listens on: a SourceError naming the stream, credentials masked."""
    source = open_source("rtsp://user:pw@127.0.0.1:9/stream", decoder="ffmpeg", read_timeout=1.0)
    with pytest.raises(SourceError) as info:
        source.start()
    assert "cannot open rtsp://user:***@127.0.0.1:9/stream (ffmpeg)" in str(info.value)
    assert "pw" not in str(info.value)
