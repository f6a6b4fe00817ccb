"""The daemon's analytics: tracks, lines and zones on every published frame, events to the outputs.

    hook = AnalyticsHook(config, camera=device_id, labels=meta.labels, metrics=metrics,
                         event_sinks=[events_jsonl], mqtt=mqtt_sink, snapshots=writer)
    pipeline = Pipeline(..., analytics=hook)     # hook.process(record, image) before the sinks

``process`` runs on the pipeline's publishing path, which publishes frames in reading order (also
with several workers), so the tracker sees every frame in order. It gives each detection of the
record its ``track_id`` (None when not matched to a confirmed track), adds ``frame_size``, and
hands each event to the event sinks (JSON Lines, MQTT ``events``), the recent-events ring (HTTP
``/v1/events``), the snapshot writer, the metrics, and the retained counts of the rules whose
counts changed (MQTT ``counts/<rule>``). Nothing here blocks: sinks queue or drop.

The HTTP server reads ``events()``, ``counts()``, ``tracks()`` and ``snapshot_file()`` from its own
threads; the analytics state is read under the same lock ``process`` takes.
"""

import collections
import os
import re
import threading
import time

import numpy as np

from edgekit.errors import ConfigError
from edgekit.progress import warn
from edgekit.service.sinks.base import QueuedSink

SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


def build_config(mapping, labels, task, frame_size=None, key="analytics"):
    """The validated ``AnalyticsConfig`` for the daemon (None when no analytics is configured)."""
    from edgekit.analytics.config import validate_config

    if mapping is None:
        return None
    if task != "detection":
        raise ConfigError("config key %s: analytics needs a detection model, this one is a %s model" % (key, task),
                          hint="remove the analytics section or serve a detector")
    return validate_config(mapping, labels=labels, frame_size=frame_size, key=key)


def counts_payload(state):
    """A rule's retained MQTT counts (and the HTTP /v1/counts entry): totals first, then per label."""
    if state["type"] == "line":
        return {"type": "line", "in": state["in_total"], "out": state["out_total"], "in_by_label": state["in"],
                "out_by_label": state["out"]}
    return {"type": "zone", "occupancy": state["occupied"], "occupied": "ON" if state["occupied"] else "OFF",
            "occupancy_by_label": state["occupancy"], "entered": state["entered_total"],
            "entered_by_label": state["entered"]}


