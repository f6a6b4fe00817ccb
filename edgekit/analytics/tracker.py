"""Multi-object trackers behind one protocol: ``tracks = tracker.update(dets, t)``.

``dets`` is a float array N x 6 ``[x1, y1, x2, y2, score, class]`` in pixels, ``t`` the frame time in
seconds (any origin, increasing). The result is an array M x 7 ``[x1, y1, x2, y2, track_id, score,
class]``: the confirmed tracks that were matched on this frame, boxes as the filter estimates them.
Track ids are positive integers handed out at confirmation and never reused within a run.

``make_tracker("bytetrack", **params)`` -- ByteTrack (Zhang et al. 2022): a Kalman filter per track on
(centre, aspect, height); the high-score detections are matched first against every confirmed track
(those being tracked and those lost recently), then the low-score ones against the tracked tracks
still unmatched, then the remaining high-score ones against the tentative tracks; tracks are born
only from unmatched detections scoring at least ``new_track_thresh``; a track missed for longer than
the lost buffer is deleted. Velocities and the buffer are in seconds, so the frame rate does not change
what the tracker does.

``make_tracker("iou", **params)`` -- the cheap alternative: each track is matched to the detection it
overlaps most (optimal assignment on IoU), no motion model.
"""

import numpy as np

from edgekit.analytics import kalman
from edgekit.analytics.assign import linear_assignment
from edgekit.errors import ConfigError

TENTATIVE, TRACKED, LOST = 0, 1, 2


def iou_matrix(a, b):
    """IoU of every box in ``a`` (N x 4 xyxy) with every box in ``b`` (M x 4): N x M."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(ix2 - ix1, 0.0) * np.maximum(iy2 - iy1, 0.0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def buffered_iou_matrix(a, b, margins):
    """IoU after widening both boxes of each pair by the row's margins (T x 2: x, y pixels) on every
    side (the buffered IoU of C-BIoU): a track whose position is uncertain reaches further."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    mx, my = margins[:, 0:1], margins[:, 1:2]
    iw = np.maximum(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 2 * mx, 0.0)
    ih = np.maximum(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 2 * my, 0.0)
    inter = iw * ih
    area_a = (a[:, 2:3] - a[:, 0:1] + 2 * mx) * (a[:, 3:4] - a[:, 1:2] + 2 * my)
    area_b = (b[None, :, 2] - b[None, :, 0] + 2 * mx) * (b[None, :, 3] - b[None, :, 1] + 2 * my)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def check_dets(dets):
    """``dets`` as a float64 N x 6 array; a clear error for anything else."""
    arr = np.asarray(dets, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 6))
    if arr.ndim != 2 or arr.shape[1] != 6:
        raise ValueError("dets must be N x 6 [x1, y1, x2, y2, score, class], got shape %s" % (arr.shape,))
    return arr


def _params(kind, defaults, given):
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError("unknown %s tracker parameter %r" % (kind, unknown[0]),
                          hint="known: %s" % ", ".join(sorted(defaults)))
    params = dict(defaults)
    params.update(given)
    for name, value in params.items():
        if name in ("class_agnostic", "fuse_score"):
            if not isinstance(value, bool):
                raise ConfigError("tracker parameter %s must be true or false, got %r" % (name, value))
        elif value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError("tracker parameter %s must be a number, got %r" % (name, value))
    if given.get("track_buffer") is not None and given.get("track_buffer_s") is not None:
        raise ConfigError("tracker parameters track_buffer and track_buffer_s are both set",
                          hint="give the lost buffer in frames (track_buffer, at frame_rate) or in seconds")
    if params["frame_rate"] <= 0:
        raise ConfigError("tracker parameter frame_rate must be > 0, got %r" % (params["frame_rate"],))
    if params.get("track_buffer_s") is None:
        params["track_buffer_s"] = float(params["track_buffer"]) / params["frame_rate"]
    if params["track_buffer_s"] < 0:
        raise ConfigError("tracker parameter track_buffer_s must be >= 0, got %r" % (params["track_buffer_s"],))
    for name in ("gate_sigma", "gate_cap", "coast_s"):
        if name in params and params[name] < 0:
            raise ConfigError("tracker parameter %s must be >= 0, got %r" % (name, params[name]))
    if int(params["min_hits"]) != params["min_hits"] or params["min_hits"] < 1:
        raise ConfigError("tracker parameter min_hits must be an integer >= 1, got %r" % (params["min_hits"],))
    for name, value in params.items():
        if name.endswith("_thresh") and not 0.0 <= value <= 1.0:
            raise ConfigError("tracker parameter %s must be within 0..1, got %r" % (name, value))
    return params


