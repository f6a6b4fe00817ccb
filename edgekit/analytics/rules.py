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

Both take the tracker's rows ``[x1, y1, x2, y2, track_id, score, class]`` per frame and call
``emit(kind, rule, track_id, label, cls, t, box, score, frame, direction=None, dwell_s=None)``.
"""

import numpy as np

from edgekit.analytics.config import ANCHORS


def anchors(boxes, anchor):
    fx, fy = ANCHORS[anchor]
    x = boxes[:, 0] + fx * (boxes[:, 2] - boxes[:, 0])
    y = boxes[:, 1] + fy * (boxes[:, 3] - boxes[:, 1])
    return x, y


def points_in_polygon(x, y, polygon):
    """Whether each point (x[i], y[i]) lies inside ``polygon`` (list of (x, y)), by ray casting."""
    poly = np.asarray(polygon, dtype=np.float64)
    x0, y0 = poly[:, 0][None, :], poly[:, 1][None, :]
    x1, y1 = np.roll(poly[:, 0], -1)[None, :], np.roll(poly[:, 1], -1)[None, :]
    px, py = np.asarray(x, dtype=np.float64)[:, None], np.asarray(y, dtype=np.float64)[:, None]
    straddles = (y0 > py) != (y1 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross_x = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
    hits = straddles & (px < cross_x)
    return (hits.sum(axis=1) % 2) == 1


def distance_to_polygon(x, y, polygon):
    """Distance of each point (x[i], y[i]) to the nearest edge of ``polygon``."""
    poly = np.asarray(polygon, dtype=np.float64)
    ax, ay = poly[:, 0][None, :], poly[:, 1][None, :]
    ex, ey = np.roll(poly[:, 0], -1)[None, :] - ax, np.roll(poly[:, 1], -1)[None, :] - ay
    px, py = np.asarray(x, dtype=np.float64)[:, None], np.asarray(y, dtype=np.float64)[:, None]
    u = np.clip(((px - ax) * ex + (py - ay) * ey) / np.maximum(ex * ex + ey * ey, 1e-12), 0.0, 1.0)
    return np.hypot(px - ax - u * ex, py - ay - u * ey).min(axis=1)


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

    def _selected(self, tracks, label_of):
        """The rows this rule looks at on this frame (class filter, min score), or None."""
        if self.points is None or not len(tracks):
            return None
        rule = self.rule
        if rule.classes is None and rule.min_score <= 0:
            return tracks                       # every track (scores are never negative)
        keep = [i for i, (score, cls) in enumerate(tracks[:, 5:7].tolist())
                if score >= rule.min_score and rule.accepts(label_of(int(cls)), int(cls))]
        return tracks[keep] if keep else None


class LineCounter(_RuleRunner):
    """Counts per direction and label: ``counts["in"][label]``, ``counts["out"][label]``."""

    def __init__(self, rule):
        super(LineCounter, self).__init__(rule)
        self.counts = {"in": {}, "out": {}}
        self.in_sign = 1 if rule.in_side == "right" else -1

    def update(self, tracks, label_of, t, frame, emit):
        sub = self._selected(tracks, label_of)
        if sub is None:
            return
        (ax, ay), (bx, by) = self.points
        dx, dy = bx - ax, by - ay
        length = np.hypot(dx, dy)
        px, py = anchors(sub, self.rule.anchor)
        dist = (dx * (py - ay) - dy * (px - ax)) / length            # > 0: right of A -> B in the image
        margin = self.rule.margin * (sub[:, 3] - sub[:, 1])
        side = np.where(dist > margin, 1, np.where(dist < -margin, -1, 0))
        need = self.rule.min_frames
        for k, (tid, s_now, x, y, d) in enumerate(zip(sub[:, 4].astype(np.int64).tolist(), side.tolist(),
                                                     px.tolist(), py.tolist(), dist.tolist())):
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
            row = sub[k]
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

    def update(self, tracks, label_of, t, frame, emit):
        sub = self._selected(tracks, label_of)
        if sub is None:
            return
        px, py = anchors(sub, self.rule.anchor)
        inside = points_in_polygon(px, py, self.points)
        # within margin x the box height of an edge the state does not change (hysteresis)
        clear = distance_to_polygon(px, py, self.points) > self.rule.margin * (sub[:, 3] - sub[:, 1])
        need = self.rule.min_frames
        loiter = self.rule.loiter_s
        for k, (tid, now, sure) in enumerate(zip(sub[:, 4].astype(np.int64).tolist(), inside.tolist(),
                                                 clear.tolist())):
            st = self.states.get(tid)
            row = sub[k]
            if st is None:
                # [inside, frames the other way, time the change began, t entered, loitered, label, cls, box, score, t]
                st = self.states[tid] = [False, 0, t, None, False, None, None, None, None, t]
            st[7], st[8], st[9] = row[:4].copy(), float(row[5]), t
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
        emit("object_left", self.rule, tid, label, st[6], t_event, st[7], st[8], frame, dwell_s=t_left - st[3])

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