class AnalyticsHook(object):
    def __init__(self, config, camera, labels, metrics=None, event_sinks=(), mqtt=None, snapshots=None,
                 recent=500):
        from edgekit.analytics.camera import CameraAnalytics

        self.analytics = CameraAnalytics(config, camera=camera, labels=labels)
        self.labels = list(labels)
        self.camera = camera
        self.metrics = metrics
        self.event_sinks = list(event_sinks)
        self.mqtt = mqtt
        self.snapshots = snapshots
        self.lock = threading.Lock()
        self._recent = collections.deque(maxlen=recent)
        self.events_total = 0
        self._tracks_active = 0
        self._describe_metrics()
        self._publish_all_counts()

    # -- the publishing path ----------------------------------------------------------------
    def process(self, record, image):
        result = record.get("result") or {}
        detections = result.get("detections") or []
        if detections:
            dets = np.array([(d["box"][0], d["box"][1], d["box"][2], d["box"][3], d["score"], d["index"])
                             for d in detections], dtype=np.float64)
        else:
            dets = np.zeros((0, 6))
        frame_size = (int(image.shape[1]), int(image.shape[0]))
        record["frame_size"] = [frame_size[0], frame_size[1]]
        with self.lock:
            out = self.analytics.update(dets, record["ts_capture"], frame_size=frame_size, frame=record["seq"])
        for d, tid in zip(detections, out.det_track_ids):
            d["track_id"] = tid
        if self.metrics is not None and len(out.tracks) != self._tracks_active:     # the gauge, on change
            self._tracks_active = len(out.tracks)
            self.metrics.set("tracks_active", self._tracks_active)
        if out.events:
            self._events(out.events, image, result)

    def _events(self, events, image, result):
        changed = []
        geometry = None
        if self.snapshots is not None:      # the rules as drawn on the snapshot (pixels on this frame)
            geometry = [(r.rule.kind, r.points) for r in self.analytics.runners if r.points]
        for event in events:
            if self.snapshots is not None:
                event["snapshot"] = self.snapshots.submit(event, image, result, geometry)
            self._recent.append(event)
            for sink in self.event_sinks:
                sink.submit(event)
            if self.mqtt is not None:
                self.mqtt.submit_event(event)
            if event["rule"] not in changed:
                changed.append(event["rule"])
            if self.metrics is not None:
                self.metrics.inc("events_total", type=event["type"])
                if event["type"] == "line_crossed":
                    self.metrics.inc("line_crossings_total", rule=event["rule"], direction=event["direction"],
                                     label=event["label"])
        self.events_total += len(events)
        with self.lock:
            counts = self.analytics.counts()
        for rule in changed:
            if rule in counts:
                self._counts_changed(rule, counts[rule])

    def _counts_changed(self, rule, state):
        if self.metrics is not None and state["type"] == "zone":
            labels = set(state["occupancy"]) | set(state["entered"])
            for label in labels:
                self.metrics.set("zone_occupancy", state["occupancy"].get(label, 0), rule=rule, label=label)
            self.metrics.set("zone_occupancy", state["occupied"], rule=rule, label="all")
        if self.mqtt is not None:
            self.mqtt.set_counts(rule, counts_payload(state))

    def _publish_all_counts(self):
        counts = self.analytics.counts()
        for rule, state in counts.items():
            if self.metrics is not None and state["type"] == "line":
                for direction in ("in", "out"):
                    self.metrics.inc("line_crossings_total", 0, rule=rule, direction=direction, label="all")
            self._counts_changed(rule, state)

    # -- reload -----------------------------------------------------------------------------
    def reload(self, config):
        """New rules (an AnalyticsConfig); counts and track ids kept (CameraAnalytics.reload)."""
        with self.lock:
            old = set(r.rule.name for r in self.analytics.runners)
            self.analytics.reload(config)
            new = set(r.rule.name for r in self.analytics.runners)
        if self.mqtt is not None:
            for rule in sorted(old - new):
                self.mqtt.set_counts(rule, None)
        self._publish_all_counts()

    # -- what HTTP and MQTT read ---------------------------------------------------------------
    def events(self, since=None, limit=100):
        """The recent events (oldest first) after ``since``: an event id, or a time in seconds."""
        events = list(self._recent)
        if since is not None:
            ids = [e["id"] for e in events]
            if since in ids:
                events = events[ids.index(since) + 1:]
            else:
                try:
                    t = float(since)
                except ValueError:
                    raise ValueError("since must be an event id or a time in seconds")
                events = [e for e in events if e["time"] > t]
        return events[-limit:] if limit else []

    def counts(self):
        with self.lock:
            counts = self.analytics.counts()
        return dict((rule, counts_payload(state)) for rule, state in counts.items())

    def state(self):
        with self.lock:
            state = self.analytics.state()
        state["events_total"] = self.events_total
        state["frame_size"] = list(self.analytics.frame_size) if self.analytics.frame_size else None
        return state

    def snapshot_file(self, event_id, kind):
        if self.snapshots is None or not SAFE_ID.match(event_id) or event_id.startswith("."):
            return None
        return self.snapshots.path_of(event_id, kind)

    def discovery(self):
        """{rule: [(component, object_id, config)]} for Home Assistant (MqttSink.set_discovery)."""
        out = {}
        for runner in self.analytics.runners:
            rule = runner.rule
            labels = sorted(c for c in (rule.classes or ()) if isinstance(c, str))
            items = []
            if rule.kind == "line":
                for direction in ("in", "out"):
                    items.append(("sensor", "%s_%s" % (rule.name, direction), {
                        "name": "%s %s" % (rule.name, direction), "value_template": "{{ value_json['%s'] }}" % direction,
                        "state_class": "total_increasing", "unit_of_measurement": "objects",
                        "icon": "mdi:counter"}))
            else:
                items.append(("sensor", "%s_occupancy" % rule.name, {
                    "name": "%s occupancy" % rule.name, "value_template": "{{ value_json.occupancy }}",
                    "state_class": "measurement", "unit_of_measurement": "objects", "icon": "mdi:account-group"}))
                for label in labels:
                    items.append(("sensor", "%s_occupancy_%s" % (rule.name, _object_id(label)), {
                        "name": "%s %s" % (rule.name, label),
                        "value_template": "{{ value_json.occupancy_by_label['%s'] | default(0) }}" % label.replace(
                            "'", ""),
                        "state_class": "measurement", "unit_of_measurement": "objects"}))
                items.append(("binary_sensor", "%s_occupied" % rule.name, {
                    "name": "%s occupied" % rule.name, "value_template": "{{ value_json.occupied }}",
                    "payload_on": "ON", "payload_off": "OFF", "device_class": "occupancy"}))
            out[rule.name] = items
        return out

    def _describe_metrics(self):
        m = self.metrics
        if m is None:
            return
        m.describe("line_crossings_total", "counter", "Line crossings by rule, direction and label (label all: "
                   "created at 0 for each line).")
        m.describe("zone_occupancy", "gauge", "Objects inside each zone now, by label (label all: every class).")
        m.describe("tracks_active", "gauge", "Confirmed tracks on the last frame.")
        m.describe("events_total", "counter", "Analytics events by type.")
        m.set("tracks_active", 0)
        for kind in ("object_entered", "object_left", "line_crossed", "loitering"):
            m.inc("events_total", 0, type=kind)