class _Tracker(object):
    """Track bookkeeping shared by the trackers; subclasses say how boxes are predicted and matched."""

    kind = None
    DEFAULTS = {}

    def __init__(self, first_id=1, **params):
        self.params = _params(self.kind, self.DEFAULTS, params)
        self.buffer_s = float(self.params["track_buffer_s"])
        self.min_hits = int(self.params["min_hits"])
        self.class_agnostic = bool(self.params["class_agnostic"])
        self.coast_s = float(self.params["coast_s"])
        self.next_id = int(first_id)
        self.frames = 0
        self.t = None
        self.removed_ids = []          # confirmed ids deleted by the last update
        self.matched = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        self._empty()

    def _empty(self):
        self.state = np.zeros((0, 8))                 # kalman mean (bytetrack) or box + 0 (iou)
        self.cov = np.zeros((0, 3, 4))                # kalman covariance blocks (bytetrack)
        self.ids = np.zeros(0, dtype=np.int64)        # 0 until confirmed
        self.status = np.zeros(0, dtype=np.int64)
        self.hits = np.zeros(0, dtype=np.int64)
        self.last_seen = np.zeros(0)
        self.first_seen = np.zeros(0)
        self.score = np.zeros(0)
        self.cls = np.zeros(0, dtype=np.int64)
        self.votes = []                               # per track {class: summed score}

    # -- the protocol ---------------------------------------------------------------------
    def update(self, dets, t):
        dets = check_dets(dets)
        t = float(t)
        if self.t is not None and t < self.t:
            # the clock stepped back (a wall clock set by NTP): carry on as if no time had passed
            step = self.t - t
            self.last_seen -= step
            self.first_seen -= step
            self.t = t
        dt = 0.0 if self.t is None else t - self.t
        first = self.t is None
        self.t = t
        self.frames += 1
        self._predict(dt)
        iou = self._similarity(dets)
        if not self.class_agnostic and iou.size:
            iou[self.cls[:, None] != dets[None, :, 5].astype(np.int64)] = -1.0
        rows, det_idx, may_birth = self._associate(iou, dets)
        self._apply(rows, dets[det_idx], t)
        self.matched = (self.ids[rows].copy(), det_idx)      # (track id or 0, detection index) pairs
        may_birth[det_idx] = False
        seen = np.zeros(len(self.ids), dtype=bool)
        seen[rows] = True
        self._lose_and_delete(seen, t)
        births = (may_birth & (dets[:, 4] >= self.params["new_track_thresh"])).nonzero()[0]
        if births.size:
            self._birth(dets[births], t, confirm=first or self.min_hits <= 1)
        live = (self.ids > 0) & (self.last_seen == t)
        if self.coast_s > 0:
            live |= (self.ids > 0) & (self.status == LOST) & (t - self.last_seen <= self.coast_s + 1e-9)
        return self._rows(live.nonzero()[0])

    def reset(self):
        """Forget every track (ids still never reused)."""
        self._empty()
        self.t = None

    def active(self):
        """Confirmed tracks alive (tracked or lost), as dicts for status pages and metrics."""
        boxes = self._boxes()
        out = []
        for i in (self.ids > 0).nonzero()[0]:
            out.append({"track_id": int(self.ids[i]), "box": [round(float(v), 1) for v in boxes[i]],
                        "score": round(float(self.score[i]), 4), "class": int(self.cls[i]),
                        "lost": bool(self.status[i] == LOST), "age_s": round(float(self.t - self.first_seen[i]), 3),
                        "last_seen": float(self.last_seen[i])})
        return out

    # -- shared parts ---------------------------------------------------------------------
    def _rows(self, idx):
        if idx.size == 0:
            return np.zeros((0, 7))
        out = np.empty((idx.size, 7))
        out[:, :4] = self._boxes()[idx]
        out[:, 4] = self.ids[idx]
        out[:, 5] = self.score[idx]
        out[:, 6] = self.cls[idx]
        return out

    def _similarity(self, dets):
        return iou_matrix(self._boxes(), dets[:, :4])

    def _match(self, iou, dets, rows, det_idx, thresh, fuse):
        """Match track indices ``rows`` with detections ``det_idx`` on cost 1 - IoU (x score with
        ``fuse``) <= ``thresh``; returns (rows matched, det indices matched, rows left, dets left)."""
        if len(rows) == 0 or len(det_idx) == 0:
            return rows[:0], det_idx[:0], rows, det_idx
        sim = iou[rows][:, det_idx]
        if fuse:
            sim = sim * dets[det_idx, 4][None, :]
        m, un_r, un_c = linear_assignment(1.0 - sim, thresh)
        return rows[m[:, 0]], det_idx[m[:, 1]], rows[un_r], det_idx[un_c]

    def _apply(self, rows, dets, t):
        """Matched tracks take their detections."""
        if len(rows) == 0:
            return
        self._correct(rows, dets)
        self.status[rows] = TRACKED
        self.hits[rows] += 1
        self.last_seen[rows] = t
        self.score[rows] = dets[:, 4]
        if self.class_agnostic:
            cls = self.cls
            for r, score, c in zip(rows.tolist(), dets[:, 4].tolist(), dets[:, 5].astype(np.int64).tolist()):
                votes = self.votes[r]
                votes[c] = votes.get(c, 0.0) + score
                if c != cls[r] and votes[c] > votes.get(int(cls[r]), 0.0):
                    cls[r] = c
        fresh = rows[(self.ids[rows] == 0) & (self.hits[rows] >= self.min_hits)]
        if fresh.size:
            self.ids[fresh] = np.arange(self.next_id, self.next_id + fresh.size)
            self.next_id += fresh.size

    def _lose_and_delete(self, seen, t):
        unseen = ~seen
        confirmed = self.ids > 0
        self.status[unseen & confirmed] = LOST
        # a tentative track must match every frame; a lost one waits for the buffer
        gone = unseen & (~confirmed | (t - self.last_seen > self.buffer_s + 1e-9))
        if gone.any():
            self.removed_ids = self.ids[gone & confirmed].tolist()
            self._select(~gone)
        else:
            self.removed_ids = []

    def _select(self, keep):
        for name in ("state", "cov", "ids", "status", "hits", "last_seen", "first_seen", "score", "cls"):
            setattr(self, name, getattr(self, name)[keep])
        self.votes = [v for v, k in zip(self.votes, keep.tolist()) if k]

    def _birth(self, dets, t, confirm):
        k = dets.shape[0]
        if k == 0:
            return
        state, cov = self._initiate(dets[:, :4])
        ids = np.zeros(k, dtype=np.int64)
        if confirm:
            ids = np.arange(self.next_id, self.next_id + k, dtype=np.int64)
            self.next_id += k
        self.state = np.concatenate([self.state, state])
        self.cov = np.concatenate([self.cov, cov])
        self.ids = np.concatenate([self.ids, ids])
        self.status = np.concatenate([self.status, np.full(k, TRACKED if confirm else TENTATIVE, dtype=np.int64)])
        self.hits = np.concatenate([self.hits, np.ones(k, dtype=np.int64)])
        self.last_seen = np.concatenate([self.last_seen, np.full(k, t)])
        self.first_seen = np.concatenate([self.first_seen, np.full(k, t)])
        self.score = np.concatenate([self.score, dets[:, 4]])
        self.cls = np.concatenate([self.cls, dets[:, 5].astype(np.int64)])
        self.votes.extend({int(c): float(s)} for s, c in dets[:, 4:6].tolist())


