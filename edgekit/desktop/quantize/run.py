"""FP16 and INT8 in the form the target runs, with what they cost measured first (contract C7).

    report = quantize("model.onnx", "model.int8.onnx", "int8", "x86-cpu", calib="images/")

- FP16 on a TensorRT target is a builder flag: the ONNX stays FP32 and its metadata records fp16.
  On ONNX Runtime (x86-cpu) it is an FP16 ONNX with FP32 inputs and outputs.
- INT8: ONNX Runtime's ``quant_pre_process`` (shape inference), one calibration through the model's
  own preprocessing, then ``quantize_static`` to QDQ with the target's scheme (``SCHEMES``). The same
  ranges give a TensorRT calibration cache (OUT.calib) for an implicit-INT8 build on the board.
- Before anything is written: reference vs quantized accuracy (or mAP@0.5) on --val, or agreement
  on held-out calibration images, and ONNX Runtime CPU latency side by side. ``max_drop`` fails the
  run (AccuracyDropError, exit 2) and leaves no output file.
"""

import os
import shutil
import tempfile

from edgekit.errors import ConfigError, ModelError, UserError
from edgekit.meta import ModelMeta, attach_to_onnx, load_meta_yaml, read_meta
from edgekit.progress import say, warn
from edgekit.targets import get_target

CALIB_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
PRECISIONS = ("fp16", "int8")
QUANTIZED_OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
                 "MatMulInteger", "DynamicQuantizeLinear")

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


class AccuracyDropError(UserError):
    """The quantized model lost more than --max-drop percentage points."""


# -- checks -------------------------------------------------------------------------------------
def _load_meta(model, meta):
    if isinstance(meta, ModelMeta):
        return meta
    if isinstance(meta, dict):
        return ModelMeta.from_dict(meta)
    if meta:
        return load_meta_yaml(meta)
    found = read_meta(model, required=False)
    if found is None:
        raise ModelError("%s carries no edgekit metadata: its preprocessing (size, colour order, mean/std) "
                         "is unknown and edgekit will not guess it" % model,
                         hint="export it with `edgekit export`, or give --meta FILE.yaml (task, labels, input, "
                         "preprocess, decoder)")
    return found


def _check_not_quantized(proto, meta, path):
    ops = sorted(set(n.op_type for n in proto.graph.node if n.op_type in QUANTIZED_OPS))
    if ops or meta.precision != "fp32":
        raise ModelError("%s is already quantized (%s)" % (path, ", ".join(ops) or "precision " + meta.precision),
                         hint="quantize the FP32 model it came from")
    import onnx

    fp16 = [i.name for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16]
    if fp16:
        raise ModelError("%s already holds FP16 weights (%s...)" % (path, fp16[0]),
                         hint="quantize the FP32 model it came from")


def _check_flags(precision, target, calib, calib_method, calib_count, max_drop, auto_exclude, val):
    if precision not in PRECISIONS:
        raise ConfigError("unknown precision %r" % (precision,), hint="use --precision fp16 or int8")
    if calib_method not in CALIB_METHODS:
        raise ConfigError("unknown calibration method %r" % (calib_method,),
                          hint="use one of: %s" % ", ".join(CALIB_METHODS))
    if calib_count is not None and int(calib_count) < 1:
        raise ConfigError("--calib-count must be at least 1, got %s" % calib_count)
    if max_drop is not None and float(max_drop) < 0:
        raise ConfigError("--max-drop must be >= 0 percentage points, got %s" % max_drop)
    if precision == "int8" and not calib:
        raise ConfigError("INT8 needs calibration images", hint="give --calib DIR (images like the camera's)")
    if auto_exclude and (precision != "int8" or max_drop is None):
        raise ConfigError("--auto-exclude needs --precision int8 and --max-drop PP",
                          hint="say how many percentage points may be lost, e.g. --max-drop 1")
    if max_drop is not None and not (val or calib):
        raise ConfigError("--max-drop needs images to measure on", hint="give --val DIR or --calib DIR")


