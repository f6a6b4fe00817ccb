"""edgekit quantize: FP16/INT8 per target, calibration through the shared preprocessing, accuracy first.

Models are built here (a few KB, 32x32 inputs, see quantize_helpers.py); images are synthetic.
"""

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))     # quantize_helpers.py
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")
pytest.importorskip("torch")

from edgekit.desktop.quantize.run import AccuracyDropError, quantize  # noqa: E402
from edgekit.engine.calib_cache import read_calibration_cache  # noqa: E402
from edgekit.errors import ConfigError, DatasetError, ModelError, PrecisionError  # noqa: E402
from edgekit.meta import read_meta  # noqa: E402

import quantize_helpers as helpers  # noqa: E402


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("quant")
    return {
        "good": helpers.build_classifier(str(root / "good.onnx")),
        "bad": helpers.build_classifier(str(root / "bad.onnx"), outlier=True),
        "calib": helpers.write_images(str(root / "calib"), 6, seed=1),
        "val": helpers.write_images(str(root / "val"), 3, seed=2, labelled=True),
        "root": root,
    }


def _ops(path):
    return [n.op_type for n in onnx.load(path).graph.node]


def _zero_points(path):
    model = onnx.load(path)
    inits = dict((i.name, onnx.numpy_helper.to_array(i)) for i in model.graph.initializer)
    return [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2]


def test_int8_for_cpu_is_u8s8_qdq_with_accuracy_report(assets, tmp_path):
    out = str(tmp_path / "m.int8.onnx")
    report = quantize(assets["good"], out, "int8", "x86-cpu", calib=assets["calib"], val=assets["val"],
                      json_path=str(tmp_path / "r.json"), show=False)
    assert "QuantizeLinear" in _ops(out) and "DequantizeLinear" in _ops(out)
    zps = _zero_points(out)
    assert zps and any(z.dtype == np.uint8 for z in zps)            # U8 activations
    meta = read_meta(out)
    assert meta.precision == "int8" and meta.target == "x86-cpu"
    quant = meta.extra["quantization"]
    assert quant["scheme"] == "U8S8" and quant["format"] == "QDQ"
    assert quant["calibration"] == {"count": 18, "method": "minmax"}   # all 18: --val measures, none held out
    assert report["reference"]["accuracy"] == 1.0 and report["quantized"]["accuracy"] == 1.0
    assert report["quantized"]["agreement"]["top1"] == 1.0
    assert report["quantized"]["latency_ms"] > 0 and report["reference"]["latency_ms"] > 0
    assert report["evaluation"] == {"on": "val", "images": 9, "source": assets["val"]}
    on_disk = json.loads((tmp_path / "r.json").read_text())
    for key in ("reference", "quantized", "scheme", "excluded", "calibration"):
        assert key in on_disk
    assert os.path.exists(str(tmp_path / "m.int8.md"))
    assert "accuracy %" in (tmp_path / "m.int8.md").read_text()


def test_calibration_cache_holds_amax_over_127_of_the_preprocessed_input(assets, tmp_path):
    from edgekit.desktop.quantize.calibration import list_images, load_tensors, split_images

    out = str(tmp_path / "m.int8.onnx")
    quantize(assets["good"], out, "int8", "x86-cpu", calib=assets["calib"], show=False)
    header, scales = read_calibration_cache(str(tmp_path / "m.int8.calib"))
    assert header == "TRT-8201-EntropyCalibration2"      # x86-cpu: the Nano's TensorRT by default
    graph = onnx.load(assets["good"]).graph
    assert set(scales) <= set(i.name for i in graph.input) | set(o for n in graph.node for o in n.output)
    calib, _ = split_images(list_images(assets["calib"]), count=200, hold_out=True)
    amax = max(float(np.abs(t[0]).max()) for t in load_tensors(calib, read_meta(assets["good"]), show=False))
    assert scales["images"] == pytest.approx(amax / 127.0, rel=1e-6)
    assert scales["logits"] > 0


def test_nano_refuses_int8_and_force_gives_symmetric_s8s8(assets, tmp_path):
    out = str(tmp_path / "nano.int8.onnx")
    with pytest.raises(PrecisionError, match="no fast int8.*FP16|fp16"):
        quantize(assets["good"], out, "int8", "jetson-nano", calib=assets["calib"], show=False)
    assert not os.path.exists(out)
    report = quantize(assets["good"], out, "int8", "jetson-nano", calib=assets["calib"], force=True, show=False)
    assert report["forced"] and any("forced" in w for w in report["warnings"])
    zps = _zero_points(out)
    assert zps and all(z.dtype == np.int8 and not z.any() for z in zps)    # signed, zero point 0
    model = onnx.load(out)
    int8_weights = [i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8
                    and not i.name.endswith("zero_point")]
    assert not int8_weights            # TensorRT 8.2 takes FP32 weights behind Q/DQ, not INT8 initializers
    inits = dict((i.name, i.data_type) for i in model.graph.initializer)
    dq_inputs = [inits.get(n.input[0]) for n in model.graph.node if n.op_type == "DequantizeLinear"]
    assert onnx.TensorProto.INT32 not in dq_inputs       # no INT32 bias DQ: TensorRT dequantizes INT8 only
    assert read_meta(out).extra["quantization"]["scheme"] == "S8S8 symmetric"
    assert read_calibration_cache(str(tmp_path / "nano.int8.calib"))[0] == "TRT-8201-EntropyCalibration2"


def test_max_drop_exceeded_fails_and_writes_nothing(assets, tmp_path):
    out = tmp_path / "bad.int8.onnx"
    with pytest.raises(AccuracyDropError, match="exceeds --max-drop"):
        quantize(assets["bad"], str(out), "int8", "x86-cpu", calib=assets["calib"], val=assets["val"], max_drop=1.0,
                 json_path=str(tmp_path / "r.json"), show=False)
    assert sorted(os.listdir(str(tmp_path))) == []


def test_auto_exclude_keeps_the_sensitive_layers_in_fp32(assets, tmp_path):
    out = str(tmp_path / "bad.int8.onnx")
    report = quantize(assets["bad"], out, "int8", "x86-cpu", calib=assets["calib"], val=assets["val"], max_drop=1.0,
                      auto_exclude=True, show=False)
    assert report["passed"] and report["drop_pp"] <= 1.0
    assert report["auto_excluded"] and report["excluded"] == report["auto_excluded"]
    assert "/2/Conv" in report["excluded"]              # the layer reading the outlier tensor
    assert [s["node"] for s in report["sensitivity"]]   # ranked, worst first
    scores = [s["score"] for s in report["sensitivity"]]
    assert scores == sorted(scores, reverse=True)
    assert read_meta(out).extra["quantization"]["excluded"] == report["excluded"]


def test_fp16_for_tensorrt_is_a_builder_flag(assets, tmp_path):
    out = str(tmp_path / "m.fp16.onnx")
    report = quantize(assets["good"], out, "fp16", "jetson-nano", calib=assets["calib"], show=False)
    src, dst = onnx.load(assets["good"]), onnx.load(out)
    assert [i.data_type for i in dst.graph.initializer] == [i.data_type for i in src.graph.initializer]
    assert _ops(out) == _ops(assets["good"])
    meta = read_meta(out)
    assert meta.precision == "fp16" and meta.extra["quantization"]["scheme"] == "fp16-builder-flag"
    assert report["quantized"]["latency_ms"] is None and report["quantized"]["agreement"]["top1"] == 1.0
    assert any("stand-in" in n for n in report["notes"])
    assert not os.path.exists(str(tmp_path / "m.fp16.calib"))


