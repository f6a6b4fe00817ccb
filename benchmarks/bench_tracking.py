"""Tracking and line counting (issue 18): accuracy on generated scenes scored by py-motmetrics, side by
side with Roboflow's ``trackers.ByteTrackTracker`` on the same detections, cost per frame on one core,
and line counts on generated crossings.

Needs (desktop): ``pip install 'motmetrics==1.4.0'`` and Roboflow's tracker without its opencv-python
and PyAV pins (the venv's opencv-python-headless serves it)::

    pip install --no-deps 'trackers==2.6.1' 'supervision==0.31.2'
    pip install 'defusedxml==0.7.1' 'pydeprecate>=0.9,<0.14' 'rich>=13' 'requests>=2.28' 'scipy>=1.13'

Without ``trackers`` the side-by-side claims are skipped (said so). Runs in about two minutes.
"""

import os
import tempfile
import time

import _common

FPS = 30.0
SIZES = (5, 20, 50)
ACCURACY_SEEDS = (101, 102, 103)


def _scene_frames(n, seed, duration=20.0, fps=FPS):
    from edgekit.analytics.synth import make_scene, sample

    return sample(make_scene(n, duration=duration, seed=seed), fps=fps, miss=0.1, jitter=0.05, fp=0.5, seed=seed + 1)


def _roboflow():
    try:
        import supervision
        from trackers import ByteTrackTracker
    except ImportError as exc:
        print("trackers (Roboflow) not importable (%s): side-by-side claims skipped" % exc)
        return None
    return ByteTrackTracker, supervision


def _run_edgekit(frames, **params):
    from edgekit.analytics import make_tracker

    tracker = make_tracker("bytetrack", **params)
    return [(f["frame"], tracker.update(f["dets"], f["t"])) for f in frames]


def _sv_frames(frames, sv):
    return [sv.Detections(xyxy=f["dets"][:, :4].copy(), confidence=f["dets"][:, 4].copy(),
                          class_id=f["dets"][:, 5].astype(int)) for f in frames]


def _run_roboflow(frames, sv_dets, rf, fps=FPS):
    import numpy as np

    cls, _ = rf
    tracker = cls(frame_rate=fps)
    out = []
    for f, d in zip(frames, sv_dets):
        r = tracker.update(d)
        keep = r.tracker_id >= 0
        rows = np.zeros((int(keep.sum()), 7))
        rows[:, :4] = r.xyxy[keep]
        rows[:, 4] = r.tracker_id[keep] + 1                # its ids count from 0; MOT ids from 1
        rows[:, 5] = r.confidence[keep]
        out.append((f["frame"], rows))
    return out


def _score(frames, hyp):
    from edgekit.desktop.track.evaluate import evaluate, frames_to_mot

    gt = dict((f["frame"], (f["gt"][:, 4].astype("int64"), f["gt"][:, :4])) for f in frames)
    return evaluate(gt, frames_to_mot(hyp))


def _hota(frames, hyp):
    """HOTA from Roboflow's TrackEval-parity evaluation (motmetrics 1.4.0 has none); None without it."""
    try:
        from trackers.eval import evaluate_mot_sequence
    except ImportError:
        return None
    from edgekit.analytics.io import format_mot
    from edgekit.analytics.synth import mot_text

    with tempfile.TemporaryDirectory() as tmp:
        gt, trk = os.path.join(tmp, "gt.txt"), os.path.join(tmp, "trk.txt")
        with open(gt, "w") as handle:
            handle.write(mot_text(frames, "gt"))
        with open(trk, "w") as handle:
            handle.write(format_mot(hyp))
        return float(evaluate_mot_sequence(gt, trk, metrics=["HOTA"]).HOTA.HOTA)


def _without_scipy(fn):
    """Run ``fn`` with edgekit's assignment on its numpy solver (a board without scipy)."""
    from edgekit.analytics import assign

    saved, assign._scipy_lsa = assign._scipy_lsa, None
    try:
        return fn()
    finally:
        assign._scipy_lsa = saved


def _per_frame_ms(fn, n_frames):
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0 / n_frames