class Job(object):
    """Everything one quantize run needs, validated before any work starts."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def _prepare(model, out, precision, target, calib, calib_method, calib_count, val, max_drop, exclude,
             auto_exclude, force, meta, show):
    import onnx

    from edgekit.desktop.quantize import calibration, evaluate

    target = get_target(target)
    _check_flags(precision, target, calib, calib_method, calib_count, max_drop, auto_exclude, val)
    model, out = os.fspath(model), os.fspath(out)
    if not os.path.isfile(model):
        raise ModelError("model file not found: %s" % model, hint="check the path")
    if os.path.abspath(model) == os.path.abspath(out):
        raise ConfigError("--out would overwrite the input model", hint="write to another file")
    meta = _load_meta(model, meta)
    try:
        proto = onnx.load(model)
    except Exception as exc:
        raise ModelError("cannot load %s as ONNX: %s" % (model, str(exc).splitlines()[0] if str(exc) else exc),
                         hint="check the file is a complete ONNX model")
    _check_not_quantized(proto, meta, model)
    warnings = []
    forced = target.check_precision(precision, force=force)
    if forced:
        warn(forced)
        warnings.append(forced)
    names = set(n.name for n in proto.graph.node)
    unknown = [n for n in exclude if n not in names]
    if unknown:
        sample = ", ".join(n.name for n in proto.graph.node if n.op_type in ("Conv", "Gemm", "MatMul"))[:200]
        raise ConfigError("--exclude names node(s) not in the model: %s" % ", ".join(unknown),
                          hint="node names are listed by `edgekit inspect --layers` (e.g. %s)" % sample)
    calib_paths, held = [], []
    if calib:
        # INT8 holds images out of calibration to measure on; FP16 calibrates nothing and uses them all.
        calib_paths, held = calibration.split_images(calibration.list_images(calib), count=calib_count
                                                     or calibration.DEFAULT_COUNT,
                                                     hold_out=not val and precision == "int8")
        note = calibration.check_count(len(calib_paths), calib_method) if precision == "int8" else None
        if note:
            warnings.append(note)
    evalset, eval_on = None, None
    if val:
        evalset, eval_on = evaluate.load_val(val, meta, show=show), "val"
    elif held:
        evalset, eval_on = evaluate.from_images(held, meta, show=show), "held-out"
    elif calib_paths and precision == "fp16":
        evalset, eval_on = evaluate.from_images(calib_paths, meta, show=show), "calibration"
    elif calib_paths:
        message = "only one calibration image: agreement is measured on it (not held out)"
        warn(message)
        warnings.append(message)
        evalset, eval_on = evaluate.from_images(calib_paths, meta, show=show), "calibration"
    return Job(model=model, out=out, precision=precision, target=target, meta=meta, proto=proto,
               eval_meta=evaluate.eval_meta(meta),
               calib=calib, calib_method=calib_method, calib_paths=calib_paths, val=val, max_drop=max_drop,
               exclude=list(exclude), auto_exclude=auto_exclude, force=force, show=show, evalset=evalset,
               eval_on=eval_on, warnings=warnings)


# -- the public API -----------------------------------------------------------------------------
def quantize(model, out, precision, target, calib=None, calib_method="minmax", calib_count=None, val=None,
             max_drop=None, exclude=(), auto_exclude=False, force=False, json_path=None, meta=None, show=True):
    """Quantize ``model`` for ``target``; returns the report dict (what --json writes).

    ``meta`` (ModelMeta, dict or YAML path) supplies metadata for models that carry none.
    Raises a UserError (one line, exit 2) for bad input, a target that cannot run the precision
    (unless ``force``), or an accuracy drop above ``max_drop``; then nothing is written.
    """
    from edgekit.desktop.quantize import report as report_mod

    job = _prepare(model, out, precision, target, calib, calib_method, calib_count, val, max_drop,
                   tuple(exclude or ()), auto_exclude, force, meta, show)
    work = tempfile.mkdtemp(prefix="edgekit-quantize-")
    try:
        if job.precision == "fp16":
            from edgekit.desktop.quantize.fp16 import run_fp16

            result = run_fp16(job, work)
        else:
            from edgekit.desktop.quantize.int8 import run_int8

            result = run_int8(job, work)
        report = report_mod.build(job, result)
        report_mod.show_table(report)
        if not report["passed"]:
            raise AccuracyDropError(
                "accuracy drop %.2f pp exceeds --max-drop %.2f pp (%s); nothing written"
                % (report["drop_pp"], job.max_drop, report["drop_basis"]),
                hint="try --auto-exclude, --calib-method entropy or percentile, more calibration images, "
                "or --exclude the layers named by --auto-exclude")
        report_mod.write_outputs(job, result, report, json_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def save_with_meta(proto, meta, path):
    """Attach metadata and serialise (to a work path; final outputs are copied atomically)."""
    import onnx

    attach_to_onnx(proto, meta)
    onnx.save(proto, path)
    return path


class Result(object):
    """What a precision path produced: the final model (work path), the runs and figures."""

    def __init__(self, **fields):
        self.calib_cache = None          # (header, {tensor: scale}) for INT8
        self.excluded = []
        self.auto_excluded = []
        self.sensitivity = []
        self.auto_steps = []
        self.notes = []
        self.scheme = None
        self.__dict__.update(fields)


def drop_pp(job, ref_metric, cand_metric, cand_agreement):
    """(drop in percentage points, basis): metric difference with labels, else 100 - top-1 agreement."""
    for key in ("accuracy", "map50"):
        if key in ref_metric and key in cand_metric:
            return (ref_metric[key] - cand_metric[key]) * 100.0, key
    if cand_agreement and cand_agreement.get("top1") is not None:
        return (1.0 - cand_agreement["top1"]) * 100.0, "top-1 agreement"
    return None, None


def evaluate_candidate(job, ref_run, path, desc):
    """Run a candidate model over the job's images -> (run, metric, agreement, drop_pp, basis)."""
    from edgekit.desktop.quantize import evaluate

    run = evaluate.run_model(path, job.eval_meta, job.evalset, desc=desc, show=job.show)
    cand_metric = evaluate.metric(run, job.evalset, job.eval_meta)
    agree = evaluate.agreement(ref_run, run, min_score=job.meta.decoder.get("score_threshold")
                               if job.meta.task == "detection" else None)
    drop, basis = drop_pp(job, job.ref_metric, cand_metric, agree)
    return run, cand_metric, agree, drop, basis


def evaluate_reference(job):
    """Run the FP32 model once; stores job.ref_run and job.ref_metric (None without images)."""
    from edgekit.desktop.quantize import evaluate

    job.ref_run, job.ref_metric = None, {}
    if job.evalset is None:
        return
    job.ref_run = evaluate.run_model(job.model, job.eval_meta, job.evalset, desc="reference fp32", show=job.show)
    job.ref_metric = evaluate.metric(job.ref_run, job.evalset, job.eval_meta)


def latency_feed(job):
    import numpy as np

    if job.evalset is not None and len(job.evalset):
        return job.evalset.items[0][0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in job.meta.input["shape"]]
    return np.zeros(shape, dtype=job.meta.input.get("dtype", "float32"))


def measure_latency(job, paths):
    """{name: ms} on ONNX Runtime CPU, side by side; say so."""
    from edgekit.desktop.quantize import evaluate

    say("measuring ONNX Runtime CPU latency side by side (%s)" % ", ".join(paths))
    return evaluate.latency_side_by_side(paths, latency_feed(job))


def quantized_meta(job, extra_quant):
    extra = dict(job.meta.extra)
    extra["quantization"] = extra_quant
    return job.meta.replace(precision=job.precision, target=job.target.name, extra=extra)