def _object_id(text):
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


class SnapshotWriter(QueuedSink):
    """Each event's annotated frame and object crop as JPEG (``<id>.jpg``, ``<id>-crop.jpg``) in
    ``directory``, written atomically by one thread behind a bounded queue (a full queue drops and
    counts, never blocks); the folder is kept within ``max_mb`` and ``max_age_s`` (oldest first).
    A write error is counted and said once; inference never waits for it."""

    name = "snapshots"
    wants_frames = True

    def __init__(self, directory, labels=None, max_mb=500.0, max_age_s=7 * 86400.0, queue_size=16,
                 jpeg_quality=85, metrics=None, log=warn):
        super(SnapshotWriter, self).__init__(maxsize=queue_size, metrics=metrics)
        self.directory = os.path.abspath(directory)
        if not os.path.isdir(self.directory):
            raise ConfigError("outputs.snapshots.dir: %s is not a folder" % self.directory, hint="create it first")
        if not os.access(self.directory, os.W_OK):
            raise ConfigError("outputs.snapshots.dir: %s is not writable" % self.directory,
                              hint="fix its permissions (with systemd: ReadWritePaths=)")
        self.labels = labels
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.max_age_s = float(max_age_s)
        self.jpeg_quality = int(jpeg_quality)
        self.log = log
        self._files = collections.deque()       # (mtime, path, bytes), oldest first
        self._bytes = 0
        self._lock = threading.Lock()
        self.written = self.deleted = 0
        self._said = False
        self._next_upkeep = 0.0
        if metrics is not None:
            metrics.describe("snapshots_written_total", "counter", "Event snapshots written (frame + crop).")
            metrics.describe("snapshots_dropped_total", "counter", "Events without a snapshot: the queue was full.")
            metrics.describe("snapshot_errors_total", "counter", "Snapshots that could not be written.")
            for name in ("snapshots_written_total", "snapshots_dropped_total", "snapshot_errors_total"):
                metrics.inc(name, 0)
        self._scan()

    def _scan(self):
        found = []
        for name in os.listdir(self.directory):
            if name.endswith(".jpg"):
                path = os.path.join(self.directory, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                found.append((st.st_mtime, path, st.st_size))
        found.sort()
        self._files.extend(found)
        self._bytes = sum(f[2] for f in found)

    def submit(self, event, image, result=None, geometry=None):
        """Queue the event's snapshot (``geometry``: [(kind, pixel points)] of the rules, drawn on it);
        returns its file name (the event's ``snapshot``), or None when dropped."""
        name = _file_id(event["id"])
        if not super(SnapshotWriter, self).submit((name, event, result, geometry), image):
            if self.metrics is not None:
                self.metrics.inc("snapshots_dropped_total")
            return None
        return name + ".jpg"

    def path_of(self, event_id, kind):
        path = os.path.join(self.directory, _file_id(event_id) + ("-crop.jpg" if kind == "crop" else ".jpg"))
        return path if os.path.isfile(path) else None

    def handle(self, item, image):
        try:
            self._write(item[0], item[1], image, item[2], item[3])
        except Exception as exc:          # a full disk, a bad folder: degrade, say it once (counted by the base)
            if self.metrics is not None:
                self.metrics.inc("snapshot_errors_total")
            if not self._said:
                self._said = True
                self.log("snapshots: cannot write into %s (%s: %s); events go on without them (counted in "
                         "edgekit_snapshot_errors_total)" % (self.directory, type(exc).__name__, exc))
            raise

    def on_idle(self):
        now = time.time()
        if now >= self._next_upkeep:
            self._next_upkeep = now + 1.0
            self._retain(now)

    def _write(self, name, event, image, result, geometry=None):
        import cv2

        from edgekit.fsutil import atomic_write_bytes
        from edgekit.vision.draw import annotate, encode_jpeg

        frame = annotate(image, result, labels=self.labels, caption="%s %s" % (event["type"], event["rule"]))
        for kind, points in geometry or ():     # lines yellow, zones blue (BGR), as on the status page
            pts = np.array([[int(round(x)), int(round(y))] for x, y in points], np.int32)
            cv2.polylines(frame, [pts], kind == "zone", (61, 211, 255) if kind == "line" else (255, 166, 88), 2)
        x1, y1, x2, y2 = [int(round(v)) for v in event["box"]]
        cv2.rectangle(frame, (x1, y1), (x2, y2), (255, 255, 255), 3)
        h, w = image.shape[:2]
        mx, my = max(4, (x2 - x1) // 8), max(4, (y2 - y1) // 8)
        crop = image[max(0, y1 - my):min(h, y2 + my), max(0, x1 - mx):min(w, x2 + mx)]
        now = time.time()
        for suffix, picture in (("-crop.jpg", crop), (".jpg", frame)):
            if picture.size == 0:
                continue
            data = encode_jpeg(picture, self.jpeg_quality)
            path = os.path.join(self.directory, name + suffix)
            atomic_write_bytes(path, data)
            with self._lock:
                self._files.append((now, path, len(data)))
                self._bytes += len(data)
        self._retain(now)       # before counting it written: who waits for the count sees the folder trimmed
        self.written += 1
        if self.metrics is not None:
            self.metrics.inc("snapshots_written_total")

    def _retain(self, now):
        while self._files and (self._bytes > self.max_bytes or now - self._files[0][0] > self.max_age_s):
            with self._lock:
                _, path, size = self._files.popleft()
                self._bytes -= size
            try:
                os.unlink(path)
                self.deleted += 1
            except OSError:
                pass

    def stats(self):
        out = super(SnapshotWriter, self).stats()
        out.update({"written": self.written, "deleted": self.deleted, "bytes": self._bytes})
        return out


def _file_id(event_id):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", event_id).lstrip(".")
