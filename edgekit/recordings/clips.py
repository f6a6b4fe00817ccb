"""Event clips of one camera: a pre-roll ring, and MP4 clips written off the caller's thread.

    rec = ClipRecorder("door", "/var/lib/edgekit/clips", pre_s=5, post_s=5, max_gb=2, max_days=7)
    rec.add_frame(frame, t)                 # every frame (the inference loop): JPEG into the ring
    rec.event(t, ["door-1733280000123-7"], ["person"])   # an event at capture time t
    rec.clip_status("door-1733280000123-7")  # {"state": "writing"} / {"state": "ready", "path": ...}
    rec.state()                             # recording on/paused + why, counters (status page, metrics)
    rec.close()                             # finish the open clip, stop the writer thread

A clip runs from ``pre_s`` before its first event to ``post_s`` after its LAST one: an event while a
clip is open extends it (one clip, several event ids). It closes on the first frame after its end
(``add_frame`` or ``tick(t)``). Its first frame is the last ring frame at or before ``t - pre_s``
(within a frame of it), when the ring reaches back that far.

The caller never blocks and never touches the disk: ``add_frame`` encodes one JPEG and appends
references to a mailbox; a writer thread decodes, encodes the video into a hidden temp file in the
camera's folder, fsyncs, checks the file reads back, renames it into place and writes the JSON
sidecar atomically (edgekit.fsutil), then applies retention. The mailbox holds at most
``queue_frames`` frames: a frame beyond that is dropped from its clip, counted (state()
``frames_dropped``, the sidecar's ``frames_dropped``) and said once per clip.

A frame size change mid-clip closes the clip at the change and starts a new part
(``<name>-p2``) for the same events, said in the log and in both sidecars (``split``); no frame is
resized. The pre-roll of a new clip keeps only the frames of the newest frame size.

A full, read-only or missing disk never reaches the caller: the writer pauses recording (state()
``recording: paused`` with the reason), drops the clip being written (no half-written file stays),
events meanwhile are counted as ``clips_missed``, and every ``retry_s`` the writer checks again and
resumes (said) once the folder takes files and has ``min_free_mb`` free.
"""

import collections
import json
import os
import threading
import time

import cv2
import numpy as np

from edgekit.errors import ConfigError
from edgekit.fsutil import fsync_dir, atomic_write_json
from edgekit.progress import say
from edgekit.recordings import retention
from edgekit.recordings.codec import probe_codec
from edgekit.recordings.ring import DEFAULT_QUALITY, PreRollRing, positive

SIDECAR_VERSION = 1
_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def check_camera_name(name):
    if not name or not set(name) <= _SAFE or name.startswith("."):
        raise ConfigError("camera name %r cannot name a clip folder" % (name,),
                          hint="use letters, digits, '-', '_' and '.' (not first)")
    return name


def clip_stem(camera, t, part=1):
    ms = int(round((t - int(t)) * 1000)) % 1000
    stem = "%s-%s-%03d" % (camera, time.strftime("%Y%m%d-%H%M%S", time.gmtime(int(t))), ms)
    return stem if part == 1 else "%s-p%d" % (stem, part)


class Clip(object):
    """One clip (one part) as the caller's side knows it; the writer thread fills in the outcome."""

    def __init__(self, camera, start, end, event_ids, labels, size, part=1, base=None):
        self.camera = camera
        self.start = start                  # requested start (event - pre_s)
        self.end = end                      # last activity + post_s
        self.event_ids = list(event_ids)
        self.labels = list(labels)
        self.size = size
        self.part = part
        self.base = base or self            # part 1 of this clip
        self.parts = [self] if base is None else None       # on part 1: every part so far
        self.stem = None                    # set from the first frame's time
        self.state = "writing"
        self.reason = None
        self.path = None
        self.frames_sent = 0
        self.frames_dropped = 0
        self.split = None                   # why this part ended / began (frame size change)
        self.note = None

    def add_events(self, event_ids, labels):
        for e in event_ids:
            if e not in self.event_ids:
                self.event_ids.append(e)
        for label in labels:
            if label not in self.labels:
                self.labels.append(label)


