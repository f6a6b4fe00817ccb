"""Recorded detections in, tracks out: MOTChallenge text files and the daemon's JSON Lines.

- MOTChallenge detections (``det.txt``): ``frame,id,x,y,w,h,conf[,x,y,z]`` per line, frames from 1,
  id -1; ground truth (``gt.txt``): ``frame,id,x,y,w,h,flag,class,visibility``. A ``seqinfo.ini``
  beside the ``det/`` or ``gt/`` folder gives the frame rate and size.
- The daemon's results (``edgekit serve`` JSON Lines sink): one record per frame with ``seq``,
  ``ts_capture`` (seconds) and ``result.detections`` (``index``, ``label``, ``score``, ``box`` x1 y1 x2 y2
  in source pixels), optionally ``frame_size`` [width, height].
- Tracks are written in the MOTChallenge result format ``frame,id,x,y,w,h,conf,-1,-1,-1``, atomically.
"""

import configparser
import json
import os

import numpy as np

from edgekit.errors import UserError
from edgekit.fsutil import atomic_write_text


class Recording(object):
    """Frames of detections: ``frames`` a list of (frame number, time or None, dets N x 6);
    ``labels`` (list or None), ``frame_size`` (w, h) or None, ``fps`` or None, ``format``."""

    def __init__(self, frames, fmt, labels=None, frame_size=None, fps=None):
        self.frames, self.format, self.labels, self.frame_size, self.fps = frames, fmt, labels, frame_size, fps


def _open_lines(path, what):
    if not os.path.isfile(path):
        raise UserError("%s: no such file %s" % (what, path), hint="check the path")
    try:
        with open(path, "r") as handle:
            return handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError("%s: cannot read %s: %s" % (what, path, exc), hint="give a text file")


def read_mot_rows(path, what="DETS", min_cols=7):
    """A MOTChallenge text file as a float array (lines x columns, the shortest line's columns);
    a malformed line is a UserError naming it."""
    rows = []
    width = None
    for number, line in enumerate(_open_lines(path, what), 1):
        line = line.strip()
        if not line:
            continue
        parts = [p.strip() for p in line.replace(" ", ",").split(",") if p.strip()] if "," not in line \
            else [p.strip() for p in line.split(",")]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise UserError("%s %s line %d: not comma-separated numbers: %r" % (what, path, number, line[:80]),
                            hint="MOTChallenge lines are frame,id,x,y,w,h,conf,...")
        if len(values) < min_cols:
            raise UserError("%s %s line %d: %d values, need at least %d (frame,id,x,y,w,h,conf)" % (
                what, path, number, len(values), min_cols), hint="fix or remove the line")
        if values[0] < 1 or values[0] != int(values[0]):
            raise UserError("%s %s line %d: frame %r is not a whole number >= 1" % (what, path, number, parts[0]),
                            hint="MOTChallenge frames count from 1")
        if values[4] < 0 or values[5] < 0:
            raise UserError("%s %s line %d: negative box size" % (what, path, number), hint="w and h must be >= 0")
        width = len(values) if width is None else min(width, len(values))
        rows.append(values)
    if not rows:
        return np.zeros((0, min_cols))
    return np.array([r[:width] for r in rows], dtype=np.float64)


def seqinfo(path):
    """(fps, (width, height)) from the seqinfo.ini of a MOTChallenge sequence holding ``path``
    (SEQ/det/det.txt or SEQ/gt/gt.txt), or (None, None)."""
    ini = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(path))), "seqinfo.ini")
    if not os.path.isfile(ini):
        return None, None
    parser = configparser.ConfigParser()
    try:
        parser.read(ini)
        seq = parser["Sequence"]
        fps = float(seq["frameRate"]) if "frameRate" in seq else None
        size = (int(seq["imWidth"]), int(seq["imHeight"])) if "imWidth" in seq and "imHeight" in seq else None
        return fps, size
    except (configparser.Error, KeyError, ValueError):
        return None, None


def _read_mot_dets(path):
    rows = read_mot_rows(path, "DETS")
    fps, size = seqinfo(path)
    frames = []
    if len(rows):
        order = np.argsort(rows[:, 0], kind="stable")
        rows = rows[order]
        numbers = rows[:, 0].astype(np.int64)
        bounds = np.flatnonzero(np.diff(numbers)) + 1
        start = 0
        for end in list(bounds) + [len(rows)]:
            chunk = rows[start:end]
            dets = np.zeros((len(chunk), 6))
            dets[:, 0] = chunk[:, 2]
            dets[:, 1] = chunk[:, 3]
            dets[:, 2] = chunk[:, 2] + chunk[:, 4]
            dets[:, 3] = chunk[:, 3] + chunk[:, 5]
            dets[:, 4] = chunk[:, 6]
            frames.append((int(numbers[start]), None, dets))
            start = end
    return Recording(frames, "mot", fps=fps, frame_size=size)


def _read_results_jsonl(path):
    frames = []
    labels = {}
    frame_size = None
    first_seq = None
    for number, line in enumerate(_open_lines(path, "DETS"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise UserError("DETS %s line %d: not JSON (%s)" % (path, number, exc),
                            hint="give the daemon's results JSON Lines or a MOTChallenge det file")
        if not isinstance(record, dict):
            raise UserError("DETS %s line %d: a record is a JSON object" % (path, number))
        result = record.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("detections"), list):
            if isinstance(record.get("error"), (str, dict)):
                continue                                  # a frame the daemon could not process
            raise UserError("DETS %s line %d: no result.detections (is it a detection model's output?)" % (
                path, number), hint="edgekit track needs detection results")
        try:
            seq = int(record.get("seq", number))
            t = float(record["ts_capture"]) if record.get("ts_capture") is not None else None
            dets = np.zeros((len(result["detections"]), 6))
            for i, d in enumerate(result["detections"]):
                box = [float(v) for v in d["box"]]
                if len(box) != 4:
                    raise ValueError("box has %d numbers" % len(box))
                cls = int(d.get("index", 0))
                dets[i] = box + [float(d.get("score", 1.0)), cls]
                if d.get("label") is not None:
                    labels[cls] = str(d["label"])
            if record.get("frame_size") is not None:
                frame_size = (int(record["frame_size"][0]), int(record["frame_size"][1]))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise UserError("DETS %s line %d: malformed record (%s)" % (path, number, exc),
                            hint="each detection needs box [x1, y1, x2, y2], score and index")
        if first_seq is None:
            first_seq = seq
        frames.append((seq, t, dets))
    names = None
    if labels:
        names = [labels.get(i, str(i)) for i in range(max(labels) + 1)]
    return Recording(frames, "jsonl", labels=names, frame_size=frame_size)


def read_detections(path):
    """A MOTChallenge det file or the daemon's results JSON Lines (told apart by the first
    non-blank character: ``{`` is JSON)."""
    lines = _open_lines(path, "DETS")
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("{"):
        return _read_results_jsonl(path)
    return _read_mot_dets(path)


def format_mot(frame_rows):
    """[(frame, tracks M x 7)] -> MOTChallenge result text."""
    out = []
    for frame, tracks in frame_rows:
        for x1, y1, x2, y2, tid, score, _ in tracks.tolist():
            out.append("%d,%d,%.2f,%.2f,%.2f,%.2f,%.4f,-1,-1,-1\n" % (frame, tid, x1, y1, x2 - x1, y2 - y1, score))
    return "".join(out)


def write_mot(path, frame_rows):
    atomic_write_text(path, format_mot(frame_rows))


def write_events(path, events):
    atomic_write_text(path, "".join(json.dumps(e, sort_keys=True) + "\n" for e in events))
