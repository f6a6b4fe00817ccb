"""One camera's analytics, frame by frame: tracker, lines, zones, events, counts.

::

    from edgekit.analytics.camera import CameraAnalytics
    from edgekit.analytics.config import validate_config

    config = validate_config(yaml_mapping, labels=meta.labels, key="cameras.door.analytics")
    analytics = CameraAnalytics(config, camera="door", labels=meta.labels)
    out = analytics.update(dets, t, frame_size=(width, height), frame=seq)
    out.tracks     # M x 7 [x1, y1, x2, y2, track_id, score, class], as the tracker returns
    out.events     # list of event dicts (edgekit.analytics.events; "snapshot" is None)
    analytics.state()               # counts, occupancy, live tracks: for HTTP and metrics
    analytics.reload(new_config)    # new rules; counts and track ids kept

It knows no camera, sink or runner: ``edgekit track`` runs it on recorded detections and the daemon
on live ones. Not thread-safe: one thread calls ``update``; take ``state()`` from the same thread
or under the caller's lock.
"""

import collections

import numpy as np

from edgekit.analytics.config import AnalyticsConfig, validate_config
from edgekit.analytics.events import make_event
from edgekit.analytics.rules import FrameView, LineCounter, ZoneWatcher
from edgekit.analytics.tracker import check_dets, make_tracker
from edgekit.errors import ConfigError


class FrameResult(object):
    """``tracks`` (M x 7), ``events`` (dicts) and ``det_track_ids``: for each detection given to
    ``update``, the id of the confirmed track it was matched to on this frame, or None."""

    __slots__ = ("tracks", "events", "det_track_ids")

    def __init__(self, tracks, events, det_track_ids=None):
        self.tracks = tracks
        self.events = events
        self.det_track_ids = det_track_ids

    def boxes(self, label_of):
        """The tracks as the daemon's detection dicts, with ``track_id``."""
        return [{"track_id": int(r[4]), "index": int(r[6]), "label": label_of(int(r[6])), "score": round(float(r[5]), 4),
                 "box": [round(float(v), 2) for v in r[:4]]} for r in self.tracks]


def _runner(rule):
    return LineCounter(rule) if rule.kind == "line" else ZoneWatcher(rule)


