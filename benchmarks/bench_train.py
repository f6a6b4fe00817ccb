"""Training: throughput (images/s) of the tiny recipes, and time to reach their accuracy goals on this CPU.

Goals (issue #2 item 7 and issue #3):
  shapes-classifier  val accuracy >= 0.95 in under 60 s
  shapes-detector    val mAP@0.5 >= 0.90 in under 5 minutes
Each recipe is trained as shipped, except that it stops at the epoch that first reaches the goal
(early_stop.target); the shapes set is generated (and cached) before the clock starts. "time to goal" is
the wall time from the first training step to the end of the validation that reached the goal; the
whole train() call (dataset decode, model build, checkpoints) is reported alongside.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import OUT_DIR, claim, write  # noqa: E402

GOALS = {"shapes-classifier": ("accuracy", 0.95, 60.0), "shapes-detector": ("map50", 0.90, 300.0)}


def run_recipe(name, work):
    from edgekit.desktop.train.recipe import load_recipe
    from edgekit.desktop.train.run import resolve_data, train
    from edgekit.desktop.train.ddp import DistInfo

    metric, goal, budget = GOALS[name]
    rec = load_recipe(name)
    rec["early_stop"] = dict(rec["early_stop"], target=goal)
    t0 = time.perf_counter()
    data = resolve_data("shapes", rec, work, DistInfo(), cache=os.path.join(work, "data"))
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = train(rec, data, os.path.join(work, name), progress=False)
    total_s = time.perf_counter() - t0
    history = result["history"]
    reached = [h for h in history if h[metric] >= goal]
    rates = sorted(h["images_per_s"] for h in history)
    return {"recipe": name, "data": data, "metric": metric, "goal": goal, "budget_s": budget, "dataset_s": gen_s,
            "train_call_s": total_s, "epochs": len(history), "best": result["best"]["value"],
            "time_to_goal_s": reached[0]["elapsed_s"] if reached else None,
            "epoch_reached": reached[0]["epoch"] + 1 if reached else None,
            "images_per_s_median": rates[len(rates) // 2],
            "history": [{k: v for k, v in h.items() if k != "per_class_ap50"} for h in history]}


def onnx_metric(name, ckpt, data, work):
    """Export the checkpoint (jetson-nano preset, opset 13) and score it through ONNX Runtime with the shared
    Preprocessor and decoder -- the path the daemon takes."""
    from edgekit.desktop.data.datasets import list_image_folder, load_yolo
    from edgekit.desktop.export.run import export_model
    from edgekit.predictor import Predictor
    from edgekit.vision.preprocess import read_image

    path = os.path.join(work, name + ".onnx")
    export_model(ckpt, path, target="jetson-nano")
    with Predictor.open(path, backend="onnxruntime") as model:
        if GOALS[name][0] == "accuracy":
            samples, _ = list_image_folder(os.path.join(data, "val"))
            hits = [model.predict(read_image(p))["top"][0]["index"] == c for p, c in samples]
            return sum(hits) / float(len(hits))
        from edgekit.vision.centernet import to_eval_tuples
        from edgekit.vision.metrics import evaluate_detections

        model.meta.decoder["score_threshold"] = 0.05          # as in training validation
        samples, names = load_yolo(data, "val")
        preds, gts = [], []
        for p, labels in samples:
            image = read_image(p)
            h, w = image.shape[:2]
            preds.append(to_eval_tuples(model.predict(image)))
            gts.append([(c, (x - bw / 2) * w, (y - bh / 2) * h, (x + bw / 2) * w, (y + bh / 2) * h)
                        for c, x, y, bw, bh in labels])
        return evaluate_detections(preds, gts, len(names))["map50"]


def main():
    import torch

    work = os.path.join(OUT_DIR, "train-work")
    results = {"torch_threads": torch.get_num_threads(), "recipes": {}, "loadavg_start": os.getloadavg()}
    claims = []
    for name, (metric, goal, budget) in GOALS.items():
        r = run_recipe(name, work)
        results["recipes"][name] = r
        claims.append(claim("%s training throughput" % name, r["images_per_s_median"], "reported", " img/s"))
        claims.append(claim("%s best val %s" % (name, metric), r["best"], ">= %.2f" % goal, ok=r["best"] >= goal))
        t = r["time_to_goal_s"]
        claims.append(claim("%s time to %s >= %.2f" % (name, metric, goal), t if t is not None else "not reached",
                            "< %.0f s" % budget, " s" if t is not None else "", ok=t is not None and t < budget))
        claims.append(claim("%s whole train() call" % name, r["train_call_s"], "reported", " s"))
        r["onnx_" + metric] = onnx_metric(name, os.path.join(work, name, "best.pt"), r["data"], work)
        claims.append(claim("%s val %s of the exported ONNX via ONNX Runtime + shared decoder" % (name, metric),
                            r["onnx_" + metric], "== training val %.4f" % r["best"],
                            ok=abs(r["onnx_" + metric] - r["best"]) < 0.005))
    results["claims"] = claims
    results["loadavg_end"] = os.getloadavg()
    print("load average (1, 5, 15 min) at start %s, at end %s: other processes share these cores"
          % (results["loadavg_start"], results["loadavg_end"]))
    write("train", results)


if __name__ == "__main__":
    main()
