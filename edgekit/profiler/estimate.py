"""Latency on a target predicted from the ONNX graph alone (docs/performance-estimate.md), calibrated on published figures.

    costs = edgekit.desktop.export.graph.layer_costs("model.onnx")      # desktop side (needs onnx)
    estimate(costs, "jetson-nano", "fp16") -> {"target", "precision", "latency_ms", "layers", "validated", ...}

Method
------
1. Kernels. TensorRT fuses element-wise layers (activations, BatchNorm, bias, a residual Add) into the
   kernel that produced their input when that tensor has no other reader and the shape does not grow
   (a broadcast multiply such as squeeze-excitation's scale is its own kernel); consecutive standalone
   element-wise layers fuse with each other; shape-only layers and Concat (TensorRT writes the parts in
   place) cost nothing. What remains is a list of kernels (``kernels``).
2. Cost of one kernel, additive (each term a physical quantity times a fitted coefficient):

       ms = launch + c[class] x FLOPs / peak FLOP/s + c_memory x bytes / bandwidth

   class: ``spatial`` (dense k x k convolutions, k > 1, stride 1: Winograd/implicit GEMM at their best),
   ``other`` (1x1, strided and transposed convolutions, fully connected layers), ``grouped`` (grouped and
   depthwise convolutions); bytes = activations read and written plus weights read, at the precision's
   element size (a fully connected layer streams its weights: VGG's 100 M-weight classifier is priced at
   bandwidth, not FLOPs). Pools, standalone element-wise kernels, resizes, softmax cost launch + bytes.
   A model adds a fixed ``overhead`` (the call and its synchronization).
3. Fit. The six coefficients (overhead, launch, spatial, other, grouped, memory) are fitted by
   non-negative least squares on relative error over every pure-engine figure of
   docs/performance-estimate.md ("The figures it is fitted on") (sections A-C: torch2trt, mmdeploy, kentaroy47), and cross-validated by
   leaving each figure out in turn. The figures, their sources, the per-figure features, the coefficients
   and the leave-one-out errors are data: ``estimate_fit.json`` beside this file, regenerated with
   ``python -m edgekit.desktop.export.estimate_fit`` (desktop side: it builds the torchvision architectures).
   This module only reads that file (device side, Python 3.6, no torch/onnx).

Where it is validated: the Jetson Nano at FP16, on CNN classifiers (ResNet/ResNeXt/SE-ResNet, DenseNet,
VGG, SqueezeNet) at 224-256 px. Depthwise convolutions, attention, detection heads, FP32 and INT8, and every
other target are outside the data: the estimate says "unvalidated" there (other Jetsons use the Nano's
coefficients with their own data-sheet peaks).
"""

import json
import os

from edgekit.errors import ConfigError
from edgekit.targets import get_target

FIT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "estimate_fit.json")
BYTES_PER_ELEMENT = {"fp32": 4, "fp16": 2, "int8": 1}
FEATURES = ("overhead", "launch", "spatial", "other", "grouped", "memory")
COMPUTE_CLASSES = ("spatial", "other", "grouped")

# Element-wise layers: fused into the kernel before them, or one standalone (memory-bound) kernel per chain.
POINTWISE = frozenset((
    "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Add", "Sub", "Mul", "Div",
    "BatchNormalization", "Elu", "Selu", "Softplus", "PRelu", "Erf", "Sqrt", "Pow", "Exp", "Neg", "Abs", "Mish",
    "Gelu", "Where", "Max", "Min", "Reciprocal", "Log", "Floor", "Ceil", "Round", "Softsign", "Sum", "Mean",
    "Not", "And", "Or", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual",
))
# Layers TensorRT removes or folds (shapes, constants) or writes in place (Concat).
FREE = frozenset((
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Constant", "Shape", "Gather", "Cast",
    "ConstantOfShape", "Concat", "Range", "Expand", "Slice", "Size",
))


def kernel_class(cost):
    """'spatial', 'other' or 'grouped' for layers that compute, else 'memory'."""
    op = cost["op"]
    if op in ("Conv", "ConvTranspose"):
        if (cost.get("group") or 1) > 1:
            return "grouped"
        kernel, stride = cost.get("kernel") or [1], cost.get("stride") or [1]
        if op == "Conv" and all(k > 1 for k in kernel) and all(s == 1 for s in stride):
            return "spatial"
        return "other"
    if op in ("Gemm", "MatMul"):
        return "other"
    return "memory"


