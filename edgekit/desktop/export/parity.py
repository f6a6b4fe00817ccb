"""Numerical parity between a reference (PyTorch, or the source ONNX) and the exported ONNX model.

Per output: ``max_abs`` = max |onnx - ref|; ``max_rel`` = max_abs / max |ref| (relative to the output's
scale, so elements near zero do not blow it up); ``cosine`` = cosine similarity of the flattened outputs
(lowest over the inputs). An output passes when ``max_abs <= atol + rtol * max|ref|`` and
``cosine >= min_cosine`` on every input. All failing outputs are reported in one ``ParityError``.
"""

import numpy as np

from edgekit.errors import ConfigError, ExportError, ParityError


class OnnxRuntimeUnavailable(ExportError):
    """ONNX Runtime cannot load a model (custom ops, a newer IR version...): no parity run is possible."""

TOLERANCES = {
    "fp32": {"atol": 1e-4, "rtol": 1e-3, "min_cosine": 0.9999},
    "fp16": {"atol": 1e-2, "rtol": 1e-2, "min_cosine": 0.999},
    "int8": {"atol": 1e-1, "rtol": 1e-1, "min_cosine": 0.98},
}


def tolerance_for(precision="fp32", overrides=None):
    """Tolerances for a precision, with ``overrides`` ({"atol", "rtol", "min_cosine"}) applied."""
    if precision not in TOLERANCES:
        raise ConfigError("no parity tolerance for precision %r" % precision,
                          hint="use one of %s" % ", ".join(TOLERANCES))
    tol = dict(TOLERANCES[precision])
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in tol:
            raise ConfigError("unknown tolerance %r" % key, hint="use atol, rtol or min_cosine")
        if float(value) < 0:
            raise ConfigError("tolerance %s must be >= 0, got %s" % (key, value))
        tol[key] = float(value)
    return tol


def make_inputs(shape, count=3, seed=0):
    """``count`` float32 inputs of ``shape``: standard normal, seeded (the first is N(0,1), the next wider)."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape) * (1.0 + i)).astype(np.float32) for i in range(count)]


def compare(references, candidates, tolerance):
    """references/candidates: lists (one per input) of {output name: array}. Returns {output: stats}."""
    stats = {}
    for ref, cand in zip(references, candidates):
        for name, expected in ref.items():
            entry = stats.setdefault(name, {"max_abs": 0.0, "max_rel": 0.0, "cosine": 1.0, "ok": True,
                                            "shape": list(np.shape(expected))})
            got = cand.get(name)
            if got is None or np.shape(got) != np.shape(expected):
                entry["ok"] = False
                entry["problem"] = "missing" if got is None else "shape %s, expected %s" % (
                    list(np.shape(got)), list(np.shape(expected)))
                continue
            a = np.asarray(got, dtype=np.float64).ravel()
            b = np.asarray(expected, dtype=np.float64).ravel()
            if not np.all(np.isfinite(a)) or not np.all(np.isfinite(b)):
                entry["ok"] = False
                entry["problem"] = "non-finite values"
                continue
            diff = float(np.max(np.abs(a - b))) if a.size else 0.0
            scale = float(np.max(np.abs(b))) if b.size else 0.0
            norm = np.linalg.norm(a) * np.linalg.norm(b)
            cosine = float(np.dot(a, b) / norm) if norm > 0 else (1.0 if diff == 0 else 0.0)
            entry["max_abs"] = max(entry["max_abs"], diff)
            entry["max_rel"] = max(entry["max_rel"], diff / scale if scale > 0 else (0.0 if diff == 0 else np.inf))
            entry["cosine"] = min(entry["cosine"], cosine)
            if diff > tolerance["atol"] + tolerance["rtol"] * scale or cosine < tolerance["min_cosine"]:
                entry["ok"] = False
    return stats


def check(stats, tolerance, what="ONNX vs PyTorch"):
    """Raise one ParityError naming every failing output."""
    failures = []
    for name, entry in stats.items():
        if not entry["ok"]:
            failures.append(dict(entry, output=name))
    if failures:
        parts = []
        for f in failures:
            parts.append("%s: %s" % (f["output"], f.get("problem") or "max_abs %.3g, max_rel %.3g, cosine %.6f" % (
                f["max_abs"], f["max_rel"], f["cosine"])))
        raise ParityError("%s differ beyond tolerance (atol %g, rtol %g, cosine >= %g) in %d output(s): %s" % (
            what, tolerance["atol"], tolerance["rtol"], tolerance["min_cosine"], len(failures), "; ".join(parts)),
            failures=failures, hint="look for ops exported differently (e.g. resize modes, custom code); "
            "loosen with --atol/--rtol only if the difference is understood")
    return stats


def run_onnx(model_bytes, inputs, input_name):
    """Run an ONNX model (serialized) with ONNX Runtime on CPU, once per input."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as exc:    # ORT raises its own Fail/InvalidGraph/NotImplemented types
        raise OnnxRuntimeUnavailable("ONNX Runtime cannot load the model: %s" % _ort_reason(exc))
    names = [o.name for o in session.get_outputs()]
    return [dict(zip(names, session.run(None, {input_name: x}))) for x in inputs]


def _ort_reason(exc):
    """The readable part of an ONNX Runtime error (drop the status prefix and the C++ location)."""
    import re

    lines = [line for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", lines[0].strip())
    return re.sub(r"^\S+\.(?:cc|h|cpp):\d+ \S+\(.*?\) ", "", text)


def run_torch(module, inputs, output_names):
    """Run a PyTorch module once per input; outputs flattened in order and named ``output_names``."""
    import torch

    results = []
    with torch.no_grad():
        for x in inputs:
            outs = flatten_outputs(module(torch.from_numpy(x)))
            results.append(dict((name, t.detach().cpu().numpy()) for name, t in zip(output_names, outs)))
    return results


def flatten_outputs(out):
    """Tensors of a model output (tensor, tuple/list, dict) in the order torch.onnx.export flattens them."""
    if hasattr(out, "detach"):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    flat = []
    if isinstance(out, (list, tuple)):
        for item in out:
            flat.extend(flatten_outputs(item))
    return flat
