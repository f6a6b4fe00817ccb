"""The trackers' contract: shapes, ids, births, the lost buffer in seconds, frame-rate independence."""

import numpy as np
import pytest

from edgekit.analytics import kalman, make_tracker
from edgekit.analytics.assign import linear_assignment
from edgekit.analytics.synth import make_scene, sample
from edgekit.analytics.tracker import iou_matrix
from edgekit.errors import ConfigError


def det(x, y, w=30.0, h=70.0, score=0.9, cls=0):
    return [x, y, x + w, y + h, score, cls]


def run(tracker, frames):
    return [tracker.update(np.array(f, dtype=float).reshape(-1, 6), t) for t, f in frames]


# -- the filter --------------------------------------------------------------------------------
def full_filter_reference(z_seq, dts):
    """ByteTrack's 8x8 Kalman filter written out with matrices, velocities per second."""
    std_pos, std_vel = kalman.STD_POS, kalman.STD_VEL
    z0 = z_seq[0]
    h = z0[3]
    mean = np.r_[z0, np.zeros(4)]
    std = [2 * std_pos * h, 2 * std_pos * h, 1e-2, 2 * std_pos * h,
           10 * std_vel * h, 10 * std_vel * h, 1e-5 * 30, 10 * std_vel * h]
    cov = np.diag(np.square(std))
    out = []
    for z, dt in zip(z_seq[1:], dts):
        f = np.eye(8)
        f[:4, 4:] = dt * np.eye(4)
        h = mean[3]
        q = np.diag(np.square([std_pos * h, std_pos * h, 1e-2, std_pos * h,
                               std_vel * h, std_vel * h, 1e-5 * 30, std_vel * h]) * dt * 30)
        mean = f @ mean
        cov = f @ cov @ f.T + q
        hm = np.eye(4, 8)
        r = np.diag(np.square([std_pos * mean[3], std_pos * mean[3], 1e-1, std_pos * mean[3]]))
        s = hm @ cov @ hm.T + r
        k = cov @ hm.T @ np.linalg.inv(s)
        mean = mean + k @ (z - hm @ mean)
        cov = cov - k @ hm @ cov
        out.append((mean.copy(), cov.copy()))
    return out


def test_the_block_filter_is_the_full_kalman_filter():
    rng = np.random.RandomState(0)
    z = np.cumsum(rng.randn(12, 4) * [3, 2, 0.01, 1], axis=0) + [300, 200, 0.45, 80]
    dts = rng.uniform(0.02, 0.3, 11)
    ref = full_filter_reference(z, dts)
    mean, cov = kalman.initiate(z[:1])
    for (ref_mean, ref_cov), zi, dt in zip(ref, z[1:], dts):
        kalman.predict(mean, cov, dt)
        mean, cov = kalman.update(mean, cov, zi[None])
        np.testing.assert_allclose(mean[0], ref_mean, rtol=1e-9, atol=1e-9)
        for i in range(4):
            block = ref_cov[np.ix_([i, i + 4], [i, i + 4])]
            np.testing.assert_allclose([cov[0, 0, i], cov[0, 1, i], cov[0, 2, i]],
                                       [block[0, 0], block[0, 1], block[1, 1]], rtol=1e-9, atol=1e-12)
        off = ref_cov.copy()
        for i in range(4):
            off[np.ix_([i, i + 4], [i, i + 4])] = 0
        assert np.abs(off).max() < 1e-9                     # nothing outside the four 2x2 blocks


def test_box_conversions_round_trip():
    boxes = np.array([[10.0, 20.0, 40.0, 90.0], [0.0, 0.0, 5.0, 5.0]])
    np.testing.assert_allclose(kalman.xyah_to_xyxy(kalman.xyxy_to_xyah(boxes)), boxes)


# -- the protocol ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bytetrack", "iou"])
def test_output_shape_ids_and_empty_frames(name):
    tracker = make_tracker(name)
    assert tracker.update(np.zeros((0, 6)), 0.0).shape == (0, 7)
    assert tracker.update([], 0.1).shape == (0, 7)
    out = run(tracker, [(0.2 + i / 30.0, [det(100 + 3 * i, 100), det(400 - 3 * i, 300)]) for i in range(10)])
    last = out[-1]
    assert last.shape == (2, 7)
    assert sorted(last[:, 4].tolist()) == [1.0, 2.0]
    assert np.all(last[:, 4] == np.round(last[:, 4])) and np.all(last[:, 4] > 0)
    assert abs(last[last[:, 4] == 1][0, 0] - (100 + 27)) < 3      # the box follows its detection


