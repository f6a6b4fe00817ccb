"""TensorRT calibration cache text format (docs/desktop/quantize.md): hand-computed hex and round trips."""

import struct

import pytest

from edgekit.engine import calib_cache as cc
from edgekit.errors import ModelError


@pytest.mark.parametrize("value, digits", [
    (1.0, "3f800000"),
    (0.5, "3f000000"),
    (2.0, "40000000"),
    (1.0 / 127.0, "3c010204"),     # the step of a tensor with amax 1.0
    (0.1, "3dcccccd"),
])
def test_hex_of_known_floats(value, digits):
    assert cc.scale_to_hex(value) == digits
    assert cc.hex_to_scale(digits) == struct.unpack(">f", struct.pack(">f", value))[0]


def test_scale_from_amax_is_amax_over_127():
    assert cc.scale_from_amax(127.0) == 1.0
    assert cc.scale_from_amax(-2.54) == pytest.approx(0.02)
    assert cc.scale_from_amax(0.0) == pytest.approx(1 / 127.0)     # never a zero scale


def test_write_then_read_round_trip(tmp_path):
    scales = {"images": 1.0 / 127.0, "conv1:0": 0.1, "/layer1/Relu_output_0": 0.0123, "logits": 3.5}
    path = tmp_path / "model.calib"
    cc.write_calibration_cache(str(path), scales, header=cc.header_for("8.2.1"))
    text = path.read_text()
    lines = text.splitlines()
    assert lines[0] == "TRT-8201-EntropyCalibration2"
    assert "images: 3c010204" in lines
    assert "conv1:0: 3dcccccd" in lines          # a colon inside the name survives
    header, back = cc.read_calibration_cache(str(path))
    assert header == "TRT-8201-EntropyCalibration2"
    assert set(back) == set(scales)
    for name, value in scales.items():
        assert back[name] == pytest.approx(value, rel=1e-7)


def test_headers_per_tensorrt_version():
    assert cc.header_for("8.2.1") == "TRT-8201-EntropyCalibration2"
    assert cc.header_for("8.5.2") == "TRT-8502-EntropyCalibration2"
    assert cc.header_for("10.3.0") == "TRT-100300-EntropyCalibration2"
    assert cc.header_for(None) == cc.DEFAULT_HEADER
    assert cc.header_version("TRT-8201-EntropyCalibration2") == (8201, "EntropyCalibration2")


def test_bad_files_are_user_errors(tmp_path):
    bad = tmp_path / "bad.calib"
    bad.write_text("not a cache\n")
    with pytest.raises(ModelError, match="not a TensorRT calibration cache"):
        cc.read_calibration_cache(str(bad))
    bad.write_text("TRT-8201-EntropyCalibration2\nimages: 3c01\n")
    with pytest.raises(ModelError, match="line 2"):
        cc.read_calibration_cache(str(bad))
    with pytest.raises(ModelError, match="cannot read"):
        cc.read_calibration_cache(str(tmp_path / "missing.calib"))


def test_refuses_to_write_invalid_scales(tmp_path):
    for scale in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            cc.write_calibration_cache(str(tmp_path / "x.calib"), {"t": scale})
    assert not (tmp_path / "x.calib").exists()
