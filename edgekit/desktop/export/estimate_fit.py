"""Calibrate the Jetson latency estimate on published figures (desktop side: needs torch, torchvision, onnx).

    python -m edgekit.desktop.export.estimate_fit            # rebuild edgekit/profiler/estimate_fit.json
    python -m edgekit.desktop.export.estimate_fit --check    # recompute and compare with the stored file

What it does, for every published figure in ``FIGURES`` (quoted from docs/performance-estimate.md ("The figures it is fitted on") with
the source of each):
1. builds the figure's architecture (torchvision with random weights: weights do not change the cost;
   SE-ResNet-50 is built here as mmcls defines it), exports it to ONNX at the figure's input size and
   counts its per-layer costs (``edgekit.desktop.export.graph.layer_costs``; cached under runs/estimate/);
2. reduces the costs to the estimate's features (``edgekit.profiler.estimate.features``: kernels after
   TensorRT-style fusion, FLOPs per kernel class at peak, bytes at bandwidth);
3. fits the coefficients (``edgekit.profiler.estimate.fit_coefficients``) on every pure-engine figure
   and cross-validates by leaving each figure out in turn;
4. writes features, coefficients and the leave-one-out errors to ``edgekit/profiler/estimate_fit.json``
   (the device side reads only that file; it never needs torch).
"""

import argparse
import io
import json
import os
import sys
import warnings

FIT_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "profiler", "estimate_fit.json")
CACHE_DIR = os.path.join("runs", "estimate")

SOURCES = {
    "torch2trt": "NVIDIA-AI-IOT/torch2trt benchmarks/JETSON_NANO.md (commit ebfa3bc, 2019-06-19): torch2trt "
                 "fp16_mode, batch 1, mean of 50 synchronized calls (wall clock, includes the Python call), "
                 "JetPack 4.2 era",
    "mmdeploy": "open-mmlab/mmdeploy docs/en/03-benchmark/benchmark.md (3f8604b): Jetson Nano 2 GB, TensorRT "
                "FP16, static graph, batch 1, synchronized after each inference",
    "kentaroy47": "kentaroy47/benchmark-FP32-FP16-INT8-with-TensorRT README (501e747): torch2trt on a Jetson Nano, "
                  "mean of 199 synchronized calls, JetPack/TensorRT not stated",
}

# Sources fitted with their own scale factor: kentaroy47 states neither JetPack, TensorRT nor clocks, and its
# figures sit about 20% above what the other two imply (ResNet-18 at 256 px is 1.58x torch2trt's 224 px figure
# for 1.31x the FLOPs). torch2trt and mmdeploy share the reference scale: their one common figure (ResNet-50,
# 224 px) agrees within 2.5%. The estimate on the device predicts at the reference scale.
SCALED_SOURCES = ("kentaroy47",)

# (architecture, input size, published FP16 ms, source key). All are pure engine latency (the network call,
# synchronized; no capture or pre/post-processing). End-to-end figures (nano-figures.md section E) and the
# weaker section D figures (other frameworks' graphs, memcpy included) are not used.
FIGURES = (
    ("resnet18", 224, 11.4, "torch2trt"), ("resnet50", 224, 29.8, "torch2trt"),
    ("resnet101", 224, 51.1, "torch2trt"), ("resnet152", 224, 72.3, "torch2trt"),
    ("squeezenet1_0", 224, 7.6, "torch2trt"), ("densenet169", 224, 31.2, "torch2trt"),
    ("densenet201", 224, 40.8, "torch2trt"), ("densenet161", 224, 65.8, "torch2trt"),
    ("vgg11", 224, 55.1, "torch2trt"), ("vgg13", 224, 68.7, "torch2trt"), ("vgg16", 224, 85.1, "torch2trt"),
    ("vgg11_bn", 224, 54.8, "torch2trt"), ("vgg13_bn", 224, 68.5, "torch2trt"), ("vgg16_bn", 224, 84.3, "torch2trt"),
    ("resnet50", 224, 30.54, "mmdeploy"), ("resnext50_32x4d", 224, 49.18, "mmdeploy"),
    ("se_resnet50", 224, 48.78, "mmdeploy"),
    ("resnet18", 256, 18.0, "kentaroy47"), ("resnet34", 256, 30.0, "kentaroy47"),
    ("resnet50", 256, 42.0, "kentaroy47"),
)


# FP32 figures of the same sources: not fitted on; the FP16 coefficients at FP32 peak and element size are
# checked against them (a report of how far the FP16 fit carries, not a validation of FP32 estimates).
FP32_FIGURES = (
    ("resnet50", 224, 59.32, "mmdeploy"), ("resnext50_32x4d", 224, 88.10, "mmdeploy"),
    ("se_resnet50", 224, 74.59, "mmdeploy"), ("resnet18", 256, 26.0, "kentaroy47"),
    ("resnet34", 256, 48.0, "kentaroy47"), ("resnet50", 256, 79.0, "kentaroy47"),
)


