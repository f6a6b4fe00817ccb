"""`edgekit demo`: the whole path on the CPU, each step the real command's Python API.

dataset -> train -> export (x86-cpu and jetson-nano) -> quantize (INT8 for the CPU, FP16 for the
Nano) -> profile (FP32 vs INT8) -> Nano latency estimate -> bundle -> the daemon over a video file
written by OpenCV -> report.md, report.json and a summary table.
"""

import os
import socket
import time

import numpy as np

from edgekit.fsutil import atomic_write_json, atomic_write_text
from edgekit.progress import say
from edgekit.table import format_markdown, format_table

# Sizes that keep the demo under about three minutes on two cores.
SETTINGS = {
    "detection": {"recipe": "shapes-detector", "train": 2000, "val": 200, "epochs": 8, "batch": 32},
    "classification": {"recipe": "shapes-classifier", "train": 1500, "val": 300, "epochs": 6, "batch": 64},
}
QUICK = {
    "detection": {"train": 96, "val": 24, "epochs": 1, "batch": 16},
    "classification": {"train": 120, "val": 40, "epochs": 1, "batch": 32},
}
# `edgekit demo --detector NAME`: a detector on a torchvision backbone, trained for a wall-clock budget on the
# generated scenes (320 px) instead of the shapes detector; the rest of the path is unchanged.
DETECTORS = {
    "mobilenet_v3": {"recipe": "det-mobilenet_v3_small-320", "train": 300, "val": 60, "budget_s": 90, "batch": 16},
    "mobilenet_v3_large": {"recipe": "det-mobilenet_v3_large-320", "train": 300, "val": 60, "budget_s": 90,
                           "batch": 16},
    "resnet18": {"recipe": "det-resnet18-320", "train": 300, "val": 60, "budget_s": 90, "batch": 16},
}
QUICK_DETECTOR = {"train": 12, "val": 6, "budget_s": 3, "batch": 4}
VIDEO = {"width": 640, "height": 480, "fps": 15, "seconds": 8}


