"""edgekit's backbone detectors against Ultralytics YOLOv8n, trained from scratch on the same generated scenes,
for the same wall-clock budget on this CPU, at the same input size (issue 22 item 7).

Per model: train (edgekit `train --time-budget`; Ultralytics `time=` with its own default recipe,
`val=False`, `plots=False`, built from yolov8n.yaml: no weights downloaded), export to ONNX (opset 13),
then score every ONNX file the same way: edgekit's Predictor on ONNX Runtime CPU over the val split (the
same letterboxed images), detections down to score 0.001, at most 100 per image, COCO mAP by pycocotools.
Latency: ONNX Runtime CPU, models measured alternately (median of blocks). Nano: edgekit.profiler.estimate
(FP16 roofline from the graph). Claims: best edgekit mAP@0.5:0.95 / YOLOv8n's (goal >= 1) and that model's
estimated Nano latency / YOLOv8n's (goal <= 1). The table is printed whatever it shows.

Environment (defaults keep the run to a few minutes; the recorded run raises them):
  EDGEKIT_BENCH_DET_BUDGET_S   training seconds per model (default 45)
  EDGEKIT_BENCH_DET_TRAIN      generated train images (default 300), EDGEKIT_BENCH_DET_VAL (default 100)
  EDGEKIT_BENCH_DET_MODELS     edgekit recipes, comma-separated (default det-mobilenet_v3_small-320,
                               det-mobilenet_v3_large-320)
  EDGEKIT_BENCH_DET_THREADS    torch threads for every training (default 2)
  EDGEKIT_BENCH_DET_YOLO=0     skip YOLOv8n (when ultralytics is not installed it is skipped, and said so)
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import OUT_DIR, claim, write  # noqa: E402

SIZE = 320
SCORE_THRESHOLD = 0.001      # as Ultralytics' val; both decoders keep at most 100 detections per image
MAX_DETS = 100


def _env(name, default, kind=int):
    value = os.environ.get(name)
    return kind(value) if value not in (None, "") else default


def edgekit_model(recipe, data, work, budget, threads):
    from edgekit.desktop.export.run import export_model
    from edgekit.desktop.train.recipe import load_recipe
    from edgekit.desktop.train.run import train

    rec = load_recipe(recipe)
    rec["threads"] = threads
    rec["epochs"] = 1000                                    # the budget decides
    out = os.path.join(work, recipe)
    start = time.perf_counter()
    result = train(rec, data, out, device="cpu", progress=False, time_budget=budget)
    seconds = time.perf_counter() - start
    onnx_path = os.path.join(work, recipe + ".onnx")
    export_model(result["best_path"], onnx_path, target="x86-cpu", log=lambda *_: None)
    history = result["history"]
    return {"onnx": onnx_path, "train_s": seconds, "epochs": int(history[-1]["epoch"]) + 1,
            "meta_decoder": {"score_threshold": SCORE_THRESHOLD, "top_k": MAX_DETS}}


def yolo_model(data, work, budget, threads):
    import torch
    from ultralytics import YOLO

    from edgekit.desktop.data.scenes import CLASSES

    yaml_path = os.path.join(work, "yolo-data.yaml")        # absolute path: Ultralytics resolves relative ones
    with open(yaml_path, "w") as handle:                    # against its own datasets folder
        handle.write("path: %s\ntrain: images/train\nval: images/val\nnames: [%s]\n" % (data, ", ".join(CLASSES)))
    torch.set_num_threads(threads)
    model = YOLO("yolov8n.yaml")
    start = time.perf_counter()
    model.train(data=yaml_path, imgsz=SIZE, epochs=1000, time=budget / 3600.0, batch=16, device="cpu", workers=0,
                plots=False, val=False, amp=False, project=os.path.join(work, "yolo"), name="yolov8n",
                exist_ok=True, pretrained=False, verbose=False, seed=0,
                deterministic=False)                # as edgekit's --time-budget: the fast algorithms
    seconds = time.perf_counter() - start
    last = str(model.trainer.last)
    trained = YOLO(last)
    onnx_path = trained.export(format="onnx", opset=13, imgsz=SIZE, simplify=False, dynamic=False)
    return {"onnx": str(onnx_path), "train_s": seconds, "epochs": int(model.trainer.epoch) + 1,
            "meta_decoder": {"score_threshold": SCORE_THRESHOLD, "iou_threshold": 0.7, "max_detections": MAX_DETS}}


def score(onnx_path, data, decoder):
    """COCO mAP (pycocotools) of an ONNX file over the val split, through edgekit's Predictor on ORT CPU."""
    from edgekit.desktop.data.scoring import coco_map
    from edgekit.desktop.quantize import evaluate
    from edgekit.meta import read_meta
    from edgekit.vision.yolo import yolo_meta_from_onnx

    meta = read_meta(onnx_path, required=False) or yolo_meta_from_onnx(onnx_path)
    d = dict(meta.decoder)
    d.update(decoder)
    meta = meta.replace(decoder=d)
    evalset = evaluate.load_val(data, meta, show=False)
    run = evaluate.run_model(onnx_path, meta, evalset, show=False)
    preds = [[(x["index"], x["score"]) + tuple(x["box"]) for x in r["detections"]] for r in run.results]
    return coco_map(preds, evalset.targets, meta.num_classes, labels=meta.labels)


