"""Shared helpers for benchmarks: claims printed as `name: value (goal)` and JSON under runs/bench/."""

import json
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "runs", "bench")


def context():
    import numpy

    info = {"python": sys.version.split()[0], "machine": platform.machine(), "cpus": os.cpu_count(),
            "numpy": numpy.__version__, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def claim(name, value, goal, unit="", ok=None):
    """Print one claim line and return it as a dict. ``goal`` is a string like '>= 2.5x'."""
    text = "%s: %s%s (goal %s)" % (name, ("%.3f" % value) if isinstance(value, float) else value, unit, goal)
    if ok is not None:
        text += " %s" % ("ok" if ok else "MISSED")
    print(text, flush=True)
    return {"name": name, "value": value, "unit": unit, "goal": goal, "ok": ok}


def alternate(fns, repeats=5):
    """Run the named callables A, B, A, B... ``repeats`` times; each returns a number (e.g. ms).
    Returns {name: [values...]} so claims can use the median of side-by-side measurements."""
    results = dict((name, []) for name in fns)
    for _ in range(repeats):
        for name, fn in fns.items():
            results[name].append(fn())
    return results


def median(values):
    return statistics.median(values)


def median_interval(values, confidence=0.95):
    """A distribution-free interval for the median of ``values`` (order statistics: the k-th smallest
    and the k-th largest, k the largest with P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2); for 16
    values the 4th smallest and the 4th largest, 97.9% coverage. The whole range when n is too small."""
    from math import comb

    xs, n = sorted(values), len(values)
    tail, k, below = (1.0 - confidence) / 2.0, 0, 1.0 / 2 ** n     # below = P(B <= k)
    while k < n and below <= tail:
        k += 1
        below += comb(n, k) / 2.0 ** n
    return (xs[0], xs[-1]) if k == 0 else (xs[k - 1], xs[n - k])


def write(area, data):
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, area + ".json")
    data = dict(data)
    data.setdefault("context", context())
    with open(path + ".tmp", "w") as handle:
        json.dump(data, handle, indent=2, default=float)
    os.replace(path + ".tmp", path)
    print("wrote %s" % os.path.relpath(path, ROOT))
    return path


def export_recipe(name, workdir, labels):
    """A recipe's model with random weights, exported for x86-cpu as ``edgekit export`` does:
    (torch model in eval mode, ModelMeta, path of the .onnx)."""
    import torch

    from edgekit.desktop.export.run import export_model
    from edgekit.desktop.train.models import build_model, output_names
    from edgekit.desktop.train.recipe import load_recipe
    from edgekit.desktop.train.run import build_meta

    rec = load_recipe(name)
    arch = rec["model"]["arch"]
    model = build_model(arch, num_classes=len(labels), **rec["model"].get("kwargs", {})).eval()
    meta = build_meta(rec, labels)
    ckpt = os.path.join(workdir, name + ".pt")
    torch.save({"format": "edgekit-checkpoint/1", "arch": {"name": arch, "kwargs": dict(
        rec["model"].get("kwargs", {}), num_classes=len(labels))}, "state_dict": model.state_dict(),
        "meta": meta.to_dict(), "output_names": output_names(arch), "recipe": {},
        "epoch": 0, "metrics": {}}, ckpt)
    onnx_path = os.path.join(workdir, name + ".onnx")
    export_model(ckpt, onnx_path, target="x86-cpu", log=lambda *_: None)
    return model, meta, onnx_path


def make_video(path, frames):
    """A 640x480 MP4 (mp4v) of the synthetic source's moving shapes, at 30 fps, written by OpenCV."""
    import cv2

    from edgekit.sources.synthetic import synthetic_frame

    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 480))
    for i in range(frames):
        writer.write(synthetic_frame(i, 640, 480))
    writer.release()
    return path