class Demo(object):
    def __init__(self, out, task, epochs, seed, http, keep_serving, quick, detector="shapes"):
        self.out = os.path.abspath(out)
        self.task = task
        self.seed = seed
        self.http = http
        self.keep_serving = keep_serving
        self.quick = quick
        self.detector = detector
        if detector != "shapes":
            if detector not in DETECTORS:
                from edgekit.errors import ConfigError

                raise ConfigError("unknown --detector %r" % (detector,),
                                  hint="use shapes or one of: %s" % ", ".join(sorted(DETECTORS)))
            if task != "detection":
                from edgekit.errors import ConfigError

                raise ConfigError("--detector needs --task detection")
            self.settings = dict(DETECTORS[detector], **(QUICK_DETECTOR if quick else {}))
            self.settings["epochs"] = 1000            # the time budget decides
        else:
            self.settings = dict(SETTINGS[task], **(QUICK[task] if quick else {}))
        if epochs:
            self.settings["epochs"] = int(epochs)
        self.steps = []          # (step, seconds, what it produced)
        self.report = {"task": task, "detector": detector, "seed": seed, "quick": quick, "settings": self.settings}

    def path(self, *parts):
        return os.path.join(self.out, *parts)

    def step(self, name, fn):
        say("\n== %s ==" % name)
        start = time.perf_counter()
        summary = fn()
        seconds = time.perf_counter() - start
        self.steps.append({"step": name, "seconds": round(seconds, 1), "result": summary})
        say("-- %s: %s (%.1f s)" % (name, summary, seconds))

    # -- the steps ------------------------------------------------------------------------------
    def dataset(self):
        from edgekit.desktop.data.shapes import make_shapes

        if self.detector != "shapes":
            from edgekit.desktop.data.scenes import make_scenes

            self.data = make_scenes(self.path("data-scenes"), train=self.settings["train"], val=self.settings["val"],
                                    size=320, seed=self.seed)
            self.report["dataset"] = {"path": self.data, "train": self.settings["train"],
                                      "val": self.settings["val"]}
            return "%d train / %d val generated scenes in %s" % (self.settings["train"], self.settings["val"],
                                                                self.data)
        size = 128 if self.task == "detection" else 64
        self.data = make_shapes(self.path("data"), task=self.task, train=self.settings["train"],
                                val=self.settings["val"], size=size, seed=self.seed)
        self.report["dataset"] = {"path": self.data, "train": self.settings["train"], "val": self.settings["val"]}
        return "%d train / %d val images in %s" % (self.settings["train"], self.settings["val"], self.data)

    def train(self):
        from edgekit.desktop.train.run import train

        result = train(self.settings["recipe"], self.data, self.path("train"), epochs=self.settings["epochs"],
                       batch=self.settings["batch"], device="cpu", seed=self.seed, progress=True,
                       time_budget=self.settings.get("budget_s"))
        self.checkpoint = result["best_path"]
        self.report["train"] = {"best": result["best"], "checkpoint": self.checkpoint}
        metric = _best_metric(result["best"])
        return "best %s = %.3f (%s)" % (metric[0], metric[1], os.path.relpath(self.checkpoint, self.out))

    def export(self):
        from edgekit.desktop.export.run import export_model

        cpu = export_model(self.checkpoint, self.path("model.onnx"), target="x86-cpu")
        nano = export_model(self.checkpoint, self.path("model-nano.onnx"), target="jetson-nano")
        self.report["export"] = {"x86-cpu": _slim(cpu), "jetson-nano": _slim(nano)}
        worst = max(v.get("max_abs", 0.0) for v in cpu["parity"].values())
        lint = nano.get("lint") or {}
        return "opset %d/%d, %d->%d nodes, parity max abs %.2e, TensorRT 8.2 lint %s" % (
            cpu["opset"], nano["opset"], cpu["nodes_before"], cpu["nodes_after"], worst,
            "ok" if lint.get("ok") else "%d problem(s)" % len(lint.get("problems", [])))

    def quantize(self):
        from edgekit.desktop.quantize.run import quantize

        calib, val = self._calib_and_val()
        int8 = quantize(self.path("model.onnx"), self.path("model-int8.onnx"), "int8", "x86-cpu", calib=calib,
                        calib_count=64 if not self.quick else 16, val=val,
                        json_path=self.path("quantize-int8.json"))
        fp16 = quantize(self.path("model-nano.onnx"), self.path("model-nano-fp16.onnx"), "fp16", "jetson-nano")
        self.report["quantize"] = {"int8": int8, "fp16": fp16}
        ref, q = int8.get("reference", {}), int8.get("quantized", {})
        key = "map50_95" if "map50_95" in ref else "map50" if "map50" in ref else "accuracy"
        return "INT8 %s: %s %.3f -> %.3f, %sx faster; Nano: FP16 (a TensorRT builder flag)" % (
            int8["scheme"]["name"], key, ref.get(key, float("nan")), q.get(key, float("nan")),
            "%.2f" % int8["speedup"] if isinstance(int8.get("speedup"), (int, float)) else "?")

    def _calib_and_val(self):
        if self.task == "detection":
            return os.path.join(self.data, "images", "train"), self.data
        return os.path.join(self.data, "train"), os.path.join(self.data, "val")

    def profile(self):
        from edgekit.profiler.run import profile_model

        duration = 0.5 if self.quick else 2.0
        rows = {}
        for name in ("model.onnx", "model-int8.onnx"):
            result = profile_model(self.path(name), backend="onnxruntime", duration_s=duration, warmup_ms=200,
                                   min_iters=20, telemetry=False)
            rows[name] = result
        self.report["profile"] = dict((k, {"latency_ms": _no_samples(v["latency_ms"]),
                                           "throughput_fps": v["throughput_fps"],
                                           "first_inference_ms": v.get("first_inference_ms")})
                                      for k, v in rows.items())
        p = self.report["profile"]
        return "p50 FP32 %.2f ms, INT8 %.2f ms" % (p["model.onnx"]["latency_ms"]["p50"],
                                                   p["model-int8.onnx"]["latency_ms"]["p50"])

    def estimate(self):
        from edgekit.profiler.run import estimate_for

        est = estimate_for(self.path("model-nano.onnx"), "jetson-nano", "fp16")
        self.report["estimate"] = {"target": est["target"], "precision": est["precision"],
                                   "latency_ms": est["latency_ms"]}
        return "Jetson Nano FP16 estimate %.2f ms" % est["latency_ms"]

    def bundle(self):
        from edgekit.desktop.bundle_make import make_bundle

        result = make_bundle(self.path("model-nano-fp16.onnx"), self.path("bundle-jetson-nano.tar.gz"),
                             target="jetson-nano", config=self._write_serve_config())
        self.report["bundle"] = {"path": self.path("bundle-jetson-nano.tar.gz"), "id": result["bundle_id"]}
        return "bundle-jetson-nano.tar.gz (%s)" % self.report["bundle"]["id"]

    def _write_serve_config(self):
        path = self.path("serve.yaml")
        atomic_write_text(path, "# edgekit serve config for the Nano bundle (see deploy/serve.example.yaml)\n"
                          "device_id: demo-nano\nmodel: {path: model.onnx, backend: auto}\n"
                          "source: {uri: 'csi://0?width=1280&height=720&fps=30'}\n"
                          "outputs:\n  http: {listen: '127.0.0.1:8080'}\n")
        return path

    def video(self):
        frames = write_demo_video(self.path("camera.mp4"), seed=self.seed,
                                  seconds=2 if self.quick else VIDEO["seconds"])
        return "camera.mp4: %d frames %dx%d at %d fps" % (frames, VIDEO["width"], VIDEO["height"], VIDEO["fps"])

    def serve(self):
        from edgekit.service.config import load_config
        from edgekit.service.daemon import Daemon

        listen = _free_listen(self.http)
        overrides = {"model.path": self.path("model-int8.onnx"), "source.uri": self.path("camera.mp4"),
                     "outputs.http.listen": listen, "outputs.jsonl.path": self.path("results.jsonl"),
                     "device_id": "demo", "summary": self.path("serve-summary.json")}
        if self.keep_serving:
            overrides["source.loop"] = True
        cfg = load_config(None, overrides)
        backups = range(1, cfg["outputs"]["jsonl"]["backups"] + 1)
        stale = [name for name in ["results.jsonl"] + ["results.jsonl.%d" % i for i in backups]
                 if os.path.exists(self.path(name))]
        for name in stale:          # the daemon appends: results of an earlier demo run would be counted
            os.remove(self.path(name))
        if stale:
            say("removed %s from an earlier demo run" % ", ".join(stale))
        say("the daemon serves the INT8 model over camera.mp4; open its page (the HTTP line below) while it runs")
        daemon = Daemon(cfg)
        summary = daemon.run()
        if daemon.failure is not None:
            raise daemon.failure
        atomic_write_json(self.path("serve-summary.json"), summary)
        self.report["serve"] = {"url": "http://%s/" % listen, "summary": summary}
        detections = count_results(self.path("results.jsonl"))
        self.report["serve"]["results"] = detections
        return "%d frames at %.1f fps, %d dropped, %s" % (summary["frames"], summary["fps"], summary["dropped"],
                                                         detections["text"])

    # -- report ---------------------------------------------------------------------------------
    def write_report(self):
        total = sum(s["seconds"] for s in self.steps)
        self.report["steps"] = self.steps
        self.report["total_seconds"] = round(total, 1)
        self.report["artefacts"] = sorted(f for f in os.listdir(self.out) if not f.startswith("."))
        atomic_write_json(self.path("report.json"), self.report)
        atomic_write_text(self.path("report.md"), render_markdown(self.report))
        rows = [[s["step"], s["seconds"], _short(s["result"])] for s in self.steps]
        print(format_table(rows, ["step", "seconds", "result"], digits=1,
                           title="\nedgekit demo (%s) in %.0f s — %s" % (self.task, total, self.out)))
        print("report: %s" % self.path("report.md"))

    def run(self):
        os.makedirs(self.out, exist_ok=True)
        for name, fn in (("dataset", self.dataset), ("train", self.train), ("export", self.export),
                         ("quantize", self.quantize), ("profile", self.profile), ("estimate", self.estimate),
                         ("bundle", self.bundle), ("video", self.video), ("serve", self.serve)):
            self.step(name, fn)
        self.write_report()
        return 0


