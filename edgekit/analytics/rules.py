"""Lines and zones: turning tracks into counts and events.

A ``LineCounter`` counts tracks whose anchor point (bottom-centre by default) moves from one side of
a segment to the other, through the segment itself (not beside it), and then stays on the new side
for ``min_frames`` frames. Either side of the line lies a dead band of ``margin`` x the box height
where the side does not change, so a box standing and jittering on the line counts nothing. A track
counts at most once per direction.

A ``ZoneWatcher`` tells when a track's anchor enters a polygon (inside for ``min_frames`` frames)
and leaves it (outside for ``min_frames`` frames, or the track ends), with the same dead band of
``margin`` x the box height along the polygon's edges, keeps the occupancy per label
and each track's dwell time, and fires ``loitering`` once per track after ``loiter_s`` inside.

Both take the tracker's rows ``[x1, y1, x2, y2, track_id, score, class]`` per frame, as a ``FrameView`` that
computes the anchors once for every rule, and call
``emit(kind, rule, track_id, label, cls, t, box, score, frame, direction=None, dwell_s=None)``.
"""

import numpy as np

from edgekit.analytics.config import ANCHORS


def anchors(boxes, anchor):
    fx, fy = ANCHORS[anchor]
    x = boxes[:, 0] + fx * (boxes[:, 2] - boxes[:, 0])
    y = boxes[:, 1] + fy * (boxes[:, 3] - boxes[:, 1])
    return x, y


