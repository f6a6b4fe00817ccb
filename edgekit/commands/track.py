"""`edgekit track`: the daemon's tracker, lines and zones run offline on recorded detections."""

from edgekit.commands._args import add_json

HELP = "track recorded detections offline (MOTChallenge or the daemon's JSON Lines), count lines and zones"
DESCRIPTION = """Run edgekit's tracker and a camera's lines and zones on recorded detections, the way
`edgekit serve` does live, to tune them on a recording.

DETS is a MOTChallenge detection file (frame,id,x,y,w,h,conf,...; frames from 1) or the daemon's
results JSON Lines (told apart automatically). Tracks are written to TRACKS in the MOTChallenge
result format (frame,id,x,y,w,h,conf,-1,-1,-1); with --config the events go to --events as JSON
Lines (docs/reference/events.md) and the counts are printed. --eval GT scores the tracks against a
MOTChallenge ground-truth file with py-motmetrics (desktop: pip install 'edgekit[analytics-eval]').

Frame times: the daemon's ts_capture, else frame / --fps (default: seqinfo.ini's frameRate, else 30)."""


def add_arguments(parser):
    import argparse

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("dets", metavar="DETS", help="MOTChallenge det file or the daemon's results .jsonl")
    parser.add_argument("--out", required=True, metavar="TRACKS", help="where to write the tracks (MOTChallenge format)")
    parser.add_argument("--tracker", default=None, metavar="NAME",
                        help="bytetrack or iou (default: the config's tracker, else bytetrack)")
    parser.add_argument("--config", metavar="RULES.yaml", help="lines, zones and tracker settings (the analytics "
                        "mapping of a camera; a top-level `analytics:` key is also accepted, so is the serve config)")
    parser.add_argument("--events", metavar="EVENTS.jsonl", help="write the events here (needs --config)")
    parser.add_argument("--fps", type=float, metavar="F", help="frames per second for frame times (MOT files; "
                        "with JSON Lines it replaces ts_capture)")
    parser.add_argument("--frame-size", metavar="WxH", help="frame size for 0..1 rule coordinates (default: "
                        "seqinfo.ini or the records' frame_size)")
    parser.add_argument("--camera", default="camera", help="camera name in the events (default: camera)")
    parser.add_argument("--eval", metavar="GT", help="score TRACKS against this MOTChallenge ground truth")
    add_json(parser, "the summary (frames, tracks, events; the scores with --eval)")


def _frame_size(text):
    from edgekit.errors import UserError

    try:
        w, h = text.lower().split("x")
        size = (int(w), int(h))
        if size[0] <= 0 or size[1] <= 0:
            raise ValueError
        return size
    except ValueError:
        raise UserError("--frame-size %r is not WIDTHxHEIGHT" % text, hint="e.g. --frame-size 1280x720")


def _load_rules(path, labels, frame_size, tracker):
    import os

    import yaml

    from edgekit.analytics.config import validate_config
    from edgekit.errors import ConfigError, UserError

    data = {}
    key = "analytics"
    if path:
        if not os.path.isfile(path):
            raise UserError("--config: no such file %s" % path, hint="check the path")
        try:
            with open(path) as handle:
                data = yaml.safe_load(handle) or {}
        except yaml.YAMLError as exc:
            raise ConfigError("--config %s is not valid YAML: %s" % (path, " ".join(str(exc).split())))
        if isinstance(data, dict) and "analytics" in data and (set(data) == {"analytics"} or "model" in data
                                                               or "source" in data):
            data = data["analytics"]            # a serve config: its analytics (a mapping, or its rules file)
            if isinstance(data, str):
                from edgekit.service.config import load_analytics

                rules = os.path.join(os.path.dirname(os.path.abspath(path)), os.path.expanduser(data))
                data = load_analytics({"analytics": rules})
    if tracker:
        if not isinstance(data, dict):
            data = {}
        if data.get("tracker") not in (None, tracker):
            data = dict(data, tracker=tracker, tracker_params={})
        else:
            data = dict(data, tracker=tracker)
    return validate_config(data, labels=labels, frame_size=frame_size, key=key)