def run_demo(out="runs/demo", task="detection", epochs=None, seed=0, http="127.0.0.1:8080", keep_serving=False,
             quick=False, detector="shapes"):
    return Demo(out, task, epochs, seed, http, keep_serving, quick, detector).run()


# -- helpers ------------------------------------------------------------------------------------
def write_demo_video(path, seed=0, seconds=8, width=VIDEO["width"], height=VIDEO["height"], fps=VIDEO["fps"]):
    """A camera stand-in: shapes from the training set's drawing code moving over a textured
    background, written by OpenCV (mp4v). Returns the number of frames."""
    import cv2

    from edgekit.desktop.data.shapes import CLASSES, textured_background, contrasting_colour, draw_shape
    from edgekit.fsutil import atomic_write

    rng = np.random.default_rng(seed)
    background = cv2.resize(textured_background(rng, 256), (width, height), interpolation=cv2.INTER_LINEAR)
    objects = []
    for i in range(4):
        r = rng.uniform(0.08, 0.14) * height
        objects.append({"kind": CLASSES[i % len(CLASSES)], "r": r,
                        "pos": rng.uniform([r, r], [width - r, height - r]),
                        "vel": rng.uniform(-4, 4, size=2) * (30.0 / fps), "angle": rng.uniform(0, 6.28),
                        "colour": contrasting_colour(rng, background)})
    count = int(seconds * fps)
    tmp = path + ".part.mp4"
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write %s (no mp4v encoder)" % tmp)
    try:
        for _ in range(count):
            frame = background.copy()
            for o in objects:
                o["pos"] += o["vel"]
                for axis, limit in ((0, width), (1, height)):
                    if not o["r"] <= o["pos"][axis] <= limit - o["r"]:
                        o["vel"][axis] *= -1
                        o["pos"][axis] = min(max(o["pos"][axis], o["r"]), limit - o["r"])
                draw_shape(frame, o["kind"], o["pos"][0], o["pos"][1], o["r"], o["angle"], o["colour"])
            writer.write(frame)
    finally:
        writer.release()
    with open(tmp, "rb") as src, atomic_write(path) as dst:
        dst.write(src.read())
    os.unlink(tmp)
    return count


