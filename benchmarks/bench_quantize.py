"""INT8 on ONNX Runtime CPU: speed-up and accuracy cost, measured in one run, side by side.

Claims:
  - resnet18 / mobilenet_v2 (torchvision, random weights, 224x224): ORT CPU latency FP32 / INT8 (U8S8,
    the x86-cpu scheme), alternating A/B blocks, median of the blocks. The S8S8 model (TensorRT scheme)
    is timed in the same rotation for resnet18, as context for the scheme choice.
  - shapes-classifier (trained here with the training API, 64x64): top-1 accuracy drop FP32 -> INT8 on
    its val split, for x86-cpu (U8S8) and for a TensorRT INT8 target (S8S8 QDQ run by ORT CPU).
  - shapes-detector (trained here): mAP@0.5 drop FP32 -> INT8 (x86-cpu), when the detector trains.

    .venv/bin/python benchmarks/bench_quantize.py            # or: python benchmarks/run.py quantize
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from _common import ROOT, claim, write  # noqa: E402

WORK = os.path.join(ROOT, "runs", "bench", "quantize-work")
SPEED_MODELS = (("resnet18", 2.5), ("mobilenet_v2", 1.8))
# The recipe's 20 epochs take too long on a shared 2-core box; the accuracy *drop* is what is measured.
DETECTOR_EPOCHS = int(os.environ.get("EDGEKIT_BENCH_DETECTOR_EPOCHS", "12"))


def _log(message):
    print(message, flush=True)


def calib_images(folder, count=48, size=256, seed=0):
    """Synthetic photos-ish images: smooth colour fields with shapes and noise."""
    import cv2
    import numpy as np

    if os.path.isdir(folder) and len(os.listdir(folder)) >= count:
        return folder
    os.makedirs(folder, exist_ok=True)
    rng = np.random.RandomState(seed)
    for i in range(count):
        base = cv2.resize(rng.randint(0, 256, (4, 4, 3)).astype(np.uint8), (size, size),
                          interpolation=cv2.INTER_CUBIC)
        for _ in range(4):
            centre = tuple(int(v) for v in rng.randint(0, size, 2))
            cv2.circle(base, centre, int(rng.randint(10, 60)), tuple(int(v) for v in rng.randint(0, 256, 3)), -1)
        noise = rng.normal(0, 8, base.shape)
        cv2.imwrite(os.path.join(folder, "img_%03d.png" % i), np.clip(base + noise, 0, 255).astype(np.uint8))
    return folder


def speed(results):
    from edgekit.desktop.quantize.evaluate import latency_side_by_side
    from edgekit.desktop.export.run import export_model
    from edgekit.desktop.quantize.run import quantize

    calib = calib_images(os.path.join(WORK, "calib"))
    for arch, goal in SPEED_MODELS:
        fp32 = os.path.join(WORK, arch + ".onnx")
        export_model("torchvision:" + arch, fp32, target="x86-cpu", input_size=224, log=lambda *_: None)
        paths = {"fp32": fp32, "int8": os.path.join(WORK, arch + ".int8.onnx")}
        quantize(fp32, paths["int8"], "int8", "x86-cpu", calib=calib, calib_count=32, show=False)
        if arch == "resnet18":
            paths["s8s8"] = os.path.join(WORK, arch + ".s8s8.onnx")
            quantize(fp32, paths["s8s8"], "int8", "jetson-orin-nano", calib=calib, calib_count=32, show=False)
        import numpy as np

        feed = np.random.RandomState(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
        entry = {"bytes": dict((k, os.path.getsize(v)) for k, v in paths.items())}
        # ORT's default threads (both cores) and 1 thread: on a shared 2-core box the 1-thread ratio is the
        # steadier one; both are measured side by side, A/B alternating, median of 9 blocks.
        for threads, label in ((None, "default threads"), (1, "1 thread")):
            lat = latency_side_by_side(paths, feed, repeats=9, block_ms=400.0, threads=threads)
            ratio = lat["fp32"] / lat["int8"]
            entry[label] = {"latency_ms": lat, "speedup_int8": ratio}
            results["claims"].append(claim("%s ORT CPU speed-up INT8 U8S8 vs FP32 (%s)" % (arch, label), ratio,
                                           ">= %.1fx" % goal, unit="x", ok=ratio >= goal))
            if "s8s8" in lat:
                entry[label]["speedup_s8s8"] = lat["fp32"] / lat["s8s8"]
                results["claims"].append(claim("%s ORT CPU speed-up INT8 S8S8 (TensorRT scheme) vs FP32 (%s)"
                                               % (arch, label), entry[label]["speedup_s8s8"],
                                               "context: why x86-cpu uses U8S8", unit="x"))
            _log("  %s, %s: fp32 %.2f ms, int8 %.2f ms%s" % (
                arch, label, lat["fp32"], lat["int8"], ", s8s8 %.2f ms" % lat["s8s8"] if "s8s8" in lat else ""))
        results["speed"][arch] = entry


def _train_and_export(recipe, task, data, out_dir, epochs=None):
    from edgekit.desktop.export.run import export_model
    from edgekit.desktop.train.run import train

    onnx_path = os.path.join(out_dir, recipe + ("-e%d" % epochs if epochs else "") + ".onnx")
    if not os.path.exists(onnx_path):
        started = time.perf_counter()
        trained = train(recipe, data, os.path.splitext(onnx_path)[0] + "-train", epochs=epochs, progress=False)
        _log("  trained %s in %.0f s: %s" % (recipe, time.perf_counter() - started, trained.get("best")))
        export_model(trained["best_path"], onnx_path, target="x86-cpu", log=lambda *_: None)
    return onnx_path


MIN_TRAINED_ACCURACY = 0.9       # below this the model is not "trained" and the drop says little


def own_classifier(data, path, epochs=8, seed=0):
    """Fallback: a small CNN trained here on the shapes ImageFolder (images through the shared
    Preprocessor), exported with edgekit metadata."""
    import numpy as np
    import onnx
    import torch

    from edgekit.desktop.data.datasets import list_image_folder
    from edgekit.meta import IMAGENET_MEAN, IMAGENET_STD, ModelMeta, attach_to_onnx
    from edgekit.vision.preprocess import Preprocessor, read_image

    samples, names = list_image_folder(os.path.join(data, "train"))
    meta = ModelMeta(task="classification", labels=names, input={"name": "images", "shape": [1, 3, 64, 64]},
                     preprocess={"color": "RGB", "resize": "stretch", "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
                     decoder={"type": "classification", "top_k": 3}, source={"recipe": "bench_quantize fallback"})
    pre = Preprocessor.from_meta(meta)
    x = torch.from_numpy(np.concatenate([pre(read_image(p))[0] for p, _ in samples]))
    y = torch.tensor([c for _, c in samples])
    torch.manual_seed(seed)

    def block(cin, cout):
        return [torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False), torch.nn.BatchNorm2d(cout), torch.nn.ReLU(),
                torch.nn.MaxPool2d(2)]

    model = torch.nn.Sequential(*(block(3, 16) + block(16, 32) + block(32, 64)), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(64, len(names)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x))
        for i in range(0, len(x), 32):
            idx = order[i:i + 32]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    torch.onnx.export(model, torch.zeros(1, 3, 64, 64), path, input_names=["images"], output_names=["logits"],
                      opset_version=13, dynamo=False)
    proto = onnx.load(path)
    attach_to_onnx(proto, meta)
    onnx.save(proto, path)
    return path


def classifier_accuracy(results):
    from edgekit.desktop.data.datasets import make_shapes
    from edgekit.desktop.quantize.run import quantize

    data = make_shapes(os.path.join(WORK, "shapes-cls"), task="classification", train=2000, val=400, size=64)
    model, source = None, "edgekit.desktop.train.run (recipe shapes-classifier)"
    try:
        model = _train_and_export("shapes-classifier", "classification", data, WORK)
    except Exception as exc:
        results["errors"]["classifier-training"] = "%s: %s" % (type(exc).__name__, exc)
    if model is not None:
        first = quantize(model, os.path.join(WORK, "probe.fp16.onnx"), "fp16", "jetson-nano",
                         val=os.path.join(data, "val"), show=False)
        if first["reference"]["accuracy"] < MIN_TRAINED_ACCURACY:
            _log("  the recipe's model reaches %.1f%% val accuracy only: training a small CNN here instead"
                 % (100 * first["reference"]["accuracy"]))
            model = None
    if model is None:
        source = "own small CNN trained in this benchmark (fallback)"
        model = own_classifier(data, os.path.join(WORK, "own-classifier.onnx"))
    results["accuracy"]["classifier_source"] = source
    for target, scheme in (("x86-cpu", "U8S8"), ("jetson-orin-nano", "S8S8")):
        report = quantize(model, os.path.join(WORK, "shapes-classifier.%s.int8.onnx" % target), "int8", target,
                          calib=os.path.join(data, "train"), calib_count=200, val=os.path.join(data, "val"),
                          show=False)
        results["accuracy"]["shapes-classifier/" + target] = {
            "reference": report["reference"]["accuracy"], "quantized": report["quantized"]["accuracy"],
            "drop_pp": report["drop_pp"], "agreement": report["quantized"]["agreement"]}
        results["claims"].append(claim("shapes-classifier INT8 %s (%s) top-1 drop (FP32 accuracy %.3f)"
                                       % (scheme, target, report["reference"]["accuracy"]),
                                       report["drop_pp"], "<= 1 pp", unit=" pp", ok=report["drop_pp"] <= 1.0))


def detector_accuracy(results):
    from edgekit.yamlfile import load_yaml
    from edgekit.desktop.data.datasets import make_shapes
    from edgekit.desktop.quantize.run import quantize

    data = make_shapes(os.path.join(WORK, "shapes-det"), task="detection", train=2000, val=200, size=128)
    model = _train_and_export("shapes-detector", "detection", data, WORK, epochs=DETECTOR_EPOCHS)
    cfg = load_yaml(os.path.join(data, "data.yaml"))
    calib = os.path.normpath(os.path.join(data, str(cfg.get("path") or "."), str(cfg["train"])))
    report = quantize(model, os.path.join(WORK, "shapes-detector.int8.onnx"), "int8", "x86-cpu", calib=calib,
                      calib_count=200, val=data, show=False)
    results["accuracy"]["shapes-detector/x86-cpu"] = {
        "reference": report["reference"]["map50"], "quantized": report["quantized"]["map50"],
        "drop_pp": report["drop_pp"], "agreement": report["quantized"]["agreement"]}
    results["accuracy"]["shapes-detector/x86-cpu"]["epochs"] = DETECTOR_EPOCHS
    results["claims"].append(claim("shapes-detector INT8 U8S8 (x86-cpu) mAP@0.5 drop (FP32 mAP@0.5 %.3f after %d "
                                   "epochs)" % (report["reference"]["map50"], DETECTOR_EPOCHS), report["drop_pp"],
                                   "<= 1 pp", unit=" pp", ok=report["drop_pp"] <= 1.0))


def main():
    os.makedirs(WORK, exist_ok=True)
    results = {"claims": [], "speed": {}, "accuracy": {}, "errors": {}}
    for name, part in (("speed", speed), ("classifier", classifier_accuracy), ("detector", detector_accuracy)):
        started = time.perf_counter()
        try:
            part(results)
        except Exception as exc:          # one part failing must not hide the others' figures
            results["errors"][name] = "%s: %s" % (type(exc).__name__, exc)
            _log("  %s part failed: %s" % (name, results["errors"][name]))
        _log("  (%s part: %.0f s)" % (name, time.perf_counter() - started))
    write("quantize", results)
    return results


if __name__ == "__main__":
    main()
