"""FP16 and INT8 in the form the target runs, with what they cost measured first (docs/desktop/quantize.md).

    report = quantize("model.onnx", "model.int8.onnx", "int8", "x86-cpu", calib="images/")

- FP16 on a TensorRT target is a builder flag: the ONNX stays FP32 and its metadata records fp16.
  On ONNX Runtime (x86-cpu) it is an FP16 ONNX with FP32 inputs and outputs.
- INT8: ONNX Runtime's ``quant_pre_process`` (shape inference), one calibration through the model's
  own preprocessing, then ``quantize_static`` to QDQ with the target's scheme (``int8.SCHEMES``). The same
  ranges give a TensorRT calibration cache (OUT.calib) for an implicit-INT8 build on the board.
- Before anything is written: reference vs quantized accuracy (or mAP@0.5) on --val, or agreement
  on held-out calibration images, and ONNX Runtime CPU latency side by side. ``max_drop`` fails the
  run (AccuracyDropError, exit 2) and leaves no output file.
"""

import os
import shutil
import tempfile

from edgekit.desktop.quantize import report as report_mod
from edgekit.desktop.quantize.fp16 import run_fp16
from edgekit.desktop.quantize.int8 import run_int8
from edgekit.desktop.quantize.job import Job
from edgekit.errors import ConfigError, ModelError, UserError
from edgekit.meta import ModelMeta, load_meta_yaml, read_meta
from edgekit.progress import warn

QUANTIZED_OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
                 "MatMulInteger", "DynamicQuantizeLinear")


class AccuracyDropError(UserError):
    """The quantized model lost more than --max-drop percentage points."""


# -- checks -------------------------------------------------------------------------------------
def _load_meta(model, meta):
    if isinstance(meta, ModelMeta):
        return meta
    if isinstance(meta, dict):
        return ModelMeta.from_dict(meta)
    if meta:
        return load_meta_yaml(meta, model=model)
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


def prepare(job, meta):
    """Load the model, its metadata and the images into ``job`` (whose flags are already checked)."""
    import onnx

    from edgekit.desktop.quantize import calibration, evaluate

    model, target, precision = job.model, job.target, job.precision
    if not os.path.isfile(model):
        raise ModelError("model file not found: %s" % model, hint="check the path")
    if os.path.abspath(model) == os.path.abspath(job.out):
        raise ConfigError("--out would overwrite the input model", hint="write to another file")
    job.meta = meta = _load_meta(model, meta)
    try:
        job.proto = proto = onnx.load(model)
    except Exception as exc:
        raise ModelError("cannot load %s as ONNX: %s" % (model, str(exc).splitlines()[0] if str(exc) else exc),
                         hint="check the file is a complete ONNX model")
    _check_not_quantized(proto, meta, model)
    forced = target.check_precision(precision, force=job.force)
    if forced:
        warn(forced)
        job.warnings.append(forced)
    names = set(n.name for n in proto.graph.node)
    unknown = [n for n in job.exclude if n not in names]
    if unknown:
        sample = ", ".join(n.name for n in proto.graph.node if n.op_type in ("Conv", "Gemm", "MatMul"))[:200]
        raise ConfigError("--exclude names node(s) not in the model: %s" % ", ".join(unknown),
                          hint="node names are listed by `edgekit inspect --layers` (e.g. %s)" % sample)
    calib_paths, held = [], []
    if job.calib:
        # INT8 holds images out of calibration to measure on; FP16 calibrates nothing and uses them all.
        calib_paths, held = calibration.split_images(calibration.list_images(job.calib), count=job.calib_count
                                                     or calibration.DEFAULT_COUNT,
                                                     hold_out=not job.val and precision == "int8")
        note = calibration.check_count(len(calib_paths), job.calib_method) if precision == "int8" else None
        if note:
            job.warnings.append(note)
    job.calib_paths = calib_paths
    if job.val:
        job.evalset, job.eval_on = evaluate.load_val(job.val, meta, show=job.show), "val"
    elif held:
        job.evalset, job.eval_on = evaluate.from_images(held, meta, show=job.show), "held-out"
    elif calib_paths and precision == "fp16":
        job.evalset, job.eval_on = evaluate.from_images(calib_paths, meta, show=job.show), "calibration"
    elif calib_paths:
        message = "only one calibration image: agreement is measured on it (not held out)"
        warn(message)
        job.warnings.append(message)
        job.evalset, job.eval_on = evaluate.from_images(calib_paths, meta, show=job.show), "calibration"
    job.eval_meta = evaluate.eval_meta(meta)
    return job


# -- the public API -----------------------------------------------------------------------------
def quantize(model, out, precision, target, calib=None, calib_method="minmax", calib_count=None, val=None,
             max_drop=None, exclude=(), auto_exclude=False, force=False, json_path=None, meta=None, show=True):
    """Quantize ``model`` for ``target``; returns the report dict (what --json writes).

    ``meta`` (ModelMeta, dict or YAML path) supplies metadata for models that carry none.
    Raises a UserError (one line, exit 2) for bad input, a target that cannot run the precision
    (unless ``force``), or an accuracy drop above ``max_drop``; then nothing is written.
    """
    job = prepare(Job(model=model, out=out, precision=precision, target=target, calib=calib,
                      calib_method=calib_method, calib_count=calib_count, val=val, max_drop=max_drop,
                      exclude=exclude, auto_exclude=auto_exclude, force=force, show=show), meta)
    work = tempfile.mkdtemp(prefix="edgekit-quantize-")
    try:
        result = (run_fp16 if job.precision == "fp16" else run_int8)(job, work)
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