def figures():
    return [{"model": m, "input": s, "ms": ms, "source": src, "kind": "engine"} for m, s, ms, src in FIGURES]


def _se_resnet50():
    """SE-ResNet-50 as mmcls builds it: a squeeze-excitation block (ratio 16) after each bottleneck's
    last BatchNorm, before the residual add."""
    import torch
    from torch import nn
    from torchvision.models.resnet import Bottleneck, ResNet

    class SEBottleneck(Bottleneck):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            channels = self.bn3.num_features
            squeeze = max(8, int(channels // 16 + 4) // 8 * 8)
            self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, squeeze, 1), nn.ReLU(inplace=True),
                                    nn.Conv2d(squeeze, channels, 1), nn.Sigmoid())

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            out = out * self.se(out)
            return torch.relu(out + identity)

    return ResNet(SEBottleneck, [3, 4, 6, 3])


def build(name):
    """The torch module of a figure's architecture, random weights."""
    import torchvision

    if name == "se_resnet50":
        return _se_resnet50()
    return getattr(torchvision.models, name)(weights=None)


def export_costs(name, size, cache_dir=CACHE_DIR):
    """layer_costs of architecture ``name`` at ``size`` x ``size`` (cached as JSON under ``cache_dir``)."""
    path = os.path.join(cache_dir, "%s@%d.json" % (name, size)) if cache_dir else None
    if path and os.path.exists(path):
        with open(path) as handle:
            return json.load(handle)
    import onnx
    import torch

    from edgekit.desktop.export.graph import layer_costs

    module = build(name).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, torch.zeros(1, 3, size, size), buf, dynamo=False, opset_version=13,
                          input_names=["images"], output_names=["logits"], do_constant_folding=True)
    costs = layer_costs(onnx.load_from_string(buf.getvalue()))
    if path:
        from edgekit.fsutil import atomic_write_bytes

        os.makedirs(cache_dir, exist_ok=True)
        atomic_write_bytes(path, json.dumps(costs).encode())
    return costs


def compute(cache_dir=CACHE_DIR, log=None):
    """The fit file's content: {"target", "precision", "figures", "features", "coefficients", "loo", ...}."""
    from edgekit.profiler import estimate as est

    feats = {}
    for fig in figures():
        key = "%s@%d" % (fig["model"], fig["input"])
        if key not in feats:
            if log:
                log("costs of %s" % key)
            feats[key] = est.features(export_costs(fig["model"], fig["input"], cache_dir), "jetson-nano", "fp16")
    fit = est.build_fit("jetson-nano", "fp16", figures(), feats, SOURCES, scaled=SCALED_SOURCES)
    check = []
    for model, size, ms, src in FP32_FIGURES:
        f32 = est.features(export_costs(model, size, cache_dir), "jetson-nano", "fp32")
        pred = est.predict(f32, fit["coefficients"]) * fit["source_scale"].get(src, 1.0)
        check.append({"model": model, "input": size, "source": src, "published_ms": ms, "estimate_ms": round(pred, 3),
                      "error_pct": round(100.0 * (pred / ms - 1), 2)})
    fit["fp32_check"] = check
    return fit


def _close(a, b, rel=1e-4):
    """Two {name: number} tables equal to ``rel`` (a refit on another machine may differ in the last digit)."""
    return bool(a) and set(a) == set(b) and all(abs(a[k] - b[k]) <= rel * max(abs(a[k]), abs(b[k]), 1e-9) for k in a)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m edgekit.desktop.export.estimate_fit", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="recompute and compare with the stored file")
    parser.add_argument("--out", default=FIT_PATH)
    parser.add_argument("--cache", default=CACHE_DIR, help="where the per-model costs are cached (default %(default)s)")
    args = parser.parse_args(argv)
    data = compute(args.cache, log=lambda text: print(text, file=sys.stderr))
    from edgekit.profiler.estimate import format_loo

    print(format_loo(data))
    if args.check:
        with open(args.out) as handle:
            stored = json.load(handle)
        same = _close(stored.get("coefficients"), data["coefficients"]) and _close(
            stored.get("source_scale"), data["source_scale"])
        print("stored coefficients %s" % ("match" if same else "DIFFER: regenerate with "
                                          "python -m edgekit.desktop.export.estimate_fit"))
        return 0 if same else 1
    from edgekit.fsutil import atomic_write_bytes

    atomic_write_bytes(args.out, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())
    print("wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