@pytest.mark.parametrize("name", ["bytetrack", "iou"])
def test_ids_are_never_reused(name):
    tracker = make_tracker(name, track_buffer_s=0.1)
    seen = set()
    t = 0.0
    for _round in range(5):
        for _ in range(5):                                  # an object lives five frames...
            out = tracker.update(np.array([det(100, 100)]), t)
            t += 0.05
            seen_now = set(out[:, 4].astype(int).tolist())
            assert len(seen_now) == len(out)
        for _ in range(5):                                  # ...then is gone past the buffer
            tracker.update(np.zeros((0, 6)), t)
            t += 0.05
        ids = set(out[:, 4].astype(int).tolist())
        assert ids and not ids & seen
        seen |= ids
    assert len(seen) == 5


def test_births_only_from_high_scores_and_low_scores_only_extend():
    tracker = make_tracker("bytetrack")
    frames = [(i / 30.0, [det(100, 100, score=0.3)]) for i in range(10)]
    assert all(len(o) == 0 for o in run(tracker, frames))          # a low-score object never starts a track
    tracker = make_tracker("bytetrack", coast_s=0)
    out = run(tracker, [(i / 30.0, [det(100 + i, 100, score=0.9 if i < 5 else 0.3)]) for i in range(10)])
    assert [len(o) for o in out] == [1] * 10                        # ...but keeps one alive (second stage)
    assert set(o[0, 4] for o in out) == {1.0}


def test_min_hits_confirms_after_matches_not_on_the_first_frame_after_start():
    tracker = make_tracker("bytetrack", min_hits=3)
    out = run(tracker, [(0.0, [])] + [(i / 30.0, [det(200, 100)]) for i in range(1, 6)])
    assert [len(o) for o in out] == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("name", ["bytetrack", "iou"])
def test_the_lost_buffer_is_in_seconds(name):
    def gap_run(buffer_s, fps):
        tracker = make_tracker(name, track_buffer_s=buffer_s, coast_s=0)
        ids = []
        n = int(3 * fps)
        for k in range(n):
            t = k / fps
            hidden = 1.0 <= t < 1.5                            # gone for half a second
            out = tracker.update(np.array([det(300, 200)]) if not hidden else np.zeros((0, 6)), t)
            ids.extend(out[:, 4].astype(int).tolist())
        return sorted(set(ids))

    for fps in (5.0, 30.0):
        assert gap_run(1.0, fps) == [1]
        assert gap_run(0.3, fps) == [1, 2]


def test_kalman_carries_a_moving_object_through_a_gap():
    tracker = make_tracker("bytetrack", coast_s=0)
    ids = []
    for k in range(90):
        t = k / 30.0
        x = 100 + 120 * t                                    # 120 px/s; 30 px wide boxes
        hidden = 1.0 <= t < 1.6                               # moves 72 px while unseen
        out = tracker.update(np.zeros((0, 6)) if hidden else np.array([det(x, 200)]), t)
        ids.extend(out[:, 4].astype(int).tolist())
    assert set(ids) == {1}


def test_coasting_reports_a_missed_frame_at_the_predicted_box():
    tracker = make_tracker("bytetrack", coast_s=0.1)
    out = run(tracker, [(k / 30.0, [det(100 + 2 * k, 100)] if k != 6 else []) for k in range(10)])
    assert [len(o) for o in out] == [1] * 10
    assert out[6][0, 0] == pytest.approx(112, abs=2)


def test_per_class_matching_keeps_classes_apart():
    agnostic = make_tracker("bytetrack")
    strict = make_tracker("bytetrack", class_agnostic=False, coast_s=0)
    frames = [(k / 30.0, [det(100 + k, 100, cls=0 if k < 3 else 1)]) for k in range(8)]   # the class changes
    assert set(r[4] for o in run(agnostic, frames) for r in o) == {1}
    out = run(strict, frames)
    assert set(r[4] for o in out for r in o) == {1, 2}
    assert [int(o[0, 6]) for o in out if len(o)] == [0, 0, 0, 1, 1, 1, 1]   # frame 3: tentative, not shown


def test_class_agnostic_track_keeps_the_class_most_voted():
    tracker = make_tracker("bytetrack")
    out = run(tracker, [(k / 30.0, [det(100, 100, cls=1 if k == 3 else 0)]) for k in range(6)])
    assert [int(o[0, 6]) for o in out] == [0] * 6


@pytest.mark.parametrize("params, word", [
    ({"track_thresh": 0.5}, "track_thresh"),
    ({"match_thresh": 1.5}, "match_thresh"),
    ({"track_buffer": 30, "track_buffer_s": 1.0}, "track_buffer_s"),
    ({"min_hits": 0}, "min_hits"),
    ({"class_agnostic": "yes"}, "class_agnostic"),
    ({"track_low_thresh": 0.7, "track_high_thresh": 0.5}, "track_low_thresh"),
])
def test_bad_parameters_name_the_parameter(params, word):
    with pytest.raises(ConfigError) as info:
        make_tracker("bytetrack", **params)
    assert word in str(info.value) and "\n" not in str(info.value)


