"""Latency on a target predicted from the ONNX graph alone (docs/profiling.md): a per-layer roofline.

    costs = edgekit.desktop.export.graph.layer_costs("model.onnx")      # desktop side (needs onnx)
    estimate(costs, "jetson-nano", "fp16") -> {"target", "precision", "latency_ms", "layers", ...}

Method
------
TensorRT fuses element-wise layers (ReLU, residual Add, BatchNorm, bias) into the convolution
before them and removes shape-only layers, so those cost nothing here. Every other layer costs

    ms = max(FLOPs / (eff_class x peak FLOP/s at the precision),  bytes / (EFF_MEMORY x bandwidth))

bytes = (input + output activations + weights) elements x bytes per element at the precision.
Peak FLOP/s and bandwidth are the target's data-sheet figures (targets.py). Two compute
efficiencies, one per kernel class, are the only fitted numbers:

- ``spatial``: convolutions with a k x k kernel (k > 1), stride 1, no groups: the layers cuDNN and
  TensorRT run with Winograd or implicit-GEMM tactics at their best;
- ``other``: everything else that computes (1x1 and strided convolutions, fully connected layers,
  pools, resizes).

Calibration (``fit``) solves both from the two published Jetson Nano FP16 batch-1 figures
(torch2trt benchmarks/JETSON_NANO.md, targets.py ``latency_calibration``): ResNet-18 11.4 ms and
ResNet-50 29.8 ms at 224x224. Both nets have the same 3.0 GFLOP of stride-1 3x3 convolutions;
ResNet-50 adds 4.6 GFLOP of mostly 1x1 convolutions, so the pair separates the two classes.
Derivation (benchmarks/bench_profiler.py and tests/profiler/test_estimate.py re-run it on the
torchvision graphs): EFFICIENCY["spatial"] = 0.729 and EFFICIENCY["other"] = 0.529 of 472 GFLOP/s
(344 and 250 GFLOP/s). Two numbers fitted to two figures reproduce them by construction (error
below 1% after rounding the constants); that is not a validation. A one-factor model fitted to
ResNet-18 alone predicts ResNet-50 at 25.7 ms (-14%), which is the spread to expect when a model's
mix of layers differs from the calibration models'. No other published Nano figures were at hand, so
the error on other models is unmeasured.

Known weak spots: depthwise convolutions (memory-bound; their real efficiency is lower than
EFF_MEMORY suggests), large fully connected layers that stream weights (priced at bandwidth, which
the Nano's shared LPDDR4 rarely reaches), layers TensorRT does not fuse that this model assumes
fused (standalone element-wise chains, attention), per-kernel launch overhead on tiny models, and
any target other than the Nano (the efficiencies are Maxwell's; tensor-core GPUs differ).
"""

from edgekit.errors import ConfigError
from edgekit.targets import get_target

# Fitted on the Nano (see the module docstring); re-derive with fit() when the method changes.
EFFICIENCY = {"spatial": 0.729, "other": 0.529}
# Fraction of data-sheet bandwidth a streaming kernel reaches: an assumption (not fitted: no
# layer of the calibration nets is memory-bound enough to pin it down).
EFF_MEMORY = 0.7
BYTES_PER_ELEMENT = {"fp32": 4, "fp16": 2, "int8": 1}
# Layers TensorRT fuses into the preceding kernel or removes.
FUSED_OPS = frozenset((
    "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Add", "Sub", "Mul", "Div",
    "BatchNormalization", "Identity", "Dropout", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Constant",
    "Shape", "Gather", "Cast", "ConstantOfShape", "Concat", "Unsqueeze", "Range", "Expand", "Slice",
))
METHOD = ("per-layer roofline: max(FLOPs / (efficiency x peak FLOP/s), bytes / (%.2f x bandwidth)); "
          "element-wise and shape layers fused; efficiencies spatial=%.3f other=%.3f fitted on "
          "ResNet-18/50 FP16 Jetson Nano figures" % (EFF_MEMORY, EFFICIENCY["spatial"], EFFICIENCY["other"]))
