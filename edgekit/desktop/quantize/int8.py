"""The INT8 path: pre-process, calibrate once, quantize to QDQ, measure, auto-exclude, TRT cache.

One calibration serves everything: ranges for every float tensor are computed once (ONNX
Runtime's calibrators, all tensors so the TensorRT cache covers the whole network), saved as ORT's
JSON calibration cache, and every ``quantize_static`` call (the final model, each sensitivity
trial) reads them back instead of re-running the images.
"""

import contextlib
import logging
import os

from edgekit.desktop.quantize.job import (CALIB_METHODS, Result, calib_path_for, evaluate_candidate,
                                          evaluate_reference, measure_latency, quantized_meta, save_with_meta)
from edgekit.errors import ModelError
from edgekit.progress import say, warn

# INT8 scheme per runtime (Target.runtime). Each: ORT QuantType names + extra_options + why.
SCHEMES = {
    "tensorrt": {
        "name": "S8S8 symmetric",
        "activations": "QInt8", "weights": "QInt8", "per_channel": True,
        "extra": {"ActivationSymmetric": True, "WeightSymmetric": True,
                  # TensorRT 8.2's ONNX parser rejects INT8 initializers ("invalid weights type of
                  # Int8", megvii-research/Sparsebit#16): keep FP32 weights behind Q->DQ pairs.
                  "AddQDQPairToWeight": True,
                  # onnx-tensorrt operators.md (8.2 to 10.x): DequantizeLinear takes INT8 (not INT32)
                  # with a zero x_zero_point, so biases stay FP32 (TensorRT fuses them itself).
                  "QuantizeBias": False},
        "why": "TensorRT runs explicit QDQ with symmetric signed INT8 and zero point 0 for activations "
               "and weights (per-channel weights)",
    },
    "onnxruntime": {
        "name": "U8S8",
        "activations": "QUInt8", "weights": "QInt8", "per_channel": True,
        "extra": {"ActivationSymmetric": False, "WeightSymmetric": True},
        "why": "ONNX Runtime's x86 kernels are fastest with unsigned asymmetric activations and signed "
               "per-channel weights (ResNet-18 QDQ vs FP32 on this project's x86 box, bench_quantize: "
               "U8S8 2.7-3.7x, S8S8 0.9-1.4x)",
    },
}

ACT_TEXT = {"QInt8": "int8", "QUInt8": "uint8"}


def describe_scheme(scheme):
    acts = ACT_TEXT[scheme["activations"]] + (" symmetric (zero point 0)" if scheme["extra"].get(
        "ActivationSymmetric") else " asymmetric")
    weights = ACT_TEXT[scheme["weights"]] + " symmetric" + (" per-channel" if scheme["per_channel"] else "")
    return {"name": scheme["name"], "format": "QDQ", "activations": acts, "weights": weights,
            "weights_stored": "fp32 behind Q/DQ" if scheme["extra"].get("AddQDQPairToWeight") else "int8",
            "why": scheme["why"]}


@contextlib.contextmanager
def quiet_ort_logging():
    """ONNX Runtime's quantization tools log advice on the root logger; keep errors only."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _ort_quant():
    import onnxruntime.quantization as q

    return q


def preprocess_model(src, dest):
    """ORT's quant_pre_process: shape inference only. Its graph optimisation is skipped so node and
    tensor names stay the model's own (the names --exclude takes and the TensorRT cache uses)."""
    q = _ort_quant()
    try:
        with quiet_ort_logging():
            q.quant_pre_process(src, dest, skip_optimization=True)
    except Exception as exc:
        raise ModelError("ONNX Runtime's quantization pre-processing failed on %s: %s"
                         % (src, str(exc).splitlines()[0] if str(exc) else type(exc).__name__),
                         hint="check the model with `edgekit inspect`")
    return dest


def calibrate(model_path, input_name, tensors, method, work):
    """Ranges of every float tensor over the calibration tensors -> path of ORT's JSON cache."""
    from edgekit.desktop.quantize.calibration import make_reader

    q = _ort_quant()
    cal_method = getattr(q.CalibrationMethod, CALIB_METHODS[method])
    say("calibrating (%s) on %d image%s" % (method, len(tensors), "" if len(tensors) == 1 else "s"))
    with quiet_ort_logging():
        calibrator = q.create_calibrator(model_path, None, augmented_model_path=os.path.join(work, "augmented.onnx"),
                                         calibrate_method=cal_method)
        calibrator.collect_data(make_reader(input_name, tensors))
        ranges = calibrator.compute_data()
    path = os.path.join(work, "ranges.json")
    q.save_tensors_data(ranges, path)
    return path, ranges


def quantize_to(prep, dest, ranges_path, scheme, method, exclude=(), only=None):
    q = _ort_quant()
    with quiet_ort_logging():
        _quantize_static(q, prep, dest, ranges_path, scheme, method, exclude, only)
    return dest


def _quantize_static(q, prep, dest, ranges_path, scheme, method, exclude, only):
    q.quantize_static(
        prep, dest, calibration_data_reader=None, quant_format=q.QuantFormat.QDQ,
        per_channel=scheme["per_channel"], activation_type=getattr(q.QuantType, scheme["activations"]),
        weight_type=getattr(q.QuantType, scheme["weights"]), nodes_to_exclude=list(exclude) or None,
        nodes_to_quantize=list(only) if only else None,
        calibrate_method=getattr(q.CalibrationMethod, CALIB_METHODS[method]),
        extra_options=dict(scheme["extra"]), calibration_cache_path=ranges_path)