class ByteTrack(_Tracker):
    """ByteTrack with a frame-rate independent Kalman filter. Parameters (defaults):

    - ``track_high_thresh`` (0.5): detections at or above it are matched first;
    - ``track_low_thresh`` (0.1): detections below it are dropped; between the two they only
      extend tracks (second stage);
    - ``new_track_thresh`` (0.6): the least score that starts a track;
    - ``match_thresh`` (0.8): the largest cost 1 - IoU (x score with ``fuse_score``) of a first-stage
      match; ``low_match_thresh`` (0.5) for the second stage, ``new_match_thresh`` (0.7) for
      tentative tracks;
    - ``track_buffer`` (30 frames at ``frame_rate`` 30) or ``track_buffer_s`` (seconds): how long a
      lost track waits to be found again;
    - ``min_hits`` (2): matches before a track is confirmed and gets an id (tracks of the first frame
      are confirmed at once, as in ByteTrack);
    - ``class_agnostic`` (true): match across classes (a track's class is the one its detections
      voted for most, by score); false keeps each class apart;
    - ``fuse_score`` (true): weigh IoU by the detection score in the first stage;
    - ``coast_s`` (0.2): a confirmed track missed for up to this long is still reported, at its
      predicted box;
    - ``gate_sigma`` (2.0), ``gate_cap`` (0.25): matching widens both boxes of a pair by
      ``gate_sigma`` standard deviations of the track's predicted centre (beyond a fresh
      measurement's), at most ``gate_cap`` x the box size per side -- the buffered IoU of C-BIoU,
      sized by the Kalman filter's uncertainty, which grows with the seconds since the track was
      seen. A new track (velocity unknown) at 5 frames/s reaches as far in pixels per second as one
      at 30. ``gate_sigma: 0`` is ByteTrack's plain IoU.
    """

    kind = "bytetrack"
    DEFAULTS = {"track_high_thresh": 0.5, "track_low_thresh": 0.1, "new_track_thresh": 0.6, "match_thresh": 0.8,
                "low_match_thresh": 0.5, "new_match_thresh": 0.7, "track_buffer": 30, "track_buffer_s": None,
                "frame_rate": 30.0, "min_hits": 2, "class_agnostic": True, "fuse_score": True, "coast_s": 0.2,
                "gate_sigma": 2.0, "gate_cap": 0.25}

    def __init__(self, first_id=1, **params):
        super(ByteTrack, self).__init__(first_id=first_id, **params)
        if self.params["track_low_thresh"] > self.params["track_high_thresh"]:
            raise ConfigError("tracker parameter track_low_thresh (%r) is above track_high_thresh (%r)" % (
                self.params["track_low_thresh"], self.params["track_high_thresh"]))

    def _boxes(self):
        return kalman.xyah_to_xyxy(self.state[:, :4])

    def _similarity(self, dets):
        k = self.params["gate_sigma"]
        if not k:
            return iou_matrix(self._boxes(), dets[:, :4])
        # the predicted centre's standard deviation beyond what a track just measured has
        extra = np.sqrt(np.maximum(self.cov[:, 0, :2] - (kalman.STD_POS * self.state[:, 3:4]) ** 2, 0.0))
        boxes = self._boxes()
        cap = self.params["gate_cap"] * (boxes[:, 2:4] - boxes[:, 0:2])
        return buffered_iou_matrix(boxes, dets[:, :4], np.minimum(k * extra, cap))

    def _initiate(self, boxes):
        return kalman.initiate(kalman.xyxy_to_xyah(boxes))

    def _predict(self, dt):
        self.state[self.status != TRACKED, 7] = 0.0
        kalman.predict(self.state, self.cov, dt)

    def _correct(self, rows, dets):
        self.state[rows], self.cov[rows] = kalman.update(self.state[rows], self.cov[rows],
                                                         kalman.xyxy_to_xyah(dets[:, :4]))

    def _associate(self, iou, dets):
        p = self.params
        scores = dets[:, 4]
        is_high = scores >= p["track_high_thresh"]
        high = is_high.nonzero()[0]
        low = (~is_high & (scores >= p["track_low_thresh"])).nonzero()[0]
        confirmed = (self.ids > 0).nonzero()[0]
        tentative = (self.ids == 0).nonzero()[0]
        r1, d1, left_rows, left_high = self._match(iou, dets, confirmed, high, p["match_thresh"], p["fuse_score"])
        tracked_left = left_rows[self.status[left_rows] == TRACKED]
        r2, d2, _, _ = self._match(iou, dets, tracked_left, low, p["low_match_thresh"], False)
        r3, d3, _, _ = self._match(iou, dets, tentative, left_high, p["new_match_thresh"], p["fuse_score"])
        return np.concatenate([r1, r2, r3]), np.concatenate([d1, d2, d3]), is_high  # births: high scores only