class _Mailbox(object):
    """A queue bounded in frames only: control messages (open, close, probe) are never refused."""

    def __init__(self, max_frames):
        self.max_frames = int(max_frames)
        self.items = collections.deque()
        self.frames = 0
        self.cond = threading.Condition()

    def put(self, item, frame=False):
        with self.cond:
            if frame:
                if self.frames >= self.max_frames:
                    return False
                self.frames += 1
            self.items.append((frame, item))
            self.cond.notify()
            return True

    def get(self, timeout=None):
        with self.cond:
            if not self.items:
                self.cond.wait(timeout)
            if not self.items:
                return None
            frame, item = self.items.popleft()
            if frame:
                self.frames -= 1
            return item

    def depth(self):
        with self.cond:
            return len(self.items)


class ClipRecorder(object):
    def __init__(self, camera, root, pre_s=5.0, post_s=5.0, ring_mb=64.0, quality=DEFAULT_QUALITY, fps=None,
                 max_gb=None, max_days=None, min_free_mb=50.0, queue_frames=256, codec=None, retry_s=10.0,
                 log=say, start=True):
        self.camera = check_camera_name(camera)
        self.folder = os.path.join(os.fspath(root), camera)
        self.pre_s = positive("pre_s", pre_s, zero=True)
        self.post_s = positive("post_s", post_s, zero=True)
        self.fps = None if fps is None else positive("fps", fps)
        self.max_gb = None if max_gb is None else positive("max_gb", max_gb)
        self.max_days = None if max_days is None else positive("max_days", max_days)
        self.min_free_bytes = positive("min_free_mb", min_free_mb, zero=True) * 1e6
        self.retry_s = positive("retry_s", retry_s)
        self.ring = PreRollRing(self.pre_s, ring_mb, quality)
        self.log = log
        self.codec = codec if codec is not None and not isinstance(codec, str) else probe_codec(codec)
        self.log("camera %s: %s" % (camera, self.codec.describe()))
        self.mailbox = _Mailbox(queue_frames)
        self.lock = threading.Lock()
        self.clip = None                    # the open clip (caller's side)
        self.by_event = {}                  # event id -> [Clip or path]
        self.last_frame_t = None
        self.paused = None                  # None, or {"reason", "since"}
        self.last_probe = None              # frame time of the last look at a paused folder
        self.counters = collections.Counter()
        self._index_folder()
        self.thread = threading.Thread(target=self._run, name="clips-%s" % camera, daemon=True)
        if start:
            self.thread.start()

    # -- the caller's side (inference loop): never blocks, never touches the disk -------------------------
    def add_frame(self, frame, t):
        """Keep ``frame`` (BGR) captured at ``t`` in the ring, and in the open clip. Returns False when
        skipped by the ``fps`` limit."""
        t = float(t)
        if self.fps is not None and self.last_frame_t is not None and t - self.last_frame_t < 0.999 / self.fps:
            self.tick(t)
            return False
        self.last_frame_t = t
        item = self.ring.push(frame, t)
        self.tick(t)
        clip = self.clip
        if clip is not None and clip.state != "writing":
            self.clip = clip = None             # the writer gave it up (paused): nothing more to send
        if clip is not None:
            if item.size != clip.size:
                self._split(clip, item)
            else:
                self._send_frame(clip, item)
        return True

    def tick(self, t):
        """Close the open clip when ``t`` is past its end; while paused, ask the writer to look again."""
        clip = self.clip
        if clip is not None and t > clip.end:
            self.clip = None
            self.mailbox.put(("close", clip))
        if self.paused is not None:
            if self.last_probe is None:
                self.last_probe = t            # paused since about now: look again retry_s later
            elif t - self.last_probe >= self.retry_s:
                self.last_probe = t
                self.mailbox.put(("probe", None))

    def event(self, t, event_ids, labels=()):
        """An event at capture time ``t``: open a clip from ``t - pre_s`` or extend the open one to
        ``t + post_s``. Returns the clip's stem (name without extension), or None when not recording."""
        t = float(t)
        if isinstance(event_ids, str):
            event_ids = [event_ids]
        labels = [str(x) for x in labels]
        clip = self.clip
        if clip is not None:
            clip.end = max(clip.end, t + self.post_s)
            clip.base.add_events(event_ids, labels)
            if clip is not clip.base:
                clip.add_events(event_ids, labels)
            with self.lock:
                for e in event_ids:
                    parts = self.by_event.setdefault(e, [])
                    parts.extend(p for p in clip.base.parts if p not in parts)
            return clip.stem
        if self.paused is not None:
            self.counters["clips_missed"] += 1
            with self.lock:
                for e in event_ids:
                    self.by_event[e] = [{"state": "unknown", "reason": "recording paused: " + self.paused["reason"]}]
            return None
        frames = self.ring.since(t - self.pre_s)
        if not frames:
            return None                     # no frame yet: nothing to record from
        size = frames[-1].size
        kept = frames[len(frames) - _trailing(frames, size):]
        clip = Clip(self.camera, t - self.pre_s, t + self.post_s, event_ids, labels, size)
        if len(kept) < len(frames):
            clip.note = "pre-roll starts at a frame size change"
        clip.stem = clip_stem(self.camera, kept[0].t)
        self.clip = clip
        with self.lock:
            for e in event_ids:
                self.by_event[e] = [clip]
        clip.frames_sent = len(kept)
        self.counters["clips_started"] += 1
        self.mailbox.put(("open", (clip, kept, self._fps_estimate())))
        last = self.last_frame_t
        if last is not None and last > clip.end:           # an event about the past, already over
            self.tick(last)
        return clip.stem

    def _send_frame(self, clip, item):
        if self.mailbox.put(("frame", (clip, item)), frame=True):
            clip.frames_sent += 1
            return
        clip.frames_dropped += 1
        self.counters["frames_dropped"] += 1
        if clip.frames_dropped == 1:
            self.log("camera %s: clip %s: the clip writer is behind (%d frames queued): frames are dropped from "
                     "the clip and counted" % (self.camera, clip.stem, self.mailbox.max_frames))

    def _split(self, clip, item):
        why = "frame size changed from %dx%d to %dx%d" % (clip.size + item.size)
        clip.split = why
        self.mailbox.put(("close", clip))
        part = Clip(self.camera, item.t, clip.end, clip.base.event_ids, clip.base.labels, item.size,
                    part=clip.part + 1, base=clip.base)
        part.split = why
        part.stem = "%s-p%d" % (clip.base.stem, part.part)
        part.frames_sent = 1
        self.clip = part
        clip.base.parts.append(part)
        with self.lock:
            for e in part.event_ids:
                self.by_event.setdefault(e, []).append(part)
        self.counters["clips_split"] += 1
        self.log("camera %s: clip %s: %s: closed at the change, continued as %s" % (self.camera, clip.stem, why,
                                                                                  part.stem))
        self.mailbox.put(("open", (part, [item], self._fps_estimate())))

    def _fps_estimate(self):
        if self.fps is not None:
            return self.fps
        frames = list(self.ring.frames)[-32:]
        if len(frames) < 2:
            return 10.0
        gaps = np.diff([f.t for f in frames])
        gaps = gaps[gaps > 0]
        return float(min(120.0, max(1.0, 1.0 / np.median(gaps)))) if len(gaps) else 10.0

    # -- what others read -----------------------------------------------------------------------------
    def clip_status(self, event_id):
        """{"state": "ready", "path", "paths"} | {"state": "writing"} | {"state": "unknown", "reason"?}."""
        with self.lock:
            parts = list(self.by_event.get(event_id, ()))
        if not parts:
            return {"state": "unknown", "reason": "no clip for this event"}
        states = []
        for p in parts:
            if isinstance(p, dict):
                return dict(p)
            if isinstance(p, str):
                if not os.path.isfile(p):
                    return {"state": "unknown", "reason": "the clip was removed (retention)"}
                states.append(("ready", p, None))
            else:
                states.append((p.state, p.path, p.reason))
        if any(s == "writing" for s, _, _ in states):
            return {"state": "writing"}
        failed = [r for s, _, r in states if s != "ready"]
        if failed:
            return {"state": "unknown", "reason": failed[0]}
        paths = [p for _, p, _ in states]
        if not all(os.path.isfile(p) for p in paths):
            return {"state": "unknown", "reason": "the clip was removed (retention)"}
        return {"state": "ready", "path": paths[0], "paths": paths}

    def state(self):
        paused = self.paused
        out = {"camera": self.camera, "folder": self.folder, "recording": "paused" if paused else "on",
               "reason": paused["reason"] if paused else None, "since": paused["since"] if paused else None,
               "codec": self.codec.name, "h264": self.codec.h264, "pre_s": self.pre_s, "post_s": self.post_s,
               "clip_open": self.clip.stem if self.clip is not None else None, "queued": self.mailbox.depth(),
               "ring": self.ring.stats()}
        for key in ("clips_started", "clips_written", "clips_failed", "clips_missed", "clips_split",
                    "clips_removed", "frames_dropped"):
            out[key] = self.counters[key]
        return out

    def describe(self):
        return "camera %s: %s; pre %.1f s, post %.1f s, %s" % (
            self.camera, self.codec.describe(), self.pre_s, self.post_s,
            "retention %s GB / %s days" % (self.max_gb, self.max_days))

    def close(self, timeout=30.0):
        """Finish the open clip (it ends at the last frame) and stop the writer thread."""
        clip = self.clip
        if clip is not None:
            self.clip = None
            self.mailbox.put(("close", clip))
        self.mailbox.put(("stop", None))
        if self.thread.is_alive():
            self.thread.join(timeout)

    # -- the writer thread --------------------------------------------------------------------------
    def _run(self):
        current = {}                        # clip -> [writer, temp path, frames written, last t, first t]
        while True:
            msg = self.mailbox.get(timeout=1.0)
            if msg is None:
                continue
            kind, body = msg
            try:
                if kind == "stop":
                    for clip in list(current):
                        self._finish(clip, current.pop(clip))
                    return
                if kind == "open":
                    clip, frames, fps = body
                    entry = self._open(clip, frames, fps)
                    if entry is not None:
                        current[clip] = entry
                elif kind == "frame":
                    clip, item = body
                    if clip in current:
                        self._write(clip, current[clip], [item])
                        if clip.state != "writing":
                            self._discard(current.pop(clip))
                elif kind == "close":
                    if body in current:
                        self._finish(body, current.pop(body))
                    elif body.state == "writing":
                        body.state = "failed"
                elif kind == "probe":
                    self._probe()
            except Exception as exc:        # a bug must not kill the writer: say it, drop that clip
                self.log("camera %s: clip writer error: %s: %s" % (self.camera, type(exc).__name__, exc))
                if kind in ("open", "frame", "close"):
                    clip = body if kind == "close" else body[0]
                    if clip in current:
                        self._discard(current.pop(clip))
                    self._fail(clip, "writer error: %s" % exc)

    def _fail(self, clip, reason):
        if clip.state == "writing":
            clip.state = "failed"
            clip.reason = reason
            self.counters["clips_failed"] += 1

    def _pause(self, reason):
        if self.paused is None:
            self.paused = {"reason": reason, "since": time.time()}
            self.log("camera %s: recording paused: %s (clips resume when the folder takes files again)"
                     % (self.camera, reason))

    def _free_bytes(self):
        st = os.statvfs(self.folder)
        return st.f_bavail * st.f_frsize

    def _space_problem(self):
        """None when the folder takes a clip, else why not (creates the folder)."""
        try:
            os.makedirs(self.folder, exist_ok=True)
            probe = os.path.join(self.folder, ".tmp-probe")
            with open(probe, "wb") as handle:
                handle.write(b"x")
                handle.flush()
                os.fsync(handle.fileno())
            os.unlink(probe)
            free = self._free_bytes()
        except OSError as exc:
            return "%s: %s" % (self.folder, exc.strerror or exc)
        if free < self.min_free_bytes:
            return "disk full: %.1f MB free in %s, below min_free_mb %.1f" % (free / 1e6, self.folder,
                                                                          self.min_free_bytes / 1e6)
        return None

    def _probe(self):
        if self.paused is None:
            return
        self._retention()
        why = self._space_problem()
        if why is None:
            was = self.paused
            self.paused = None
            self.last_probe = None
            self.log("camera %s: recording resumed (paused %.0f s: %s)" % (self.camera, time.time() - was["since"],
                                                                          was["reason"]))

    def _open(self, clip, frames, fps):
        why = self.paused["reason"] if self.paused else self._space_problem()
        if why is not None:
            self._pause(why)
            self._fail(clip, "recording paused: " + why)
            return None
        tmp = os.path.join(self.folder, ".tmp-%s.%s" % (clip.stem, self.codec.ext))
        writer = self.codec.open(tmp, fps, clip.size)
        if writer is None:
            why = self._space_problem() or "the %s writer did not open %s" % (self.codec.name, tmp)
            self._pause(why)
            self._fail(clip, "recording paused: " + why)
            _unlink(tmp)
            return None
        entry = [writer, tmp, 0, None, frames[0].t, fps]
        self._write(clip, entry, frames)
        if clip.state != "writing":
            self._discard(entry)
            return None
        return entry

    def _write(self, clip, entry, frames):
        writer = entry[0]
        for item in frames:
            image = cv2.imdecode(np.frombuffer(item.jpeg, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                continue
            writer.write(image)
            entry[2] += 1
            entry[3] = item.t
        if entry[2] and entry[2] % 30 == 0:
            try:
                free = self._free_bytes()
            except OSError as exc:
                free, why = 0, str(exc)
            else:
                why = "disk full: %.1f MB free in %s" % (free / 1e6, self.folder)
            if free < self.min_free_bytes or free == 0:
                self._pause(why)
                self._fail(clip, "recording paused: " + why)

    def _discard(self, entry):
        try:
            entry[0].release()
        finally:
            _unlink(entry[1])

    def _finish(self, clip, entry):
        writer, tmp, count, last_t, first_t, fps = entry
        writer.release()
        final = os.path.join(self.folder, clip.stem + "." + self.codec.ext)
        try:
            frames = _readable_frames(tmp)
            if frames is None:
                why = self._space_problem() or "the clip file did not read back"
                raise _ClipFailed(why)
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, final)
            fsync_dir(self.folder)
            meta = {"version": SIDECAR_VERSION, "camera": clip.camera, "event_ids": list(clip.base.event_ids),
                    "labels": list(clip.base.labels), "start": first_t, "end": last_t,
                    "requested": {"start": clip.start, "end": clip.end}, "frames": count,
                    "frames_dropped": clip.frames_dropped, "fps": round(fps, 3), "codec": self.codec.name,
                    "h264": self.codec.h264, "container": self.codec.ext, "width": clip.size[0],
                    "height": clip.size[1], "file": os.path.basename(final), "size": os.path.getsize(final),
                    "part": clip.part, "split": clip.split, "note": clip.note}
            try:
                atomic_write_json(os.path.join(self.folder, clip.stem + ".json"), meta)
            except BaseException:
                _unlink(final)
                raise
        except (OSError, _ClipFailed) as exc:
            _unlink(tmp)
            why = str(exc) if isinstance(exc, _ClipFailed) else "%s: %s" % (self.folder, exc.strerror or exc)
            if isinstance(exc, OSError) or why.startswith("disk full") or "No space" in why:
                self._pause(why)
            self._fail(clip, "recording paused: " + why if self.paused else why)
            return
        clip.path = final
        clip.state = "ready"
        self.counters["clips_written"] += 1
        self._retention(keep=(clip.stem,))

    def _retention(self, keep=()):
        if self.max_gb is None and self.max_days is None:
            return
        removed = retention.enforce(self.folder, self.max_gb, self.max_days, keep=keep)
        self.counters["clips_removed"] += len(removed)

    def _index_folder(self):
        """Clips of earlier runs: event id -> video path, from the sidecars; stale temp files go."""
        retention.clean_temp(self.folder)
        for stem, path, _, _ in retention.clips(self.folder):
            try:
                with open(os.path.join(self.folder, stem + ".json")) as handle:
                    meta = json.load(handle)
            except (OSError, ValueError):
                continue
            for e in meta.get("event_ids") or ():
                self.by_event.setdefault(e, []).append(path)


class _ClipFailed(Exception):
    pass


def _trailing(frames, size):
    n = 0
    for f in reversed(frames):
        if f.size != size:
            break
        n += 1
    return n


def _readable_frames(path):
    """The frame count when ``path`` opens as a video and its first frame decodes, else None."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return None
    cap = cv2.VideoCapture(path)
    try:
        if not cap.isOpened():
            return None
        ok, _ = cap.read()
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if ok else None
    finally:
        cap.release()


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass
