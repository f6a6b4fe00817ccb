"""The FP16 path.

- TensorRT targets: FP16 is a builder flag (the board builds with ``BuilderFlag.FP16``). The ONNX is
  copied unchanged (FP32 weights) with metadata ``precision: fp16``. Its accuracy is estimated with
  an FP16 copy run by ONNX Runtime on the CPU -- a stand-in for TensorRT's FP16, said so in the report.
- ONNX Runtime targets: an FP16 ONNX (weights and compute in float16) whose inputs and outputs stay
  FP32 (``keep_io_types``), checked to load and run in ONNX Runtime before it is kept.
"""

import os

from edgekit.desktop.quantize.job import (Result, evaluate_candidate, evaluate_reference, latency_feed,
                                          measure_latency, quantized_meta, save_with_meta)
from edgekit.errors import ModelError
from edgekit.progress import say


def fp16_copy(src, dest, feed):
    """Convert to float16 with FP32 IO; load and run it once in ONNX Runtime, or raise ModelError."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.transformers.float16 import convert_float_to_float16

    proto = convert_float_to_float16(onnx.load(src), keep_io_types=True)
    onnx.save(proto, dest)
    try:
        session = ort.InferenceSession(dest, providers=["CPUExecutionProvider"])
        session.run(None, {session.get_inputs()[0].name: feed})
    except Exception as exc:
        raise ModelError("the FP16 model does not run in ONNX Runtime: %s" % str(exc).splitlines()[0],
                         hint="keep FP32 for this model on this target, or report the failing operator")
    return dest


def run_fp16(job, work):
    import onnx

    tensorrt = job.target.uses_tensorrt
    feed = latency_feed(job)
    converted = fp16_copy(job.model, os.path.join(work, "fp16.onnx"), feed)
    result = Result(notes=[])
    if tensorrt:
        result.scheme = {"name": "FP16 builder flag", "format": "FP32 ONNX, TensorRT builds FP16",
                         "why": "TensorRT chooses FP16 kernels at build time (BuilderFlag.FP16); the ONNX stays "
                         "FP32 and its metadata records fp16"}
        say("FP16 for %s is a TensorRT builder flag: %s keeps FP32 weights, metadata says fp16"
            % (job.target.name, os.path.basename(job.out)))
        if job.evalset is not None:
            result.notes.append("quantized accuracy measured with an FP16 copy on ONNX Runtime CPU, a stand-in "
                                "for TensorRT FP16")
        result.notes.append("FP16 latency: measure on the board with `edgekit profile`")
        proto = onnx.load(job.model)
        extra = {"scheme": "fp16-builder-flag", "weights": "fp32 in the file", "target_runtime": "tensorrt"}
    else:
        result.scheme = {"name": "FP16 ONNX", "format": "float16 weights and compute, FP32 inputs/outputs",
                         "why": "ONNX Runtime runs the graph as stored: the file itself is FP16"}
        proto = onnx.load(converted)
        extra = {"scheme": "fp16-onnx", "io": "fp32", "target_runtime": job.target.runtime}
    evaluate_reference(job)
    if job.evalset is not None:
        result.run, result.metric, result.agreement, result.drop, result.basis = evaluate_candidate(
            job, job.ref_run, converted, "fp16")
    else:
        result.run, result.metric, result.agreement, result.drop, result.basis = None, {}, None, None, None
        result.notes.append("no images given (--val or --calib): accuracy not measured")
    if tensorrt:
        result.latency = measure_latency(job, {"reference": job.model})
        result.latency["quantized"] = None
    else:
        result.latency = measure_latency(job, {"reference": job.model, "quantized": converted})
    result.calibration = None
    result.final_path = save_with_meta(proto, quantized_meta(job, extra), os.path.join(work, "final.onnx"))
    return result