def count_results(path):
    import json

    frames = labelled = 0
    labels = {}
    if os.path.exists(path):
        with open(path) as handle:
            for line in handle:
                record = json.loads(line)
                frames += 1
                result = record.get("result") or {}
                items = result.get("detections") or result.get("top", [])[:1]
                if items:
                    labelled += 1
                for item in items:
                    labels[item["label"]] = labels.get(item["label"], 0) + 1
    text = "%d results in results.jsonl" % frames
    if labels:
        text += " (%s)" % ", ".join("%s %d" % kv for kv in sorted(labels.items(), key=lambda kv: -kv[1])[:4])
    return {"records": frames, "with_results": labelled, "labels": labels, "text": text}


def _free_listen(listen):
    host, _, port = listen.rpartition(":")
    host = host or "127.0.0.1"
    port = int(port)
    if port == 0:
        return "%s:0" % host
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
        return "%s:%d" % (host, port)
    except OSError:
        sock2 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock2.bind((host, 0))
        free = sock2.getsockname()[1]
        sock2.close()
        say("port %d on %s is busy: the daemon serves on port %d instead" % (port, host, free))
        return "%s:%d" % (host, free)
    finally:
        sock.close()


def _best_metric(best):
    """train()'s "best" entry names its metric: {"metric": "map50", "value": 0.97, ...}."""
    return best["metric"], float(best["value"])


def _slim(report):
    keep = ("path", "opset", "nodes_before", "nodes_after", "parity", "lint", "seconds")
    return dict((k, report[k]) for k in keep if k in report)


def _no_samples(latency):
    return dict((k, v) for k, v in latency.items() if k != "samples")


def _short(text, width=88):
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def render_markdown(report):
    lines = ["# edgekit demo report", "",
             "Task: **%s**; seed %s; total %.0f s on this machine (CPU only)." % (
                 report["task"], report["seed"], report["total_seconds"]), "",
             "## Steps", "",
             format_markdown([[s["step"], s["seconds"], s["result"]] for s in report["steps"]],
                             ["step", "seconds", "result"], digits=1), ""]
    if "profile" in report:
        rows = [[name, v["latency_ms"]["p50"], v["latency_ms"]["p90"], v["latency_ms"]["p99"], v["throughput_fps"]]
                for name, v in report["profile"].items()]
        lines += ["## Latency (ONNX Runtime, CPU, batch 1)", "",
                  format_markdown(rows, ["model", "p50 ms", "p90 ms", "p99 ms", "fps"]), ""]
    if "estimate" in report:
        lines += ["Estimated on a Jetson Nano (FP16, TensorRT 8.2; cost model fitted on 20 published Nano "
                  "figures, docs/performance-estimate.md): **%.2f ms**." % report["estimate"]["latency_ms"], ""]
    if "serve" in report:
        s = report["serve"]["summary"]
        lines += ["## The daemon over camera.mp4", "",
                  "%d frames, %.1f fps, %d dropped, %d reconnects." % (s["frames"], s["fps"], s["dropped"],
                                                                      s["reconnects"]), ""]
        stages = s.get("latency_ms") or {}
        if stages:
            rows = [[k, v.get("p50"), v.get("p90"), v.get("p99")] for k, v in stages.items()]
            lines += [format_markdown(rows, ["stage", "p50 ms", "p90 ms", "p99 ms"]), ""]
    lines += ["## Artefacts", ""] + ["- `%s`" % a for a in report["artefacts"]] + [""]
    return "\n".join(lines)
