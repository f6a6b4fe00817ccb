"""One quantize run's state and the steps both precision paths share.

``run`` builds a ``Job`` (the flags, validated in ``__post_init__``, then the loaded model and images),
hands it to ``fp16.run_fp16`` or ``int8.run_int8``, which return a ``Result``, and ``report`` turns the
two into the report. Everything here is imported by those modules and imports none of them.
"""

import os
from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import ConfigError
from edgekit.meta import attach_to_onnx
from edgekit.progress import say
from edgekit.targets import Target, get_target

CALIB_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
PRECISIONS = ("fp16", "int8")


@dataclass
class Job:
    """Everything one quantize run needs. The flags are checked in ``__post_init__``, before any work
    starts (ConfigError, one line); ``run.prepare`` then fills in the model, metadata and images."""

    model: str
    out: str
    precision: str
    target: Any
    calib: Any = None
    calib_method: str = "minmax"
    calib_count: Any = None
    val: Any = None
    max_drop: Any = None
    exclude: list = field(default_factory=list)
    auto_exclude: bool = False
    force: bool = False
    show: bool = True
    # filled in by run.prepare once the flags are known good
    meta: Any = None
    proto: Any = field(default=None, repr=False)
    eval_meta: Any = None
    calib_paths: list = field(default_factory=list)
    evalset: Any = field(default=None, repr=False)
    eval_on: Any = None
    warnings: list = field(default_factory=list)
    # filled in by evaluate_reference
    ref_run: Any = field(default=None, repr=False)
    ref_metric: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.target, Target):
            self.target = get_target(self.target)
        if self.precision not in PRECISIONS:
            raise ConfigError("unknown precision %r" % (self.precision,), hint="use --precision fp16 or int8")
        if self.calib_method not in CALIB_METHODS:
            raise ConfigError("unknown calibration method %r" % (self.calib_method,),
                              hint="use one of: %s" % ", ".join(CALIB_METHODS))
        if self.calib_count is not None and int(self.calib_count) < 1:
            raise ConfigError("--calib-count must be at least 1, got %s" % self.calib_count)
        if self.max_drop is not None and float(self.max_drop) < 0:
            raise ConfigError("--max-drop must be >= 0 percentage points, got %s" % self.max_drop)
        if self.precision == "int8" and not self.calib:
            raise ConfigError("INT8 needs calibration images", hint="give --calib DIR (images like the camera's)")
        if self.auto_exclude and (self.precision != "int8" or self.max_drop is None):
            raise ConfigError("--auto-exclude needs --precision int8 and --max-drop PP",
                              hint="say how many percentage points may be lost, e.g. --max-drop 1")
        if self.max_drop is not None and not (self.val or self.calib):
            raise ConfigError("--max-drop needs images to measure on", hint="give --val DIR or --calib DIR")
        self.model, self.out = os.fspath(self.model), os.fspath(self.out)
        self.exclude = list(self.exclude or ())


@dataclass
class Result:
    """What a precision path produced: the final model (a work path), the runs and the figures. Its values
    come from the paths' own code, not from the user, so there is nothing to validate."""

    scheme: Any = None
    notes: list = field(default_factory=list)
    calib_cache: Any = None              # {tensor: scale} for INT8
    calibration: Any = None
    excluded: list = field(default_factory=list)
    auto_excluded: list = field(default_factory=list)
    sensitivity: list = field(default_factory=list)
    auto_steps: list = field(default_factory=list)
    run: Any = field(default=None, repr=False)
    metric: dict = field(default_factory=dict)
    agreement: Any = None
    drop: Any = None
    basis: Any = None
    latency: dict = field(default_factory=dict)
    final_path: Any = None


def calib_path_for(out):
    """The TensorRT calibration cache written next to ``out``."""
    return os.path.splitext(out)[0] + ".calib"


def save_with_meta(proto, meta, path):
    """Attach metadata and serialise (to a work path; final outputs are copied atomically)."""
    import onnx

    attach_to_onnx(proto, meta)
    onnx.save(proto, path)
    return path


def drop_pp(job, ref_metric, cand_metric, cand_agreement):
    """(drop in percentage points, basis): metric difference with labels, else 100 - top-1 agreement."""
    for key in ("accuracy", "map50_95", "map50"):       # detectors: COCO mAP@0.5:0.95 first
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