def kernels(costs):
    """The kernels TensorRT would run for these layer costs (step 1 of the method): [{"name", "op",
    "class", "flops", "elements" (activations read + written + weights), "members" [layer names]}]."""
    readers = {}
    for c in costs:
        for name in c.get("inputs") or ():
            readers[name] = readers.get(name, 0) + 1
    owner = {}          # tensor -> index of the kernel that writes it
    out = []
    for c in costs:
        op = c["op"]
        if op in FREE:
            continue
        if op in POINTWISE:
            host = _fusion_host(c, out, owner, readers)
            if host is not None:
                kern = out[host]
                kern["in"] += max(0, (c.get("input_elements") or 0) - (kern["out"] or 0))
                kern["out"] = c.get("output_elements")
                kern["members"].append(c["name"])
                for name in c.get("outputs") or ():
                    owner[name] = host
                continue
        out.append({"name": c["name"], "op": op, "class": kernel_class(c), "flops": c.get("flops") or 0,
                    "in": c.get("input_elements") or 0, "out": c.get("output_elements"),
                    "weights": c.get("params") or 0, "members": [c["name"]],
                    "standalone_pointwise": op in POINTWISE, "known": c.get("flops") is not None})
        for name in c.get("outputs") or ():
            owner[name] = len(out) - 1
    for kern in out:
        kern["elements"] = kern.pop("in") + (kern.pop("out") or 0) + kern.pop("weights")
    return out


def _fusion_host(cost, out, owner, readers):
    """The kernel a pointwise layer fuses into: the writer of one of its inputs, read by it alone, with the
    same number of elements as its output (no broadcast growth)."""
    for name in cost.get("inputs") or ():
        host = owner.get(name)
        if host is not None and readers.get(name) == 1 and out[host]["out"] == cost.get("output_elements"):
            return host
    return None


def _peaks(target, precision):
    t = get_target(target)
    peaks = t.peak_flops or {}
    if precision not in peaks or not t.memory_bandwidth:
        raise ConfigError("no peak FLOP/s for %s at %s in targets.py" % (t.name, precision),
                          hint="estimate for a target with data-sheet figures (%s), or measure with "
                               "`edgekit profile` on the device" % ", ".join(_targets_with_peaks()))
    return t, peaks[precision], t.memory_bandwidth


def _targets_with_peaks():
    from edgekit.targets import TARGETS

    return sorted(n for n, t in TARGETS.items() if t.peak_flops and t.memory_bandwidth)


def kernel_terms(kern, peak, bandwidth, element_bytes):
    """{feature: value} of one kernel: launch 1, FLOPs of its class at peak (ms), bytes at bandwidth (ms)."""
    terms = {"launch": 1.0, "memory": 1000.0 * kern["elements"] * element_bytes / bandwidth}
    if kern["class"] in COMPUTE_CLASSES:
        terms[kern["class"]] = 1000.0 * kern["flops"] / peak
    return terms


def features(costs, target="jetson-nano", precision="fp16"):
    """The model's features (sums over its kernels, plus overhead 1): what the coefficients multiply."""
    if precision not in BYTES_PER_ELEMENT:
        raise ConfigError("unknown precision %r" % (precision,), hint="use fp32, fp16 or int8")
    _t, peak, bandwidth = _peaks(target, precision)
    total = dict((f, 0.0) for f in FEATURES)
    total["overhead"] = 1.0
    for kern in kernels(costs):
        for key, value in kernel_terms(kern, peak, bandwidth, BYTES_PER_ELEMENT[precision]).items():
            total[key] += value
    return total


def predict(feats, coefficients):
    return sum(coefficients[f] * feats[f] for f in FEATURES)