class IouTracker(_Tracker):
    """Matches each track's last box to this frame's detections by IoU (optimal assignment), no
    motion model. Parameters (defaults): ``iou_thresh`` (0.3, least IoU of a match), ``min_score``
    (0.3, detections below it are dropped), ``new_track_thresh`` (0.5), ``track_buffer`` (30 frames at
    ``frame_rate`` 30) or ``track_buffer_s``, ``min_hits`` (2), ``class_agnostic`` (true), ``coast_s`` (0)."""

    kind = "iou"
    DEFAULTS = {"iou_thresh": 0.3, "min_score": 0.3, "new_track_thresh": 0.5, "track_buffer": 30,
                "track_buffer_s": None, "frame_rate": 30.0, "min_hits": 2, "class_agnostic": True, "coast_s": 0.0}

    def _boxes(self):
        return self.state[:, :4]

    def _initiate(self, boxes):
        state = np.zeros((boxes.shape[0], 8))
        state[:, :4] = boxes
        return state, np.zeros((boxes.shape[0], 3, 4))

    def _predict(self, dt):
        pass

    def _correct(self, rows, dets):
        self.state[rows, :4] = dets[:, :4]

    def _associate(self, iou, dets):
        keep = dets[:, 4] >= self.params["min_score"]
        r, d, _, _ = self._match(iou, dets, np.arange(len(self.ids)), keep.nonzero()[0],
                                 1.0 - self.params["iou_thresh"], False)
        return r, d, keep


TRACKERS = {"bytetrack": ByteTrack, "iou": IouTracker}


def make_tracker(name="bytetrack", **params):
    """A tracker by name (``bytetrack`` or ``iou``) with its parameters; unknown names and
    parameters are a ConfigError naming them."""
    cls = TRACKERS.get(name)
    if cls is None:
        raise ConfigError("unknown tracker %r" % (name,), hint="use one of: %s" % ", ".join(sorted(TRACKERS)))
    return cls(**params)
