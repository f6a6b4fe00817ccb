"""Event clips: pre-roll, extension by overlapping events, size changes, retention, a full disk.

Frames carry their index as 8 black/white blocks, so a clip read back by OpenCV says which frames
it holds; ffprobe reads the same files."""

import json
import os
import subprocess
import time

import cv2
import numpy as np
import pytest

from edgekit.errors import ConfigError
from edgekit.recordings import retention
from edgekit.recordings.clips import ClipRecorder
from edgekit.recordings.codec import gst_h264_pipeline, probe_codec
from edgekit.recordings.ring import PreRollRing

FPS = 10.0
T0 = 1733280000.0


def coded_frame(i, w=160, h=120):
    frame = np.zeros((h, w, 3), np.uint8)
    bw = w // 8
    for bit in range(8):
        if (i >> bit) & 1:
            frame[: h // 2, bit * bw:(bit + 1) * bw] = 255
    frame[h // 2:, :] = (i * 37) % 200      # some texture below
    return frame


def frame_index(image):
    h, w = image.shape[:2]
    bw = w // 8
    gray = image[: h // 2].mean(axis=2)
    return sum(1 << bit for bit in range(8) if gray[:, bit * bw:(bit + 1) * bw].mean() > 128)


def t_of(i):
    return T0 + i / FPS


def read_indices(path):
    cap = cv2.VideoCapture(path)
    out = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        out.append(frame_index(image))
    cap.release()
    return out


def ffprobe(path):
    out = subprocess.check_output(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                                   "-show_entries", "stream=codec_name,nb_read_frames,width,height",
                                   "-of", "json", path])
    return json.loads(out.decode())["streams"][0]


@pytest.fixture(scope="module")
def codec():
    return probe_codec()


def recorder(root, codec, **kw):
    kw.setdefault("pre_s", 1.0)
    kw.setdefault("post_s", 1.0)
    lines = []
    rec = ClipRecorder("door", str(root), codec=codec, log=lines.append, **kw)
    rec.lines = lines
    return rec


def wait_ready(rec, event_id, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = rec.clip_status(event_id)
        if status["state"] != "writing":
            return status
        time.sleep(0.02)
    raise AssertionError("clip of %s still writing" % event_id)


def feed(rec, first, last, size=(160, 120), events=None):
    events = events or {}
    for i in range(first, last):
        rec.add_frame(coded_frame(i, *size), t_of(i))
        if i in events:
            rec.event(t_of(i), [events[i]], ["person"])


def test_clip_starts_pre_s_before_the_event_and_reads_in_opencv_and_ffprobe(tmp_path, codec):
    rec = recorder(tmp_path, codec)
    feed(rec, 0, 80, events={40: "ev-40"})
    status = wait_ready(rec, "ev-40")
    rec.close()
    assert status["state"] == "ready", status
    path = status["path"]
    assert os.path.dirname(path) == str(tmp_path / "door")
    indices = read_indices(path)
    # the first frame is the last one at or before event - pre_s: frame 30 (never later, within a frame)
    assert indices[0] == 30 and indices[-1] == 50 and indices == list(range(30, 51))
    assert t_of(indices[0]) <= t_of(40) - 1.0 < t_of(indices[0]) + 1 / FPS
    probe = ffprobe(path)
    assert int(probe["nb_read_frames"]) == 21 and (probe["width"], probe["height"]) == (160, 120)
    meta = json.load(open(os.path.splitext(path)[0] + ".json"))
    assert meta["event_ids"] == ["ev-40"] and meta["labels"] == ["person"] and meta["camera"] == "door"
    assert meta["start"] == t_of(30) and meta["end"] == t_of(50) and meta["frames"] == 21
    assert meta["codec"] == codec.name and meta["size"] == os.path.getsize(path)
    assert not [n for n in os.listdir(str(tmp_path / "door")) if n.startswith(".")]     # no temp left
    assert any(codec.name in line for line in rec.lines)                                 # the codec was said


def test_overlapping_events_extend_one_clip(tmp_path, codec):
    rec = recorder(tmp_path, codec)
    feed(rec, 0, 90, events={40: "a", 45: "b", 70: "c"})
    a, b, c = (wait_ready(rec, e) for e in "abc")
    rec.close()
    assert a["state"] == b["state"] == c["state"] == "ready"
    assert a["path"] == b["path"] != c["path"]
    assert read_indices(a["path"]) == list(range(30, 56))          # 1 s after the last of the two
    meta = json.load(open(os.path.splitext(a["path"])[0] + ".json"))
    assert meta["event_ids"] == ["a", "b"]
    assert rec.state()["clips_written"] == 2


def test_frame_size_change_closes_the_clip_and_starts_a_part(tmp_path, codec):
    rec = recorder(tmp_path, codec)
    feed(rec, 0, 45, events={40: "ev"})
    feed(rec, 45, 48, size=(128, 96))
    rec.event(t_of(47), ["later"], ["person"])           # extends the clip: its status names both parts
    feed(rec, 48, 70, size=(128, 96))
    status = wait_ready(rec, "ev")
    assert wait_ready(rec, "later")["paths"] == status["paths"]
    rec.close()
    assert status["state"] == "ready" and len(status["paths"]) == 2
    first, second = status["paths"]
    assert read_indices(first) == list(range(30, 45)) and read_indices(second) == list(range(45, 58))
    assert ffprobe(second)["width"] == 128
    meta = json.load(open(os.path.splitext(second)[0] + ".json"))
    assert meta["part"] == 2 and "160x120 to 128x96" in meta["split"] and meta["event_ids"] == ["ev", "later"]
    assert any("frame size changed" in line for line in rec.lines)


def test_retention_keeps_the_folder_under_max_gb(tmp_path, codec):
    rec = recorder(tmp_path, codec, pre_s=0.5, post_s=0.5)
    events = dict((i, "e%d" % i) for i in range(10, 200, 20))
    feed(rec, 0, 200, events=events)
    rec.close()
    sizes = [s for _, _, s, _ in retention.clips(rec.folder)]
    one = max(sizes)
    # now cap it at about two clips and write one more
    rec = recorder(tmp_path, codec, pre_s=0.5, post_s=0.5, max_gb=2.5 * one / 1e9)
    feed(rec, 200, 240, events={210: "last"})
    last = wait_ready(rec, "last")
    rec.close()
    left = retention.clips(rec.folder)
    assert last["state"] == "ready" and os.path.basename(last["path"]).startswith(left[-1][0])
    assert sum(s for _, _, s, _ in left) <= 2.5 * one and 1 <= len(left) <= 2
    assert rec.state()["clips_removed"] == 10 - len(left) + 1
    assert rec.clip_status("e10")["state"] == "unknown"         # the oldest went first
    assert rec.clip_status("e190")["state"] == "ready" or len(left) == 1


def test_retention_max_days_and_clips_of_earlier_runs(tmp_path, codec):
    rec = recorder(tmp_path, codec)
    feed(rec, 0, 60, events={20: "old"})
    rec.close()
    again = recorder(tmp_path, codec)                    # a new run finds the clip by its event id
    assert again.clip_status("old")["state"] == "ready"
    again.close()
    removed = retention.enforce(again.folder, max_days=1, now=time.time() + 2 * 86400)
    assert len(removed) == 1 and retention.clips(again.folder) == []
    assert os.listdir(again.folder) == []                # the sidecar went with the video


def test_a_slow_writer_drops_frames_counted_never_blocks(tmp_path, codec):
    rec = recorder(tmp_path, codec, queue_frames=3, start=False)     # the writer is not running yet
    t = time.perf_counter()
    feed(rec, 0, 70, events={20: "ev"})
    assert time.perf_counter() - t < 10                  # sanity only: no wait on a queue
    assert rec.state()["frames_dropped"] > 0 and any("behind" in line for line in rec.lines)
    rec.thread.start()
    status = wait_ready(rec, "ev")
    rec.close()
    meta = json.load(open(os.path.splitext(status["path"])[0] + ".json"))
    assert meta["frames_dropped"] == rec.state()["frames_dropped"] and meta["frames"] == 21 - meta["frames_dropped"]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MB tmpfs (root here); the recorder's folder lives on it."""
    where = tmp_path / "disk"
    where.mkdir()
    if subprocess.call(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
                       stderr=subprocess.DEVNULL) != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    yield where
    subprocess.call(["umount", "-l", str(where)])


def fill(folder):
    """Fill the filesystem of ``folder`` to the last byte (unbuffered writes until ENOSPC)."""
    path = os.path.join(str(folder), "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return path


def test_full_disk_pauses_recording_and_resumes(tiny_disk, codec):
    rec = recorder(tiny_disk, codec, retry_s=0.5, min_free_mb=0.1)
    filler = None
    try:
        os.makedirs(rec.folder)
        filler = fill(tiny_disk)
        feed(rec, 0, 60, events={20: "lost"})
        status = wait_ready(rec, "lost")
        assert status["state"] == "unknown" and "paused" in status["reason"]
        st = rec.state()
        assert st["recording"] == "paused" and ("No space" in st["reason"] or "disk full" in st["reason"])
        feed(rec, 60, 80, events={70: "missed"})
        assert rec.clip_status("missed")["state"] == "unknown" and rec.state()["clips_missed"] == 1
        assert not [n for n in os.listdir(rec.folder) if n.endswith((".mp4", ".avi"))]     # nothing half-written
        os.unlink(filler)
        filler = None
        feed(rec, 80, 100)                                 # frames flow: the writer looks again
        deadline = time.time() + 10
        while rec.state()["recording"] != "on" and time.time() < deadline:
            feed(rec, 100, 101)
            time.sleep(0.05)
        assert rec.state()["recording"] == "on" and any("resumed" in line for line in rec.lines)
        feed(rec, 120, 160, events={130: "back"})
        assert wait_ready(rec, "back")["state"] == "ready"
    finally:
        rec.close()
        if filler:
            os.unlink(filler)


def test_read_only_folder_pauses_with_the_reason(tiny_disk, codec):
    os.makedirs(str(tiny_disk / "door"))
    assert subprocess.call(["mount", "-o", "remount,ro", str(tiny_disk)]) == 0
    rec = recorder(tiny_disk, codec)
    try:
        feed(rec, 0, 60, events={20: "ev"})
        status = wait_ready(rec, "ev")
        assert status["state"] == "unknown" and "Read-only" in status["reason"]
        assert rec.state()["recording"] == "paused" and "Read-only" in rec.state()["reason"]
    finally:
        rec.close()
        subprocess.call(["mount", "-o", "remount,rw", str(tiny_disk)])


def test_clip_status_while_writing_and_unknown(tmp_path, codec):
    rec = recorder(tmp_path, codec, post_s=5.0)
    feed(rec, 0, 30, events={20: "ev"})
    assert rec.clip_status("ev") == {"state": "writing"}
    assert rec.clip_status("nope")["state"] == "unknown"
    rec.close()                                           # the open clip ends at the last frame
    status = rec.clip_status("ev")
    assert status["state"] == "ready" and read_indices(status["path"])[-1] == 29


def test_ring_is_bounded_in_time_and_megabytes():
    ring = PreRollRing(pre_s=1.0, max_mb=10)
    for i in range(50):
        ring.push(coded_frame(i), t_of(i))
    assert ring.stats()["frames"] == 11 and ring.since(t_of(49) - 1.0)[0].t == t_of(39)
    small = PreRollRing(pre_s=10.0, max_mb=0.01)
    for i in range(50):
        small.push(coded_frame(i), t_of(i))
    st = small.stats()
    assert st["bytes"] <= 10000 and st["dropped_cap"] > 0 and st["frames"] < 50
    with pytest.raises(ConfigError):
        PreRollRing(pre_s=-1)


def test_codec_probe_says_what_it_chose(codec):
    text = codec.describe()
    assert codec.name in text and codec.ext in text
    assert [n for n, _ in codec.attempts] == ["jetson-h264", "gst-x264", "gst-openh264", "avc1", "h264",
                                              "mp4v", "mjpeg"][:len(codec.attempts)]
    mjpeg = probe_codec("mjpeg")
    assert mjpeg.name == "mjpeg" and mjpeg.ext == "avi"
    with pytest.raises(ConfigError):
        probe_codec("vp9")


def test_jetson_pipeline_text():
    text = gst_h264_pipeline('/clips/my "door".mp4', 29.97, (1280, 720))
    elements = [part.split()[0] for part in text.split(" ! ")]
    assert elements == ["appsrc", "video/x-raw,format=BGR,width=1280,height=720,framerate=30/1", "queue",
                        "videoconvert", "video/x-raw,format=BGRx", "nvvidconv",
                        "video/x-raw(memory:NVMM),format=NV12", "nvv4l2h264enc", "h264parse", "qtmux", "filesink"]
    assert text.endswith('location="/clips/my \\"door\\".mp4" sync=false')
    soft = gst_h264_pipeline("/c.mp4", 10, (64, 48), encoder="openh264enc")
    assert "nvvidconv" not in soft and "video/x-raw,format=I420 ! openh264enc ! h264parse" in soft


GST_SCRIPT = r"""
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from edgekit.recordings.clips import ClipRecorder
from edgekit.recordings.codec import probe_codec
codec = probe_codec("gst-x264")
rec = ClipRecorder("cam", sys.argv[2], pre_s=0.5, post_s=0.5, codec=codec, log=lambda s: None)
for i in range(40):
    rec.add_frame(np.full((96, 128, 3), i * 5, np.uint8), 100 + i / 10.0)
    if i == 20:
        rec.event(100 + i / 10.0, ["e"], ["car"])
rec.close()
print(json.dumps({"codec": codec.name, "status": rec.clip_status("e")}))
"""


@pytest.mark.system_python
def test_gstreamer_h264_clip_on_a_gstreamer_opencv(tmp_path):
    """Debian's python3 has an OpenCV with GStreamer: the appsrc ... qtmux path writes real H.264."""
    python = "/usr/bin/python3"
    if not os.path.exists(python) or subprocess.call([python, "-c", "import cv2"]) != 0:
        pytest.skip("no system python with cv2")
    out = subprocess.check_output([python, "-c", GST_SCRIPT, os.getcwd(), str(tmp_path)],
                                  stderr=subprocess.DEVNULL, env={"PATH": os.environ["PATH"]})
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["codec"].startswith("gst-") and result["status"]["state"] == "ready"
    probe = ffprobe(result["status"]["path"])
    assert probe["codec_name"] == "h264" and int(probe["nb_read_frames"]) == 11


def test_disk_filling_up_during_a_clip_leaves_no_file(tiny_disk, codec):
    rec = recorder(tiny_disk, codec, post_s=3.0, min_free_mb=0.5)
    filler = None
    try:
        feed(rec, 0, 45, events={40: "ev"})               # the clip is open and being written
        deadline = time.time() + 10
        while time.time() < deadline and not (os.path.isdir(rec.folder) and
                                              [n for n in os.listdir(rec.folder) if n.startswith(".tmp-")]):
            time.sleep(0.02)
        filler = fill(tiny_disk)                          # now the disk is full
        feed(rec, 45, 80, size=(160, 120))
        status = wait_ready(rec, "ev")
        assert status["state"] == "unknown" and "paused" in status["reason"], status
        assert rec.state()["recording"] == "paused"
        assert not [n for n in os.listdir(rec.folder) if n != "filler"]      # no clip, no temp file
    finally:
        rec.close()
        if filler:
            os.unlink(filler)
