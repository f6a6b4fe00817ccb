"""Hard-example harvesting: keep the frames the model is unsure about, pre-labelled, in YOLO format.

    h = Harvester("/var/lib/edgekit/harvest", labels=meta.labels, model_version="det-v3 sha256:ab12...")
    h.offer(frame, result, tracks=tracks, t=ts_capture, camera="door")   # every frame; returns the reasons kept

A frame is kept when, on that frame:
  - ``unsure``: a detection scores in [low, high);
  - ``flicker``: a confirmed track that was on the previous frame of that camera is missing on this
    one while its last box was not at the frame's edge (it did not walk out: the model lost it);
  - ``wanted``: a detection of a class named in ``wanted`` (rare classes the user wants more of);
at most once per ``every_s`` seconds per camera (``t``: capture time), while the folder holds less
than ``max_mb``. The reasons of a kept frame are all that applied.

The folder is a YOLO dataset (edgekit's reader, Ultralytics, CVAT and Label Studio read it):

    images/<camera>-<UTC time>.jpg       the frame as the camera saw it
    labels/<camera>-<UTC time>.txt       the model's own detections as pre-labels: class cx cy w h (0..1)
    data.yaml                            names: the model's labels (and train/val: images)
    manifest.jsonl                       one line per image: file, camera, time, why, model version, detections

``offer`` copies the frame and returns; a writer thread encodes and writes each image and label
atomically (edgekit.fsutil), then appends its manifest line, so the manifest never names a file that
is not there. A queue of ``queue_size`` frames: beyond it a kept frame is dropped and counted.
The folder belongs to one label set: a folder whose data.yaml names other classes is refused.
"""

import collections
import json
import os
import threading
import time

import numpy as np

from edgekit.errors import ConfigError
from edgekit.fsutil import atomic_write_bytes, atomic_write_text
from edgekit.progress import say
from edgekit.recordings.ring import positive
from edgekit.vision.draw import encode_jpeg

RECOUNT_S = 60.0        # while full, the folder is measured again at most this often (s of capture time)
EDGE = 0.02             # a box this close (fraction of the frame) to the border is leaving the view


def data_yaml_text(labels, model_version):
    """data.yaml for ``labels``: JSON flow values are YAML, so no YAML library is needed to write it."""
    return ("# edgekit harvest: frames pre-labelled by the model below (edgekit dataset merge)\n"
            "path: .\ntrain: images\nval: images\nnc: %d\nnames: %s\nmodel_version: %s\n"
            % (len(labels), json.dumps(list(labels)), json.dumps(str(model_version))))


def read_names(data_yaml):
    """The ``names`` of a data.yaml (list or {id: name}) -> [str]; ConfigError when there are none."""
    import yaml

    try:
        with open(data_yaml) as handle:
            cfg = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError("cannot read %s: %s" % (data_yaml, " ".join(str(exc).split())))
    names = cfg.get("names") if isinstance(cfg, dict) else None
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names, key=int)]
    if not isinstance(names, list) or not names:
        raise ConfigError("%s has no class names" % data_yaml, hint="add `names: [person, car, ...]`")
    return [str(n) for n in names], cfg


def label_difference(a, b):
    """One line saying how label list ``b`` differs from ``a`` (order counts: ids are positions)."""
    missing = [x for x in a if x not in b]
    extra = [x for x in b if x not in a]
    parts = []
    if missing:
        parts.append("without %s" % ", ".join(missing))
    if extra:
        parts.append("with %s" % ", ".join(extra))
    if not parts:
        first = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
        parts.append("in another order (class %d is %s, not %s)" % (first, b[first], a[first]))
    return "; ".join(parts)


def yolo_lines(detections, width, height):
    """Detections [{"class"|"index", "box": [x1, y1, x2, y2]}] -> YOLO label lines (clipped to the frame)."""
    lines = []
    for det in detections:
        cls = det.get("index", det.get("class"))
        x1, y1, x2, y2 = [float(v) for v in det["box"]]
        x1, x2 = max(0.0, min(x1, width)), max(0.0, min(x2, width))
        y1, y2 = max(0.0, min(y1, height)), max(0.0, min(y2, height))
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        lines.append("%d %.6f %.6f %.6f %.6f" % (int(cls), (x1 + x2) / 2.0 / width, (y1 + y2) / 2.0 / height,
                                               (x2 - x1) / width, (y2 - y1) / height))
    return lines