class Polygon(object):
    """A polygon's edges as arrays (1 x E), made once per frame size: the rules test every anchor
    against every edge in a few array operations per frame."""

    def __init__(self, points):
        poly = np.asarray(points, dtype=np.float64)
        self.x0, self.y0 = poly[:, 0][None, :], poly[:, 1][None, :]
        self.x1, self.y1 = np.roll(poly[:, 0], -1)[None, :], np.roll(poly[:, 1], -1)[None, :]
        self.dx, self.dy = self.x1 - self.x0, self.y1 - self.y0
        self.len2 = np.maximum(self.dx * self.dx + self.dy * self.dy, 1e-12)

    def contains(self, x, y):
        """Whether each point (x[i], y[i]) lies inside, by ray casting."""
        return self.inside_and_distance(x, y, distance=False)[0]

    def distance(self, x, y):
        """Distance of each point (x[i], y[i]) to the nearest edge."""
        return self.inside_and_distance(x, y)[1]

    def inside_and_distance(self, x, y, distance=True):
        """(inside, distance to the nearest edge) of each point, sharing the work."""
        px, py = np.asarray(x, dtype=np.float64)[:, None], np.asarray(y, dtype=np.float64)[:, None]
        ry = py - self.y0
        straddles = (self.y0 > py) != (self.y1 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            cross_x = self.x0 + ry * self.dx / self.dy
        inside = np.logical_xor.reduce(straddles & (px < cross_x), axis=1)      # an odd number of hits
        if not distance:
            return inside, None
        rx = px - self.x0
        u = np.minimum(np.maximum((rx * self.dx + ry * self.dy) / self.len2, 0.0), 1.0)
        return inside, np.hypot(rx - u * self.dx, ry - u * self.dy).min(axis=1)


def points_in_polygon(x, y, polygon):
    """Whether each point (x[i], y[i]) lies inside ``polygon`` (list of (x, y)), by ray casting."""
    return Polygon(polygon).contains(x, y)


def distance_to_polygon(x, y, polygon):
    """Distance of each point (x[i], y[i]) to the nearest edge of ``polygon``."""
    return Polygon(polygon).distance(x, y)


class FrameView(object):
    """One frame's tracker rows ``[x1, y1, x2, y2, track_id, score, class]`` with what every rule
    needs from them computed once: the anchor points (per anchor kind), box heights, ids, rows as
    Python lists."""

    def __init__(self, tracks):
        self.tracks = tracks
        self._anchors = {}
        self._ids = self._rows = self._height = None

    def __len__(self):
        return len(self.tracks)

    def anchor(self, kind):
        xy = self._anchors.get(kind)
        if xy is None:
            xy = self._anchors[kind] = anchors(self.tracks, kind)
        return xy

    @property
    def height(self):
        if self._height is None:
            self._height = self.tracks[:, 3] - self.tracks[:, 1]
        return self._height

    @property
    def ids(self):
        if self._ids is None:
            self._ids = self.tracks[:, 4].astype(np.int64).tolist()
        return self._ids

    @property
    def rows(self):
        if self._rows is None:
            self._rows = self.tracks.tolist()
        return self._rows


class _RuleRunner(object):
    def __init__(self, rule):
        self.rule = rule
        self.points = None
        self.states = {}               # track id -> per-track state (a list)

    def set_frame_size(self, frame_size):
        """Pixel geometry for frames of ``frame_size`` (None: unknown; rules in 0..1 wait for it)."""
        if frame_size is None:
            self.points = None if self.rule.normalized else [tuple(p) for p in self.rule.points]
        else:
            self.points = self.rule.resolve(frame_size)
        self._geometry()

    def _geometry(self):
        pass

    def _selected(self, view, label_of):
        """What this rule looks at on this frame (class filter, min score): (anchor x, y, box heights,
        ids, rows as lists), or None."""
        if self.points is None or not len(view):
            return None
        rule = self.rule
        px, py = view.anchor(rule.anchor)
        if rule.classes is None and rule.min_score <= 0:        # every track (scores are never negative)
            return px, py, view.height, view.ids, view.rows
        rows = view.rows
        keep = [i for i, row in enumerate(rows)
                if row[5] >= rule.min_score and rule.accepts(label_of(int(row[6])), int(row[6]))]
        if not keep:
            return None
        ids = view.ids
        return px[keep], py[keep], view.height[keep], [ids[i] for i in keep], [rows[i] for i in keep]


class LineCounter(_RuleRunner):
    """Counts per direction and label: ``counts["in"][label]``, ``counts["out"][label]``."""

    def __init__(self, rule):
        super(LineCounter, self).__init__(rule)
        self.counts = {"in": {}, "out": {}}
        self.in_sign = 1 if rule.in_side == "right" else -1

    def _geometry(self):
        if self.points is not None:
            (ax, ay), (bx, by) = self.points
            dx, dy = bx - ax, by - ay
            self._line = (ax, ay, dx, dy, np.hypot(dx, dy))

    def update(self, view, label_of, t, frame, emit):
        sub = self._selected(view, label_of)
        if sub is None:
            return
        px, py, height, ids, rows = sub
        ax, ay, dx, dy, length = self._line
        dist = (dx * (py - ay) - dy * (px - ax)) / length            # > 0: right of A -> B in the image
        margin = self.rule.margin * height
        side = np.where(dist > margin, 1, np.where(dist < -margin, -1, 0))
        need = self.rule.min_frames
        for k, (tid, s_now, x, y, d) in enumerate(zip(ids, side.tolist(), px.tolist(), py.tolist(), dist.tolist())):
            st = self.states.get(tid)
            if st is None:
                # [side, frames on the other side, last x, y and distance on the side, crossed within, counted]
                st = self.states[tid] = [0, 0, x, y, d, False, set()]
            if s_now == 0:
                st[1] = 0
                continue
            if st[0] == 0 or s_now == st[0]:
                st[0], st[1], st[2], st[3], st[4] = s_now, 0, x, y, d
                continue
            if st[1] == 0:
                # where the anchor's path from its last place on the old side crosses the line
                alpha = st[4] / (st[4] - d)
                cx, cy = st[2] + alpha * (x - st[2]), st[3] + alpha * (y - st[3])
                u = (dx * (cx - ax) + dy * (cy - ay)) / (length * length)
                st[5] = 0.0 <= u <= 1.0
            st[1] += 1
            if st[1] < need:
                continue
            st[0], st[1], st[2], st[3], st[4] = s_now, 0, x, y, d
            if not st[5]:
                continue
            direction = "in" if s_now == self.in_sign else "out"
            if direction in st[6]:
                continue
            st[6].add(direction)
            row = rows[k]
            label = label_of(int(row[6]))
            self.counts[direction][label] = self.counts[direction].get(label, 0) + 1
            emit("line_crossed", self.rule, tid, label, int(row[6]), t, row[:4], row[5], frame, direction=direction)

    def remove(self, ids, t, emit):
        for tid in ids:
            self.states.pop(tid, None)

    def reset_tracks(self):
        self.states = {}

    def shift_time(self, step):
        pass

    def state(self):
        return {"type": "line", "in": dict(self.counts["in"]), "out": dict(self.counts["out"]),
                "in_total": sum(self.counts["in"].values()), "out_total": sum(self.counts["out"].values())}


class ZoneWatcher(_RuleRunner):
    """Live ``occupancy[label]``, ``entered[label]`` totals, dwell per track."""

    def __init__(self, rule):
        super(ZoneWatcher, self).__init__(rule)
        self.occupancy = {}
        self.entered = {}

    def _geometry(self):
        self._polygon = Polygon(self.points) if self.points is not None else None

    def update(self, view, label_of, t, frame, emit):
        sub = self._selected(view, label_of)
        if sub is None:
            return
        px, py, height, ids, rows = sub
        inside, distance = self._polygon.inside_and_distance(px, py)
        # within margin x the box height of an edge the state does not change (hysteresis)
        clear = distance > self.rule.margin * height
        need = self.rule.min_frames
        loiter = self.rule.loiter_s
        states = self.states
        for tid, now, sure, row in zip(ids, inside.tolist(), clear.tolist(), rows):
            st = states.get(tid)
            if st is None:
                # [inside, frames the other way, time the change began, t entered, loitered, label, cls, row, score, t]
                st = states[tid] = [False, 0, t, None, False, None, None, None, None, t]
            st[7], st[8], st[9] = row, row[5], t
            if not sure:
                st[1] = 0
            elif now != st[0]:
                if st[1] == 0:
                    st[2] = t
                st[1] += 1
                if st[1] >= need:
                    st[0], st[1] = now, 0
                    if now:
                        label, cls = label_of(int(row[6])), int(row[6])
                        st[3], st[4], st[5], st[6] = st[2], False, label, cls
                        self.occupancy[label] = self.occupancy.get(label, 0) + 1
                        self.entered[label] = self.entered.get(label, 0) + 1
                        emit("object_entered", self.rule, tid, label, cls, t, row[:4], row[5], frame)
                    else:
                        self._leave(tid, st, st[2], frame, emit, t)
            else:
                st[1] = 0
            if st[0] and loiter is not None and not st[4] and t - st[3] >= loiter:
                st[4] = True
                emit("loitering", self.rule, tid, st[5], st[6], t, row[:4], row[5], frame, dwell_s=t - st[3])

    def _leave(self, tid, st, t_left, frame, emit, t_event):
        label = st[5]
        self.occupancy[label] = self.occupancy.get(label, 1) - 1
        if self.occupancy[label] <= 0:
            del self.occupancy[label]
        emit("object_left", self.rule, tid, label, st[6], t_event, st[7][:4], st[8], frame, dwell_s=t_left - st[3])

    def remove(self, ids, t, emit):
        """Tracks the tracker deleted: those inside leave (at the time they were last seen)."""
        for tid in ids:
            st = self.states.pop(tid, None)
            if st is not None and st[0]:
                self._leave(tid, st, st[9], None, emit, st[9])

    def reset_tracks(self):
        self.states = {}
        self.occupancy = {}

    def shift_time(self, step):
        """The clock stepped back by ``step`` seconds: move the stored times with it."""
        for st in self.states.values():
            st[2] -= step
            st[9] -= step
            if st[3] is not None:
                st[3] -= step

    def dwell(self, t):
        return dict((tid, round(t - st[3], 3)) for tid, st in self.states.items() if st[0])

    def state(self, t=None):
        occupancy = dict(self.occupancy)
        out = {"type": "zone", "occupancy": occupancy, "occupied": sum(occupancy.values()),
               "entered": dict(self.entered), "entered_total": sum(self.entered.values())}
        if t is not None:
            out["dwell_s"] = dict((str(k), v) for k, v in self.dwell(t).items())
        return out