def accuracy(rf, claims, data):
    per = {"edgekit": [], "edgekit_no_coast": [], "roboflow": []}
    for seed in ACCURACY_SEEDS:
        frames = _scene_frames(20, seed)
        runs = {"edgekit": _run_edgekit(frames), "edgekit_no_coast": _run_edgekit(frames, coast_s=0.0)}
        if rf:
            runs["roboflow"] = _run_roboflow(frames, _sv_frames(frames, rf[1]), rf)
        for name, hyp in runs.items():
            m = _score(frames, hyp)
            m["hota"] = _hota(frames, hyp)
            per[name].append(m)
    mean = dict((name, dict((k, sum(m[k] for m in ms) / len(ms)) for k in ("mota", "idf1", "num_switches")))
                for name, ms in per.items() if ms)
    for name in mean:
        hotas = [m["hota"] for m in per[name] if m["hota"] is not None]
        mean[name]["hota"] = sum(hotas) / len(hotas) if hotas else None
    data["accuracy"] = {"per_sequence": per, "mean": mean, "scene": "20 objects, 20 s at 30 fps, 10 %% missed, "
                        "5 %% jitter, 0.5 false positives/frame, occluder band; seeds %s" % (ACCURACY_SEEDS,)}
    e = mean["edgekit"]
    claims.append(_common.claim("tracking MOTA (edgekit bytetrack, 10% missed, 5% jitter)", e["mota"], ">= 0.90",
                                ok=e["mota"] >= 0.90))
    claims.append(_common.claim("tracking IDF1 (edgekit bytetrack, 10% missed, 5% jitter)", e["idf1"], ">= 0.90",
                                ok=e["idf1"] >= 0.90))
    n = mean["edgekit_no_coast"]
    print("context: edgekit without coasting (coast_s=0): MOTA %.3f IDF1 %.3f; ID switches %.1f vs %.1f per sequence"
          % (n["mota"], n["idf1"], n["num_switches"], e["num_switches"]))
    if e["hota"] is not None:
        print("context: HOTA (trackers.eval) edgekit %.3f" % e["hota"])
    low = {}
    for seed in ACCURACY_SEEDS:                     # the same scenes read at 5 frames/s
        frames = _scene_frames(20, seed, fps=5.0)
        low.setdefault("edgekit", []).append(_score(frames, _run_edgekit(frames))["idf1"])
        if rf:
            low.setdefault("roboflow", []).append(
                _score(frames, _run_roboflow(frames, _sv_frames(frames, rf[1]), rf, fps=5.0))["idf1"])
    low = dict((k, sum(v) / len(v)) for k, v in low.items())
    data["accuracy"]["idf1_at_5fps"] = low
    print("context: the same scenes at 5 fps: IDF1 edgekit %.3f%s" % (
        low["edgekit"], ", Roboflow (frame_rate=5) %.3f" % low["roboflow"] if "roboflow" in low else ""))
    if "roboflow" in mean:
        r = mean["roboflow"]
        claims.append(_common.claim("IDF1 edgekit - Roboflow ByteTrackTracker, same detections", e["idf1"] - r["idf1"],
                                    ">= 0", ok=e["idf1"] >= r["idf1"]))
        print("context: Roboflow ByteTrackTracker (defaults, frame_rate 30): MOTA %.3f IDF1 %.3f HOTA %s, ID switches "
              "%.1f; edgekit without coasting IDF1 - Roboflow %+.3f" % (
                  r["mota"], r["idf1"], "%.3f" % r["hota"] if r["hota"] is not None else "-", r["num_switches"],
                  n["idf1"] - r["idf1"]))