def test_unknown_tracker_and_bad_dets():
    with pytest.raises(ConfigError, match="unknown tracker 'sort'"):
        make_tracker("sort")
    with pytest.raises(ConfigError, match="iou_thresh"):
        make_tracker("bytetrack", iou_thresh=0.3)
    with pytest.raises(ValueError, match="N x 6"):
        make_tracker("iou").update(np.zeros((3, 4)), 0.0)


def identities(frames, tracks_per_frame):
    """{gt id: set of track ids matched to it (IoU >= 0.5)} over the frames."""
    out = {}
    for f, tracks in zip(frames, tracks_per_frame):
        gt = f["gt"]
        cost = 1.0 - iou_matrix(gt[:, :4], tracks[:, :4])
        m, _, _ = linear_assignment(cost, 0.5)
        for g, h in m.tolist():
            out.setdefault(int(gt[g, 4]), set()).add(int(tracks[h, 4]))
    return out


def test_the_same_scene_at_5_and_30_fps_gives_the_same_identities():
    scene = make_scene(8, duration=12.0, seed=3, speed=(30.0, 90.0))
    results = {}
    for fps in (5.0, 30.0):
        frames = sample(scene, fps=fps, miss=0.0, jitter=0.0, fp=0.0)
        tracker = make_tracker("bytetrack", track_buffer_s=1.5)
        results[fps] = identities(frames, [tracker.update(f["dets"], f["t"]) for f in frames])
    a, b = results[5.0], results[30.0]
    assert sorted(a) == sorted(b) == list(range(1, 9))
    # the same partition: each object has as many identities at either rate, and one is the norm
    assert [len(a[k]) for k in sorted(a)] == [len(b[k]) for k in sorted(b)]
    assert sum(len(v) for v in a.values()) <= 10


def test_noisy_scene_keeps_most_identities():
    scene = make_scene(10, duration=10.0, seed=5)
    frames = sample(scene, fps=30.0, miss=0.1, jitter=0.05, fp=0.5, seed=2)
    tracker = make_tracker("bytetrack")
    ids = identities(frames, [tracker.update(f["dets"], f["t"]) for f in frames])
    assert len(ids) == 10
    assert sum(len(v) for v in ids.values()) <= 14


def test_the_numpy_solver_gives_the_same_tracks_as_scipy(monkeypatch):
    pytest.importorskip("scipy.optimize")
    from edgekit.analytics import assign

    frames = sample(make_scene(25, duration=6.0, seed=9), fps=30.0, miss=0.1, jitter=0.05, fp=1.0, seed=3)

    def tracks():
        tracker = make_tracker("bytetrack")
        return [tracker.update(f["dets"], f["t"]) for f in frames]

    with_scipy = tracks()
    monkeypatch.setattr(assign, "_scipy_lsa", None)
    with_numpy = tracks()
    assert len(with_scipy) == len(with_numpy)
    for a, b in zip(with_scipy, with_numpy):
        np.testing.assert_array_equal(a, b)


def test_a_clock_stepping_back_keeps_the_tracks():
    tracker = make_tracker("bytetrack", track_buffer_s=0.5)
    for k in range(5):
        out = tracker.update(np.array([det(100 + k, 100)]), 1000.0 + k / 30.0)
    for k in range(30):                                     # an hour back (NTP), then on as before
        out = tracker.update(np.array([det(105 + k, 100)]), 1000.0 - 3600.0 + k / 30.0)
        assert out[:, 4].tolist() == [1.0]
    for k in range(30, 60):                                 # and the lost buffer still runs
        out = tracker.update(np.zeros((0, 6)), 1000.0 - 3600.0 + k / 30.0)
    assert tracker.active() == []


def test_uncertainty_gating_keeps_fast_objects_at_a_low_frame_rate():
    scene = make_scene(10, duration=10.0, seed=22, speed=(100.0, 160.0))
    frames = sample(scene, fps=5.0, miss=0.0, jitter=0.02, fp=0.0)
    total = sum(len(f["gt"]) for f in frames)

    def id_recall(**params):
        """The share of ground-truth boxes covered by their object's most frequent track id."""
        tracker = make_tracker("bytetrack", **params)
        hits = {}
        for f in frames:
            tracks = tracker.update(f["dets"], f["t"])
            m, _, _ = linear_assignment(1.0 - iou_matrix(f["gt"][:, :4], tracks[:, :4]), 0.5)
            for g, h in m.tolist():
                key = (int(f["gt"][g, 4]), int(tracks[h, 4]))
                hits[key] = hits.get(key, 0) + 1
        best = {}
        for (g, _), n in hits.items():
            best[g] = max(best.get(g, 0), n)
        return sum(best.values()) / float(total)

    with_gate, without = id_recall(), id_recall(gate_sigma=0.0)
    assert with_gate > without + 0.2
    with pytest.raises(ConfigError, match="gate_cap must be >= 0"):
        make_tracker("bytetrack", gate_cap=-1)