def test_fp16_for_onnxruntime_is_an_fp16_file_with_fp32_io(assets, tmp_path):
    import onnxruntime as ort

    out = str(tmp_path / "m.fp16.onnx")
    with pytest.raises(PrecisionError):
        quantize(assets["good"], out, "fp16", "x86-cpu", show=False)        # slower than FP32 on a CPU
    quantize(assets["good"], out, "fp16", "x86-cpu", force=True, show=False)
    model = onnx.load(out)
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)" and session.get_outputs()[0].type == "tensor(float)"
    assert read_meta(out).precision == "fp16"


# -- bad input ----------------------------------------------------------------------------------
def test_empty_calibration_folder(assets, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        quantize(assets["good"], str(tmp_path / "o.onnx"), "int8", "x86-cpu", calib=str(tmp_path / "empty"),
                 show=False)


def test_unreadable_image_is_named(assets, tmp_path):
    folder = tmp_path / "calib"
    helpers.write_images(str(folder), 1, seed=3)
    (folder / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="broken.png"):
        quantize(assets["good"], str(tmp_path / "o.onnx"), "int8", "x86-cpu", calib=str(folder), show=False)
    assert not os.path.exists(str(tmp_path / "o.onnx"))


def test_few_images_warn_and_are_reported(assets, tmp_path, capsys):
    report = quantize(assets["good"], str(tmp_path / "o.onnx"), "int8", "x86-cpu", calib=assets["calib"],
                      calib_count=3, show=False)
    assert report["calibration"]["count"] == 3
    assert any("only 3 calibration images" in w for w in report["warnings"])
    assert "warning: only 3 calibration images" in capsys.readouterr().err


def test_already_quantized_model_is_refused(assets, tmp_path):
    first = str(tmp_path / "q.onnx")
    quantize(assets["good"], first, "int8", "x86-cpu", calib=assets["calib"], show=False)
    with pytest.raises(ModelError, match="already quantized"):
        quantize(first, str(tmp_path / "qq.onnx"), "int8", "x86-cpu", calib=assets["calib"], show=False)


def test_model_without_metadata_needs_meta(assets, tmp_path):
    bare = helpers.build_classifier(str(tmp_path / "bare.onnx"), with_meta=False)
    with pytest.raises(ModelError, match="will not guess"):
        quantize(bare, str(tmp_path / "o.onnx"), "fp16", "jetson-nano", show=False)
    meta = read_meta(assets["good"])
    report = quantize(bare, str(tmp_path / "o.onnx"), "fp16", "jetson-nano", meta=meta, show=False)
    assert report["precision"] == "fp16" and read_meta(str(tmp_path / "o.onnx")).labels == helpers.LABELS


def test_val_labels_must_match_the_model(assets, tmp_path):
    val = helpers.write_images(str(tmp_path / "val"), 1, labelled=True)
    os.rename(str(tmp_path / "val" / "blue"), str(tmp_path / "val" / "purple"))
    with pytest.raises(DatasetError, match="do not match.*purple"):
        quantize(assets["good"], str(tmp_path / "o.onnx"), "int8", "x86-cpu", calib=assets["calib"], val=val,
                 show=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"precision": "int8"}, "needs calibration images"),
    ({"precision": "int8", "calib": "C", "exclude": ["nope"]}, "not in the model"),
    ({"precision": "int8", "calib": "C", "auto_exclude": True}, "--auto-exclude needs"),
    ({"precision": "int4"}, "unknown precision"),
    ({"precision": "fp16", "max_drop": 1.0}, "needs images"),
    ({"precision": "int8", "calib": "C", "calib_method": "magic"}, "unknown calibration method"),
])
def test_flag_errors(assets, tmp_path, kwargs, message):
    kwargs = dict(kwargs)
    if kwargs.get("calib") == "C":
        kwargs["calib"] = assets["calib"]
    precision = kwargs.pop("precision")
    with pytest.raises(ConfigError, match=message):
        quantize(assets["good"], str(tmp_path / "o.onnx"), precision, "x86-cpu", show=False, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"precision": "int4"}, "unknown precision 'int4'"),
    ({"target": "jetson-nanoo"}, "unknown target"),
    ({"calib_count": 0}, "--calib-count must be at least 1"),
    ({"max_drop": -1.0}, "--max-drop must be >= 0"),
    ({"calib_method": "magic"}, "unknown calibration method"),
])
def test_job_checks_its_values_when_built(kwargs, message):
    from edgekit.desktop.quantize.job import Job

    fields = dict({"model": "m.onnx", "out": "o.onnx", "precision": "int8", "target": "x86-cpu", "calib": "C"},
                  **kwargs)
    with pytest.raises(ConfigError, match=message) as caught:
        Job(**fields)
    assert "\n" not in str(caught.value)
    job = Job(model="m.onnx", out="o.onnx", precision="int8", target="x86-cpu", calib="C", exclude=("a",))
    assert job.target.name == "x86-cpu" and job.exclude == ["a"] and job.warnings == [] and job.evalset is None