# -- the fit (pure numpy: runs anywhere; the desktop side supplies the features) ---------------------
def nnls(a, b):
    """min ||a x - b|| with x >= 0, exactly, by trying every set of free coefficients (few columns)."""
    import itertools

    import numpy as np

    a, b = np.asarray(a, float), np.asarray(b, float)
    n = a.shape[1]
    best, best_x = None, np.zeros(n)
    for size in range(1, n + 1):
        for cols in itertools.combinations(range(n), size):
            sub = a[:, cols]
            x, _res, rank, _sv = np.linalg.lstsq(sub, b, rcond=None)
            if rank < size or np.any(x < 0):
                continue
            err = float(np.sum((sub.dot(x) - b) ** 2))
            if best is None or err < best - 1e-15:
                best, best_x = err, np.zeros(n)
                best_x[list(cols)] = x
    return best_x


def fit_coefficients(rows, scaled=(), iterations=50):
    """rows: [(features dict, published ms, source)]. Returns (coefficients, {source: scale}).

    Coefficients minimise the squared relative error, all >= 0 (each is a physical rate or time).
    A source in ``scaled`` (a setup that is not stated, so its board may run slower or faster than the
    reference setup) gets its own scale factor: its figures are modelled as scale x prediction; the
    factor and the coefficients are fitted in turn. Every other source has scale 1. Rounded to 6
    significant digits (stable in JSON)."""
    scale = dict((src, 1.0) for _f, _ms, src in rows)
    coef = None
    for _ in range(iterations if any(src in scaled for _f, _ms, src in rows) else 1):
        a = [[scale[src] * feats[f] / ms for f in FEATURES] for feats, ms, src in rows]
        coef = dict(zip(FEATURES, nnls(a, [1.0] * len(rows))))
        for src in scale:
            if src in scaled:
                ratios = [predict(feats, coef) / ms for feats, ms, s in rows if s == src]
                scale[src] = sum(ratios) / sum(r * r for r in ratios)
    return (dict((f, float("%.6g" % v)) for f, v in coef.items()),
            dict((src, float("%.6g" % v)) for src, v in scale.items()))


def leave_one_out(rows, scaled=()):
    """[(predicted ms, relative error)] for each row, fitted on all the others (a scaled source's factor
    from its remaining figures; 1 when none remain)."""
    out = []
    for i, (feats, ms, src) in enumerate(rows):
        coef, scale = fit_coefficients(rows[:i] + rows[i + 1:], scaled)
        pred = predict(feats, coef) * scale.get(src, 1.0)
        out.append((pred, pred / ms - 1.0))
    return out


def _median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def build_fit(target, precision, figures, feats, sources, scaled=()):
    """The content of estimate_fit.json from figures ({model, input, ms, source, kind}), the features of
    each model@input, the sources' descriptions and the sources fitted with their own scale."""
    used = [f for f in figures if f["kind"] == "engine"]
    rows = [(feats["%s@%d" % (f["model"], f["input"])], f["ms"], f["source"]) for f in used]
    coef, scale = fit_coefficients(rows, scaled)
    loo = leave_one_out(rows, scaled)
    per = []
    for fig, (feat, ms, src), (pred, err) in zip(used, rows, loo):
        per.append({"model": fig["model"], "input": fig["input"], "source": src, "published_ms": ms,
                    "fitted_ms": round(predict(feat, coef) * scale[src], 3), "loo_ms": round(pred, 3),
                    "loo_error_pct": round(100.0 * err, 2)})
    errors = [abs(p["loo_error_pct"]) for p in per]
    return {
        "target": target, "precision": precision, "features": list(FEATURES),
        "method": "kernels after TensorRT-style fusion; ms = overhead + sum over kernels of (launch + "
                  "c[class] x FLOPs/peak + c_memory x bytes/bandwidth); non-negative least squares on relative "
                  "error over %d published figures" % len(rows),
        "regenerate": "python -m edgekit.desktop.export.estimate_fit",
        "sources": sources, "figures": figures, "scaled_sources": sorted(scaled), "source_scale": scale,
        "model_features": dict((k, dict((f, round(v, 6)) for f, v in feats[k].items())) for k in sorted(feats)),
        "coefficients": coef,
        "loo": {"median_abs_error_pct": round(_median(errors), 2), "worst_abs_error_pct": round(max(errors), 2),
                "figures": per},
    }


def refit(fit):
    """Coefficients and source scales recomputed from a fit file's own figures and features."""
    rows = [(fit["model_features"]["%s@%d" % (f["model"], f["input"])], f["ms"], f["source"])
            for f in fit["figures"] if f["kind"] == "engine"]
    return fit_coefficients(rows, fit.get("scaled_sources") or ())