class Harvester(object):
    def __init__(self, folder, labels, model_version, low=0.3, high=0.6, every_s=10.0, max_mb=500.0,
                 wanted=(), model_sha=None, quality=90, queue_size=8, log=say, start=True):
        if not labels:
            raise ConfigError("harvesting needs the model's class names, and this model has no labels",
                              hint="export it with labels in its edgekit metadata, or give them with --meta")
        self.labels = [str(x) for x in labels]
        self.folder = os.fspath(folder)
        self.model_version = str(model_version)
        self.model_sha = model_sha
        self.low = positive("low", low, zero=True)
        self.high = positive("high", high)
        if not self.low < self.high <= 1.0:
            raise ConfigError("harvest scores need 0 <= low < high <= 1, got low %s high %s" % (low, high))
        self.every_s = positive("every_s", every_s, zero=True)
        self.max_bytes = positive("max_mb", max_mb) * 1e6
        unknown = [w for w in wanted if w not in self.labels]
        if unknown:
            raise ConfigError("harvest wanted class(es) %s are not labels of the model" % ", ".join(unknown),
                              hint="choose from: " + ", ".join(self.labels))
        self.wanted = set(wanted)
        self.quality = int(quality)
        self.log = log
        self.last_kept = {}                   # camera -> t
        self.prev_tracks = {}                 # camera -> {track id: (box, frame size)}
        self.counters = collections.Counter()
        self.reasons = collections.Counter()
        self.full_said = False
        self.queue = collections.deque()
        self.queue_size = int(queue_size)
        self.cond = threading.Condition()
        self.stopping = False
        self.pending = 0                      # queued or being written
        self.recount_wanted = False
        self.recounting = False
        self.last_recount = None
        self._prepare()
        self.thread = threading.Thread(target=self._run, name="harvest", daemon=True)
        if start:
            self.thread.start()

    def _prepare(self):
        for sub in ("images", "labels"):
            os.makedirs(os.path.join(self.folder, sub), exist_ok=True)
        data = os.path.join(self.folder, "data.yaml")
        if os.path.exists(data):
            names, _ = read_names(data)
            if names != self.labels:
                raise ConfigError("harvest folder %s holds frames of a model with other labels: this model's are %s"
                                  % (self.folder, label_difference(names, self.labels)),
                                  hint="bring that harvest home and empty the folder, or harvest into another one")
        atomic_write_text(data, data_yaml_text(self.labels, self.model_version))
        self.bytes = self._count()

    def _count(self):
        total = 0
        for sub in ("images", "labels"):
            where = os.path.join(self.folder, sub)
            try:
                names = os.listdir(where)
            except OSError:
                continue
            for name in names:
                try:
                    total += os.path.getsize(os.path.join(where, name))
                except OSError:
                    pass
        return total

    # -- the caller's side --------------------------------------------------------------------------
    def why(self, result, tracks, camera, size):
        """The reasons this frame is hard (a list, maybe empty); updates the flicker memory."""
        reasons = []
        dets = (result or {}).get("detections") or []
        if any(self.low <= float(d.get("score", 0.0)) < self.high for d in dets):
            reasons.append("unsure")
        if tracks is not None:
            tracks = np.asarray(tracks, dtype=np.float64).reshape(-1, 7)
            now = dict((int(row[4]), row[:4]) for row in tracks)
            before = self.prev_tracks.get(camera, {})
            w, h = size
            for tid, box in before.items():
                if tid in now:
                    continue
                x1, y1, x2, y2 = box
                if x1 > EDGE * w and y1 > EDGE * h and x2 < (1 - EDGE) * w and y2 < (1 - EDGE) * h:
                    reasons.append("flicker")
                    break
            self.prev_tracks[camera] = now
        if self.wanted and any(self._label(d) in self.wanted for d in dets):
            reasons.append("wanted")
        return reasons

    def _label(self, det):
        cls = det.get("index", det.get("class"))
        return det.get("label") or (self.labels[int(cls)] if cls is not None and 0 <= int(cls) < len(self.labels)
                                    else None)

    def offer(self, frame, result, tracks=None, t=None, camera="camera"):
        """Keep ``frame`` when it is hard and the camera's rate and the cap allow; returns the reasons
        (a non-empty list) when it was queued for writing, else an empty list."""
        t = time.time() if t is None else float(t)
        h, w = frame.shape[:2]
        reasons = self.why(result, tracks, camera, (w, h))
        if not reasons:
            return []
        last = self.last_kept.get(camera)
        if last is not None and t - last < self.every_s:
            self.counters["skipped_rate"] += 1
            return []
        if self.bytes >= self.max_bytes:
            if self.last_recount is None or t - self.last_recount >= RECOUNT_S:
                self.last_recount = t          # brought home and cleared (harvest.yml)? the writer looks
                with self.cond:
                    self.recount_wanted = True
                    self.cond.notify_all()
            self.counters["skipped_full"] += 1
            if not self.full_said:
                self.full_said = True
                self.log("harvest: %s holds %.0f MB, its cap (max_mb): no more frames until it is brought home"
                         % (self.folder, self.bytes / 1e6))
            return []
        with self.cond:
            if len(self.queue) >= self.queue_size:
                self.counters["dropped_queue"] += 1
                return []
            dets = [dict(d) for d in ((result or {}).get("detections") or [])]
            self.queue.append((frame.copy(), dets, t, camera, reasons))
            self.pending += 1
            self.cond.notify_all()
        self.last_kept[camera] = t
        self.counters["queued"] += 1
        for r in reasons:
            self.reasons[r] += 1
        return reasons

    def state(self):
        out = dict(self.counters)
        for key in ("queued", "kept", "skipped_rate", "skipped_full", "dropped_queue", "failed"):
            out.setdefault(key, 0)
        out.update({"folder": self.folder, "mb": round(self.bytes / 1e6, 3), "max_mb": self.max_bytes / 1e6,
                    "full": self.bytes >= self.max_bytes, "reasons": dict(self.reasons)})
        return out

    def flush(self, timeout=30.0):
        """Wait until every queued frame is written (tests, shutdown); True when done."""
        deadline = time.time() + timeout
        with self.cond:
            while (self.pending or self.recount_wanted or self.recounting) and time.time() < deadline:
                self.cond.wait(0.1)
            return not (self.pending or self.recount_wanted or self.recounting)

    def close(self, timeout=30.0):
        with self.cond:
            self.stopping = True
            self.cond.notify()
        if self.thread.is_alive():
            self.thread.join(timeout)

    # -- the writer thread --------------------------------------------------------------------------
    def _run(self):
        while True:
            with self.cond:
                while not self.queue and not self.stopping and not self.recount_wanted:
                    self.cond.wait(1.0)
                recount, self.recount_wanted = self.recount_wanted, False
                self.recounting = recount
                item = self.queue.popleft() if self.queue else None
                if item is None and not recount:
                    return
            if recount:
                self.bytes = self._count()
                if self.bytes < self.max_bytes and self.full_said:
                    self.full_said = False
                    self.log("harvest: %s has room again (%.1f MB): harvesting resumes" % (self.folder,
                                                                                            self.bytes / 1e6))
                with self.cond:
                    self.recounting = False
                    self.cond.notify_all()
            if item is None:
                continue
            try:
                self._save(*item)
            except Exception as exc:
                self.counters["failed"] += 1
                self.log("harvest: could not save a frame in %s: %s" % (self.folder, exc))
            with self.cond:
                self.pending -= 1
                self.cond.notify_all()

    def _save(self, frame, dets, t, camera, reasons):
        h, w = frame.shape[:2]
        ms = int(round((t - int(t)) * 1000)) % 1000
        stem = "%s-%s-%03d" % (camera, time.strftime("%Y%m%d-%H%M%S", time.gmtime(int(t))), ms)
        image_path = os.path.join(self.folder, "images", stem + ".jpg")
        n = 1
        while os.path.exists(image_path):
            n += 1
            image_path = os.path.join(self.folder, "images", "%s-%d.jpg" % (stem, n))
        stem = os.path.splitext(os.path.basename(image_path))[0]
        data = encode_jpeg(frame, self.quality)
        text = "".join(line + "\n" for line in yolo_lines(dets, w, h))
        label_path = os.path.join(self.folder, "labels", stem + ".txt")
        atomic_write_text(label_path, text)
        atomic_write_bytes(image_path, data)
        record = {"file": "images/%s.jpg" % stem, "labels": "labels/%s.txt" % stem, "camera": camera, "time": t,
                  "why": reasons, "model_version": self.model_version, "model_sha256": self.model_sha,
                  "width": w, "height": h,
                  "detections": [{"class": int(d.get("index", d.get("class"))), "label": self._label(d),
                                  "score": round(float(d.get("score", 0.0)), 4),
                                  "box": [round(float(v), 1) for v in d["box"]]} for d in dets]}
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        fd = os.open(os.path.join(self.folder, "manifest.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.bytes += len(data) + len(text)
        self.counters["kept"] += 1