def trt_scales(ranges, proto):
    """Per-tensor TensorRT scales (amax / 127) for the tensors of the FP32 model."""
    import numpy as np

    from edgekit.engine.calib_cache import scale_from_amax

    names = set(i.name for i in proto.graph.input)
    for node in proto.graph.node:
        names.update(node.output)
    scales = {}
    for name, data in ranges.items():
        if name in names:
            low, high = data.range_value
            amax = max(float(np.abs(np.asarray(low)).max()), float(np.abs(np.asarray(high)).max()))
            scales[name] = scale_from_amax(amax)
    return scales


def _input_name(proto):
    inits = set(i.name for i in proto.graph.initializer)
    return [i.name for i in proto.graph.input if i.name not in inits][0]


def _check_opset(path, target):
    import onnx

    model = onnx.load(path, load_external_data=False)
    opset = max([o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] or [0])
    if target.max_opset and opset > target.max_opset:
        raise ModelError("the quantized model needs ONNX opset %d but %s's parser takes at most %d"
                         % (opset, target.name, target.max_opset),
                         hint="re-export the model at opset <= %d" % target.max_opset)
    foreign = sorted(set(n.domain for n in model.graph.node if n.domain not in ("", "ai.onnx")))
    if foreign and target.uses_tensorrt:
        warn("the quantized model uses non-standard op domains %s that TensorRT may reject" % foreign)
    return opset


def _sensitivity(job, prep, ranges_path, scheme, candidates_proto, work):
    from edgekit.desktop.quantize import evaluate, sensitivity

    nodes = sensitivity.candidates(candidates_proto, exclude=job.exclude)
    subset = job.evalset.subset(sensitivity.SENSITIVITY_IMAGES)
    ref_sub = evaluate.Run(job.ref_run.outputs[:len(subset)], job.ref_run.results[:len(subset)])
    say("ranking %d layers by INT8 sensitivity (each quantized alone, output error on %d images)"
        % (len(nodes), len(subset)))

    def only(name):
        return quantize_to(prep, os.path.join(work, "only.onnx"), ranges_path, scheme, job.calib_method,
                           only=[name])

    def score(path):
        return evaluate.noise(ref_sub, evaluate.run_model(path, job.eval_meta, subset, show=False))

    return sensitivity.rank(nodes, only, score, show=job.show)


def run_int8(job, work):
    from edgekit.desktop.quantize.calibration import load_tensors
    from edgekit.desktop.quantize import sensitivity

    scheme = SCHEMES[job.target.runtime]
    described = describe_scheme(scheme)
    say("INT8 scheme for %s: %s QDQ, activations %s, weights %s -- %s" % (
        job.target.name, described["name"], described["activations"], described["weights"], described["why"]))
    prep = preprocess_model(job.model, os.path.join(work, "prep.onnx"))
    import onnx

    prep_proto = onnx.load(prep)
    tensors = load_tensors(job.calib_paths, job.meta, show=job.show)
    ranges_path, ranges = calibrate(prep, _input_name(prep_proto), tensors, job.calib_method, work)
    evaluate_reference(job)
    result = Result(scheme=described, notes=[])

    def attempt(excluded, name="int8.onnx"):
        path = quantize_to(prep, os.path.join(work, name), ranges_path, scheme, job.calib_method, exclude=excluded)
        if job.evalset is None:
            return path, None
        return path, evaluate_candidate(job, job.ref_run, path, "int8" + (" (%d in fp32)" % len(excluded)
                                                                          if excluded else ""))

    path, trial = attempt(job.exclude)
    excluded = list(job.exclude)
    if trial and job.max_drop is not None and trial[3] > job.max_drop and job.auto_exclude:
        say("drop %.2f pp > --max-drop %.2f pp: looking for layers to keep in FP32" % (trial[3], job.max_drop))
        result.sensitivity = _sensitivity(job, prep, ranges_path, scheme, prep_proto, work)

        def try_excluding(names):
            p, t = attempt(excluded + names, name="trial.onnx")
            return t[3], (p, t)

        names, _, found, result.auto_steps = sensitivity.auto_exclude(result.sensitivity, try_excluding,
                                                                      job.max_drop)
        if names is not None:
            result.auto_excluded = names
            excluded = excluded + names
            path, trial = found
        else:
            result.notes.append("even with every Conv/Gemm/MatMul in FP32 the drop stays above --max-drop")
    result.excluded = excluded
    _check_opset(path, job.target)
    result.run, result.metric, result.agreement, result.drop, result.basis = trial or (None, {}, None, None, None)
    result.latency = measure_latency(job, {"reference": job.model, "quantized": path})
    result.calib_cache = trt_scales(ranges, job.proto)
    result.calibration = {"count": len(tensors), "method": job.calib_method, "folder": job.calib}
    proto = onnx.load(path)
    extra = {"scheme": described["name"], "format": "QDQ", "activations": described["activations"],
             "weights": described["weights"], "calibration": {"count": len(tensors), "method": job.calib_method},
             "excluded": excluded, "calib_cache": os.path.basename(calib_path_for(job.out)),
             "target_runtime": job.target.runtime}
    result.final_path = save_with_meta(proto, quantized_meta(job, extra), os.path.join(work, "final.onnx"))
    return result