def format_loo(fit):
    """Lines for people: the coefficients and the leave-one-out table."""
    lines = ["coefficients (%s %s): %s; source scale: %s" % (fit["target"], fit["precision"], ", ".join(
        "%s=%.4g" % (f, fit["coefficients"][f]) for f in FEATURES), ", ".join(
        "%s %.3f" % kv for kv in sorted(fit["source_scale"].items())))]
    lines.append("%-18s %5s %-11s %9s %9s %9s %8s" % ("model", "input", "source", "published", "fitted", "LOO",
                                                   "LOO err"))
    for p in fit["loo"]["figures"]:
        lines.append("%-18s %5d %-11s %9.2f %9.2f %9.2f %+7.1f%%" % (
            p["model"], p["input"], p["source"], p["published_ms"], p["fitted_ms"], p["loo_ms"], p["loo_error_pct"]))
    lines.append("leave-one-out |error|: median %.1f%%, worst %.1f%% over %d figures" % (
        fit["loo"]["median_abs_error_pct"], fit["loo"]["worst_abs_error_pct"], len(fit["loo"]["figures"])))
    if fit.get("fp32_check"):
        lines.append("FP32 (not fitted; FP16 coefficients at FP32 peak and element size): " + ", ".join(
            "%s@%d %+.0f%%" % (c["model"], c["input"], c["error_pct"]) for c in fit["fp32_check"]))
    return "\n".join(lines)


_FIT_CACHE = {}


def load_fit(path=FIT_FILE):
    if path not in _FIT_CACHE:
        with open(path) as handle:
            _FIT_CACHE[path] = json.load(handle)
    return _FIT_CACHE[path]


# -- the estimate ------------------------------------------------------------------------------------
def estimate(costs, target, precision="fp16", fit=None):
    """Predicted batch-1 latency: {"target", "precision", "latency_ms", "overhead_ms", "layers": [{"name",
    "op", "ms", "bound", "class"}], "method", "error_note", "validated", "unknown_layers"}."""
    if precision not in BYTES_PER_ELEMENT:
        raise ConfigError("unknown precision %r" % (precision,), hint="use fp32, fp16 or int8")
    t, peak, bandwidth = _peaks(target, precision)
    fit = fit or load_fit()
    coef = fit["coefficients"]
    layers = []
    depthwise = 0
    for kern in kernels(costs):
        terms = kernel_terms(kern, peak, bandwidth, BYTES_PER_ELEMENT[precision])
        parts = dict((k, coef[k] * v) for k, v in terms.items())
        compute = sum(parts.get(k, 0.0) for k in COMPUTE_CLASSES)
        bound = max((("compute", compute), ("memory", parts["memory"]), ("launch", parts["launch"])),
                    key=lambda kv: kv[1])[0]
        layers.append({"name": kern["name"], "op": kern["op"], "ms": sum(parts.values()), "bound": bound,
                       "class": kern["class"]})
        depthwise += kern["class"] == "grouped"
    unknown = [c["name"] for c in costs if c.get("flops") is None and c["op"] not in FREE]
    validated = t.name == fit["target"] and precision == fit["precision"]
    loo = fit["loo"]
    if validated:
        note = ("fitted on %d published %s %s figures (CNN classifiers at 224-256 px); leave-one-out error "
                "median %.1f%%, worst %.1f%%" % (len(loo["figures"]), fit["target"], precision.upper(),
                                                 loo["median_abs_error_pct"], loo["worst_abs_error_pct"]))
        if depthwise:
            note += "; grouped/depthwise convolutions are fitted on one model (ResNeXt-50) only"
    else:
        note = ("unvalidated: no published %s %s figures; %s's coefficients with %s's data-sheet peaks "
                "(an extrapolation)" % (t.name, precision.upper(), fit["target"], t.name))
    if unknown:
        note += "; %d layer(s) with unknown shapes counted as launches only" % len(unknown)
    return {"target": t.name, "precision": precision, "latency_ms": coef["overhead"] + sum(x["ms"] for x in layers),
            "overhead_ms": coef["overhead"], "layers": layers, "method": fit["method"], "error_note": note,
            "validated": validated, "unknown_layers": unknown}