def run(args):
    import json
    import sys
    import time

    from edgekit.analytics.camera import CameraAnalytics
    from edgekit.analytics.io import read_detections, write_events, write_mot
    from edgekit.errors import UserError
    from edgekit.progress import progress

    if args.fps is not None and args.fps <= 0:
        raise UserError("--fps must be > 0, got %g" % args.fps)
    if args.events and not args.config:
        raise UserError("--events needs --config (the lines and zones that make events)")
    if args.tracker is not None and args.tracker not in ("bytetrack", "iou"):
        raise UserError("unknown tracker %r" % args.tracker, hint="use --tracker bytetrack or --tracker iou")
    rec = read_detections(args.dets)
    frame_size = _frame_size(args.frame_size) if args.frame_size else rec.frame_size
    config = _load_rules(args.config, rec.labels, frame_size, args.tracker)
    fps = args.fps or rec.fps or 30.0
    analytics = CameraAnalytics(config, camera=args.camera, labels=rec.labels, trail_s=0)
    if frame_size is None and any(r.normalized for r in config.rules):
        raise UserError("the rules use 0..1 coordinates but the frame size is unknown",
                        hint="give --frame-size WxH")
    out_rows = []
    events = []
    start = time.perf_counter()
    with progress(total=len(rec.frames), desc="tracking", unit="frame") as bar:
        for frame, t, dets in rec.frames:
            if t is None or args.fps:
                t = (frame - 1) / fps
            result = analytics.update(dets, t, frame_size=frame_size, frame=frame)
            out_rows.append((frame, result.tracks))
            events.extend(result.events)
            bar.update(1)
    elapsed = time.perf_counter() - start
    write_mot(args.out, out_rows)
    if args.events:
        write_events(args.events, events)
    summary = {"dets": args.dets, "format": rec.format, "frames": len(rec.frames), "tracker": config.tracker,
               "tracks": analytics.tracker.next_id - 1, "track_rows": sum(len(t) for _, t in out_rows),
               "out": args.out, "events": len(events), "events_file": args.events,
               "counts": analytics.counts(), "ms_per_frame": round(1000.0 * elapsed / max(1, len(rec.frames)), 4)}
    if args.eval:
        from edgekit.desktop.track.evaluate import evaluate_files

        summary["eval"] = evaluate_files(args.eval, args.out)
        summary["eval"]["gt"] = args.eval
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(render(summary) + "\n")
    return 0


def render(s):
    from edgekit.table import format_table

    out = ["%s (%s): %d frames, %d tracks, %d events, %.3f ms/frame (%s) -> %s" % (
        s["dets"], s["format"], s["frames"], s["tracks"], s["events"], s["ms_per_frame"], s["tracker"], s["out"])]
    rows = []
    for name, c in sorted(s["counts"].items()):
        if c["type"] == "line":
            rows.append([name, "line", "in %d / out %d" % (c["in_total"], c["out_total"]),
                         ", ".join("%s %d/%d" % (lb, c["in"].get(lb, 0), c["out"].get(lb, 0))
                                   for lb in sorted(set(c["in"]) | set(c["out"])))])
        else:
            rows.append([name, "zone", "entered %d, inside %d" % (c["entered_total"], c["occupied"]),
                         ", ".join("%s %d" % kv for kv in sorted(c["entered"].items()))])
    if rows:
        out += ["", format_table(rows, ["rule", "type", "counts", "per label"])]
    ev = s.get("eval")
    if ev:
        out += ["", format_table([[ev["gt"], ev["mota"], ev["idf1"], ev["num_switches"], ev["motp"], ev["precision"],
                                   ev["recall"], ev["num_false_positives"], ev["num_misses"]]],
                                 ["ground truth", "MOTA", "IDF1", "ID sw.", "MOTP", "prec.", "recall", "FP", "FN"],
                                 digits=3),
                "(py-motmetrics; HOTA: not in motmetrics 1.4.0)"]
    return "\n".join(out)