def speed(rf, claims, data):
    pinned = None
    if hasattr(os, "sched_getaffinity"):
        pinned = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {sorted(pinned)[-1]})     # one core
    try:
        results = {}
        for n in SIZES:
            frames = _scene_frames(n, 200 + n, duration=10.0)
            fns = {"edgekit": lambda frames=frames: _per_frame_ms(lambda: _run_edgekit(frames), len(frames)),
                   "edgekit_numpy": lambda frames=frames: _without_scipy(
                       lambda: _per_frame_ms(lambda: _run_edgekit(frames), len(frames)))}
            if rf:
                sv_dets = _sv_frames(frames, rf[1])
                fns["roboflow"] = lambda frames=frames, sv_dets=sv_dets: _per_frame_ms(
                    lambda: _run_roboflow(frames, sv_dets, rf), len(frames))
            for fn in fns.values():
                fn()                                      # warm up
            results[n] = _common.alternate(fns, repeats=5)
    finally:
        if pinned is not None:
            os.sched_setaffinity(0, pinned)
    data["speed_ms_per_frame"] = dict((str(n), r) for n, r in results.items())
    for n in SIZES:
        ms = _common.median(results[n]["edgekit"])
        text = "context: %d objects: edgekit %.3f ms/frame (%.3f with the numpy solver, no scipy)" % (
            n, ms, _common.median(results[n]["edgekit_numpy"]))
        if "roboflow" in results[n]:
            text += ", Roboflow %.3f ms/frame" % _common.median(results[n]["roboflow"])
        print(text)
    ms50 = _common.median(results[50]["edgekit"])
    claims.append(_common.claim("edgekit tracker cost per frame at 50 objects, one core", ms50, "<= 1.0", unit=" ms",
                                ok=ms50 <= 1.0))
    if rf:
        ratios = [r / e for r, e in zip(results[50]["roboflow"], results[50]["edgekit"])]
        ratio = _common.median(ratios)
        claims.append(_common.claim("speed-up over Roboflow ByteTrackTracker at 50 objects", ratio, ">= 2x", unit="x",
                                    ok=ratio >= 2.0))


def counting(claims, data):
    from edgekit.analytics.camera import CameraAnalytics
    from edgekit.analytics.synth import crossing_scene, sample
    from edgekit.analytics.tracker import iou_matrix

    scene, expected = crossing_scene(200, seed=31)
    frames = sample(scene, fps=15.0, miss=0.1, jitter=0.05, fp=0.5, seed=32)
    analytics = CameraAnalytics({"lines": [{"name": "door", "points": [[400, 400], [880, 400]]}]}, camera="bench",
                                trail_s=0)
    gt_at = dict((f["frame"], f["gt"]) for f in frames)
    events = []
    for f in frames:
        events.extend(analytics.update(f["dets"], f["t"], frame_size=scene.size, frame=f["frame"]).events)
    got = {}
    wrong = 0
    for e in events:                                   # whose crossing is it: the GT box the event's box covers
        gt = gt_at[e["frame"]]
        iou = iou_matrix([e["box"]], gt[:, :4])[0]
        owner = int(gt[iou.argmax(), 4]) if len(gt) and iou.max() >= 0.3 else None
        if owner not in expected["walkers"] or owner in got or expected["walkers"][owner] != e["direction"]:
            wrong += 1
        else:
            got[owner] = e["direction"]
    missed = len(expected["walkers"]) - len(got)
    errors = wrong + missed
    counts = analytics.counts()["door"]
    data["counting"] = {"crossings": len(expected["walkers"]), "events": len(events), "missed": missed,
                        "wrong": wrong, "counts": counts, "expected": {"in": expected["in"], "out": expected["out"]},
                        "decoys": len(scene) - len(expected["walkers"])}
    print("context: %d crossings through the segment, %d decoys (beside it, standing on it); counted in %d/%d, out %d/%d"
          % (len(expected["walkers"]), len(scene) - len(expected["walkers"]), counts["in_total"], expected["in"],
             counts["out_total"], expected["out"]))
    claims.append(_common.claim("line counting errors over %d generated crossings (10%% missed, 5%% jitter)" %
                                len(expected["walkers"]), errors, "0", ok=errors == 0))


def main():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import motmetrics  # noqa: F401
    except ImportError:
        raise RuntimeError("bench_tracking needs py-motmetrics: pip install 'motmetrics==1.4.0'")
    rf = _roboflow()
    claims = []
    data = {}
    start = time.perf_counter()
    accuracy(rf, claims, data)
    speed(rf, claims, data)
    counting(claims, data)
    data["claims"] = claims
    data["seconds"] = time.perf_counter() - start
    try:
        import trackers

        data["roboflow_trackers"] = trackers.__version__
    except (ImportError, AttributeError):
        data["roboflow_trackers"] = None
    _common.write("tracking", data)


if __name__ == "__main__":
    main()