def test_cli_exit_codes(assets, tmp_path, capsys):
    from edgekit.cli import main

    out = str(tmp_path / "c.onnx")
    assert main(["quantize", assets["good"], "--precision", "int8", "--target", "jetson-nano", "--calib",
                 assets["calib"], "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "FP16" in err.upper() and "Traceback" not in err
    assert main(["quantize", assets["good"], "--precision", "fp16", "--target", "jetson-nano", "--out", out,
                 "--json", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["precision"] == "fp16"


# -- pieces -------------------------------------------------------------------------------------
def test_reader_feeds_the_shared_preprocessing(assets):
    from edgekit.desktop.quantize.calibration import list_images, load_tensors, make_reader
    from edgekit.vision.preprocess import Preprocessor, read_image

    paths = list_images(assets["calib"])[:3]
    meta = read_meta(assets["good"])
    reader = make_reader("images", load_tensors(paths, meta, show=False))
    pre = Preprocessor.from_meta(meta)
    for path in paths:
        feed = reader.get_next()
        np.testing.assert_array_equal(feed["images"], pre(read_image(path))[0])
    assert reader.get_next() is None
    reader.rewind()
    assert reader.get_next() is not None and len(reader) == 3


def test_split_is_seeded_and_disjoint():
    from edgekit.desktop.quantize.calibration import split_images

    paths = ["%02d.png" % i for i in range(20)]
    calib, held = split_images(paths, count=10)
    assert (calib, held) == split_images(paths, count=10)
    assert len(held) == 4 and len(calib) == 10 and not set(calib) & set(held)
    assert split_images(["a.png"]) == (["a.png"], [])
    assert split_images(paths, hold_out=False)[1] == []


def test_auto_exclude_grows_worst_first_until_within_limit():
    from edgekit.desktop.quantize.sensitivity import auto_exclude

    ranked = [{"node": "c", "score": 3.0}, {"node": "a", "score": 2.0}, {"node": "b", "score": 1.0}]
    drops = {("c",): 5.0, ("c", "a"): 0.5}
    names, drop, trial, steps = auto_exclude(ranked, lambda n: (drops[tuple(n)], "t%d" % len(n)), 1.0)
    assert names == ["c", "a"] and drop == 0.5 and trial == "t2" and len(steps) == 2
    assert auto_exclude(ranked, lambda n: (9.0, None), 1.0)[0] is None


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_histogram_calibration_methods(assets, tmp_path, method):
    out = str(tmp_path / "m.onnx")
    report = quantize(assets["good"], out, "int8", "x86-trt10", calib=assets["calib"], calib_method=method,
                      show=False)
    assert report["calibration"]["method"] == method
    assert any("needs at least 64" in w for w in report["warnings"])      # 14 images < 64
    assert read_meta(out).extra["quantization"]["calibration"]["method"] == method
    header, scales = read_calibration_cache(str(tmp_path / "m.calib"))
    assert header == "TRT-100300-EntropyCalibration2" and scales