class CameraAnalytics(object):
    """``config``: an ``AnalyticsConfig`` (or a raw mapping, validated here); ``labels``: the model's
    class names (a class index without one is labelled by its number); ``trail_s``: how much of each
    track's anchor path ``state()`` keeps for drawing."""

    def __init__(self, config=None, camera="camera", labels=None, trail_s=2.0):
        if not isinstance(config, AnalyticsConfig):
            config = validate_config(config, labels=labels)
        self.camera = camera
        self.labels = list(labels) if labels is not None else None
        self.trail_s = float(trail_s)
        self.config = config
        self.tracker = make_tracker(config.tracker, **config.tracker_params)
        self.runners = [_runner(r) for r in config.rules]
        self.frame_size = None
        self.t = None
        self.frames = 0
        self.events_total = 0
        self._seq = 0
        self._trails = {}
        self._labels_cache = {}
        for r in self.runners:
            r.set_frame_size(None)

    def label_of(self, cls):
        label = self._labels_cache.get(cls)
        if label is None:
            label = self.labels[cls] if self.labels is not None and 0 <= cls < len(self.labels) else str(cls)
            self._labels_cache[cls] = label
        return label

    def update(self, dets, t, frame_size=None, frame=None):
        """Track this frame's detections (N x 6 pixels) at time ``t`` (seconds) on a frame of
        ``frame_size`` (width, height); returns a ``FrameResult``."""
        dets = check_dets(dets)
        if frame_size is not None:
            frame_size = (int(frame_size[0]), int(frame_size[1]))
            if frame_size != self.frame_size:
                for r in self.runners:
                    r.set_frame_size(frame_size)
                self.frame_size = frame_size
        elif self.frame_size is None and any(r.rule.normalized for r in self.runners):
            raise ConfigError("rule %s uses 0..1 coordinates but the frame size is not known" % next(
                r.rule.key for r in self.runners if r.rule.normalized), hint="give the frame size (width, height)")
        if self.t is not None and t < self.t:          # the clock stepped back: dwell times move with it
            for r in self.runners:
                r.shift_time(self.t - t)
            self._trails = {}
        tracks = self.tracker.update(dets, t)
        det_ids = [None] * len(dets)
        for tid, i in zip(*(a.tolist() for a in self.tracker.matched)):
            if tid > 0:
                det_ids[i] = tid
        self.t = float(t)
        self.frames += 1
        events = []

        def emit(kind, rule, tid, label, cls, when, box, score, frm, direction=None, dwell_s=None):
            self._seq += 1
            events.append(make_event(kind, self.camera, rule.name, rule.kind, tid, label, cls, when, box, score,
                                     self._seq, frame=frm, direction=direction, dwell_s=dwell_s))

        view = FrameView(tracks)
        for r in self.runners:
            r.update(view, self.label_of, self.t, frame, emit)
        removed = self.tracker.removed_ids
        if removed:
            for r in self.runners:
                r.remove(removed, self.t, emit)
            for tid in removed:
                self._trails.pop(tid, None)
        if self.trail_s > 0 and len(tracks):
            self._trail(tracks)
        self.events_total += len(events)
        return FrameResult(tracks, events, det_ids)

    def _trail(self, tracks):
        """Each track's last 64 anchor points; ``state()`` keeps those within ``trail_s`` of the last
        one and rounds them (done there, not on every frame)."""
        t = self.t
        trails = self._trails
        for tid, x, y in zip(tracks[:, 4].astype(np.int64).tolist(), ((tracks[:, 0] + tracks[:, 2]) / 2).tolist(),
                             tracks[:, 3].tolist()):
            trail = trails.get(tid)
            if trail is None:
                trail = trails[tid] = collections.deque(maxlen=64)
            trail.append((t, x, y))

    def _trail_points(self, tid):
        trail = self._trails.get(tid)
        if not trail:
            return []
        last = trail[-1][0]
        return [[round(x, 1), round(y, 1)] for when, x, y in trail if not last - when > self.trail_s]

    def counts(self):
        """{rule name: its counts}: lines ``in``/``out`` per label and totals, zones occupancy per label."""
        return dict((r.rule.name, r.state()) for r in self.runners)

    def state(self):
        """Everything the HTTP API and the metrics show, as JSON-ready data."""
        tracks = []
        for tr in self.tracker.active():
            tr["label"] = self.label_of(tr["class"])
            tr["trail"] = self._trail_points(tr["track_id"])
            tracks.append(tr)
        rules = {}
        for r in self.runners:
            rules[r.rule.name] = r.state(self.t) if r.rule.kind == "zone" else r.state()
            rules[r.rule.name]["points"] = [list(p) for p in r.points] if r.points else None
        return {"camera": self.camera, "time": self.t, "frames": self.frames, "tracker": self.config.tracker,
                "tracks_active": sum(1 for tr in tracks if not tr["lost"]), "tracks": tracks, "rules": rules,
                "events_total": self.events_total, "next_track_id": self.tracker.next_id}

    def reload(self, config):
        """Swap in new rules (an ``AnalyticsConfig`` or a raw mapping). A rule keeps its counts when
        a rule of the same name and kind stays; it keeps its per-track state (who is in a zone, which
        side of a line) when its geometry and filters are unchanged too. The tracker and its ids stay
        when the tracker settings are the same; otherwise a new tracker starts at the next unused id
        (live tracks then begin again)."""
        if not isinstance(config, AnalyticsConfig):
            config = validate_config(config, labels=self.labels)
        old = dict((r.rule.name, r) for r in self.runners)
        runners = []
        for rule in config.rules:
            runner = _runner(rule)
            runner.set_frame_size(self.frame_size)
            prev = old.get(rule.name)
            if prev is not None and prev.rule.kind == rule.kind:
                if rule.kind == "line":
                    runner.counts = prev.counts
                else:
                    runner.entered = prev.entered
                if prev.rule.geometry() == rule.geometry():
                    runner.states = prev.states
                    if rule.kind == "zone":
                        runner.occupancy = prev.occupancy
            runners.append(runner)
        if (config.tracker, config.tracker_params) != (self.config.tracker, self.config.tracker_params):
            self.tracker = make_tracker(config.tracker, first_id=self.tracker.next_id, **config.tracker_params)
            self._trails = {}
            for r in runners:
                r.reset_tracks()
        self.runners = runners
        self.config = config