def main():
    import numpy as np

    from edgekit.desktop.data.scenes import make_scenes
    from edgekit.desktop.export.graph import layer_costs
    from edgekit.desktop.quantize.evaluate import latency_side_by_side
    from edgekit.profiler.estimate import estimate
    from edgekit.table import format_table

    budget = _env("EDGEKIT_BENCH_DET_BUDGET_S", 45.0, float)
    n_train, n_val = _env("EDGEKIT_BENCH_DET_TRAIN", 300), _env("EDGEKIT_BENCH_DET_VAL", 100)
    threads = _env("EDGEKIT_BENCH_DET_THREADS", 2)
    recipes = [r for r in os.environ.get("EDGEKIT_BENCH_DET_MODELS", "det-mobilenet_v3_small-320,"
                                         "det-mobilenet_v3_large-320").split(",") if r]
    work = os.path.join(OUT_DIR, "detectors")
    os.makedirs(work, exist_ok=True)
    data = make_scenes(os.path.join(work, "scenes-%d-%d-%d" % (SIZE, n_train, n_val)), train=n_train, val=n_val,
                       size=SIZE, seed=0)
    print("data: %d train / %d val scenes at %d px; budget %.0f s per model, %d threads" % (
        n_train, n_val, SIZE, budget, threads), flush=True)
    models = {}
    for recipe in recipes:
        print("training %s ..." % recipe, flush=True)
        models[recipe] = edgekit_model(recipe, data, work, budget, threads)
    yolo_note = None
    if os.environ.get("EDGEKIT_BENCH_DET_YOLO", "1") != "0":
        try:
            import ultralytics  # noqa: F401
        except ImportError:
            yolo_note = "ultralytics not installed: YOLOv8n skipped (pip install --no-deps ultralytics)"
        else:
            print("training yolov8n ...", flush=True)
            models["yolov8n"] = yolo_model(data, work, budget, threads)
    if yolo_note:
        print(yolo_note, flush=True)
    for m in models.values():
        m["coco"] = score(m["onnx"], data, m["meta_decoder"])
        m["nano_fp16_ms"] = estimate(layer_costs(m["onnx"]), "jetson-nano", "fp16")["latency_ms"]
    feed = np.random.default_rng(0).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)
    latency = latency_side_by_side(dict((n, m["onnx"]) for n, m in models.items()), feed, repeats=5, threads=threads)
    rows = []
    for name, m in models.items():
        m["ort_cpu_ms"] = latency[name]
        rows.append([name, "%.0f" % m["train_s"], m["epochs"], "%.4f" % m["coco"]["map50_95"],
                     "%.4f" % m["coco"]["map50"], "%.2f" % m["ort_cpu_ms"], "%.2f" % m["nano_fp16_ms"]])
    print(format_table(rows, ["model", "train s", "epochs", "mAP50-95", "mAP50", "ORT CPU ms", "Nano FP16 est ms"]))
    claims = []
    if "yolov8n" in models:
        y = models["yolov8n"]
        ours = [n for n in models if n != "yolov8n"]
        best = max(ours, key=lambda n: models[n]["coco"]["map50_95"])
        b = models[best]
        if y["coco"]["map50_95"] > 0:
            ratio = b["coco"]["map50_95"] / y["coco"]["map50_95"]
            claims.append(claim("detectors.map50_95_vs_yolov8n[%s]" % best, ratio, ">= 1.0x", "x", ok=ratio >= 1.0))
        else:                      # a ratio to zero says nothing: report both figures, decide nothing
            claims.append(claim("detectors.map50_95_vs_yolov8n[%s]" % best, "%.4f vs %.4f (YOLOv8n at 0: no ratio)"
                                % (b["coco"]["map50_95"], y["coco"]["map50_95"]), ">= 1.0x", ok=None))
        lat = b["nano_fp16_ms"] / y["nano_fp16_ms"]
        claims.append(claim("detectors.nano_latency_vs_yolov8n[%s]" % best, lat, "<= 1.0x", "x", ok=lat <= 1.0))
        cpu = b["ort_cpu_ms"] / y["ort_cpu_ms"]
        claims.append(claim("detectors.ort_cpu_latency_vs_yolov8n[%s]" % best, cpu, "context", "x"))
    for m in models.values():
        m["coco"]["per_class"] = [dict(c) for c in m["coco"]["per_class"]]
    write("detectors", {"budget_s": budget, "train": n_train, "val": n_val, "size": SIZE, "threads": threads,
                        "models": models, "claims": claims, "note": yolo_note})


if __name__ == "__main__":
    main()