ERROR_NOTE = ("reproduces the two calibration figures (ResNet-18 11.4 ms, ResNet-50 29.8 ms, Nano FP16) "
              "within 1%; unvalidated on other models (a one-factor fit is off by 14% between the two); "
              "weak on depthwise convolutions, large fully connected layers and non-Nano targets")


def kernel_class(cost):
    """'fused', 'spatial' or 'other'."""
    if cost["op"] in FUSED_OPS:
        return "fused"
    if cost["op"] == "Conv" and cost.get("group", 1) == 1:
        kernel, stride = cost.get("kernel") or [1], cost.get("stride") or [1]
        if all(k > 1 for k in kernel) and all(s == 1 for s in stride):
            return "spatial"
    return "other"


def _bytes(cost, element_bytes):
    elements = [cost.get("input_elements"), cost.get("output_elements"), cost.get("params")]
    if all(e is not None for e in elements):
        return sum(elements) * element_bytes
    return sum(cost.get(k) or 0 for k in ("input_bytes", "output_bytes", "weight_bytes"))


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


def layer_times(costs, peak, bandwidth, element_bytes, efficiency=None, eff_memory=EFF_MEMORY):
    eff = efficiency or EFFICIENCY
    out = []
    for cost in costs:
        cls = kernel_class(cost)
        if cls == "fused":
            continue
        compute = (cost.get("flops") or 0) / (eff[cls] * peak)
        memory = _bytes(cost, element_bytes) / (eff_memory * bandwidth)
        out.append({"name": cost["name"], "op": cost["op"], "ms": 1000.0 * max(compute, memory),
                    "bound": "compute" if compute >= memory else "memory", "class": cls})
    return out


def estimate(costs, target, precision="fp16", efficiency=None):
    """Predicted batch-1 latency: {"target", "precision", "latency_ms", "layers": [{"name", "op",
    "ms", "bound"}], "method", "error_note", "unknown_layers"}."""
    if precision not in BYTES_PER_ELEMENT:
        raise ConfigError("unknown precision %r" % (precision,), hint="use fp32, fp16 or int8")
    t, peak, bandwidth = _peaks(target, precision)
    layers = layer_times(costs, peak, bandwidth, BYTES_PER_ELEMENT[precision], efficiency)
    unknown = [c["name"] for c in costs if c.get("flops") is None and kernel_class(c) != "fused"]
    note = ERROR_NOTE
    if t.name != "jetson-nano":
        note += "; %s uses the Nano's efficiencies with its own peaks: an extrapolation" % t.name
    if unknown:
        note += "; %d layer(s) with unknown shapes counted as memory only" % len(unknown)
    return {"target": t.name, "precision": precision, "latency_ms": sum(layer["ms"] for layer in layers),
            "layers": layers, "method": METHOD, "error_note": note, "unknown_layers": unknown}


# -- calibration -------------------------------------------------------------------------------------
def _bisect(fn, lo, hi, iters=60):
    """Root of a decreasing function on [lo, hi]."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if fn(mid) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def fit(reference, target="jetson-nano", precision="fp16"):
    """Solve EFFICIENCY from two (costs, measured_ms) pairs: the first pins the spatial class
    given the other, the second (with more 'other' FLOPs) pins the other class.
    Returns {"spatial", "other"}."""
    (costs_a, ms_a), (costs_b, ms_b) = reference
    _t, peak, bandwidth = _peaks(target, precision)
    eb = BYTES_PER_ELEMENT[precision]

    def total(costs, spatial, other):
        return sum(x["ms"] for x in layer_times(costs, peak, bandwidth, eb, {"spatial": spatial, "other": other}))

    def spatial_for(other):
        return _bisect(lambda s: total(costs_a, s, other) - ms_a, 0.01, 5.0)

    other = _bisect(lambda o: total(costs_b, spatial_for(o), o) - ms_b, 0.01, 5.0)
    return {"spatial": spatial_for(other), "other": other}
