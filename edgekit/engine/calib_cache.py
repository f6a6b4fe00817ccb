"""TensorRT calibration cache: the text format ``IInt8EntropyCalibrator2`` writes and reads back.

    TRT-8201-EntropyCalibration2
    images: 3c010204
    conv1_out: 3d4ccccd

The first line names the TensorRT version (major, minor, patch as one number: 8.2.1 -> 8201,
10.3.0 -> 100300) and the calibration algorithm. Each following line is ``tensor name: scale``,
the scale being the per-tensor INT8 step (amax / 127) written as the 8 hex digits of its
big-endian IEEE-754 float32 bits. A board that finds this file next to an ONNX model can build
an implicit-INT8 engine without running calibration itself: the calibrator's
``read_calibration_cache`` returns these bytes and TensorRT skips calibration.

Device side (Python 3.6, no numpy needed). Written by ``edgekit quantize`` on the desktop.
"""

import struct

from edgekit.errors import ModelError

ALGORITHM = "EntropyCalibration2"
DEFAULT_HEADER = "TRT-8201-%s" % ALGORITHM          # TensorRT 8.2.1, the Jetson Nano's (JetPack 4.6)
INT8_MAX = 127.0


def header_for(tensorrt_version=None, algorithm=ALGORITHM):
    """The first line for a TensorRT version string ("8.2.1" -> "TRT-8201-EntropyCalibration2")."""
    if not tensorrt_version:
        return DEFAULT_HEADER if algorithm == ALGORITHM else "TRT-8201-%s" % algorithm
    parts = [int(p) for p in str(tensorrt_version).split(".")[:3]]
    parts += [0] * (3 - len(parts))
    major, minor, patch = parts
    if major >= 10:       # NV_TENSORRT_VERSION = major*10000 + minor*100 + patch from TensorRT 10
        number = major * 10000 + minor * 100 + patch
    else:                 # major*1000 + minor*100 + patch before
        number = major * 1000 + minor * 100 + patch
    return "TRT-%d-%s" % (number, algorithm)


def scale_to_hex(scale):
    """float -> 8 hex digits of its big-endian float32 bits (1/127 -> '3c010204')."""
    return "".join("%02x" % b for b in bytearray(struct.pack(">f", float(scale))))


def hex_to_scale(text):
    """8 hex digits -> float (the float32 value, widened)."""
    text = text.strip()
    if len(text) != 8:
        raise ValueError("expected 8 hex digits, got %r" % text)
    return struct.unpack(">f", bytes(bytearray.fromhex(text)))[0]


def scale_from_amax(amax):
    """The symmetric INT8 step TensorRT uses for a tensor whose values lie in [-amax, amax]."""
    amax = abs(float(amax))
    return amax / INT8_MAX if amax > 0 else 1.0 / INT8_MAX


def format_calibration_cache(scales, header=DEFAULT_HEADER):
    """The cache text: header line, then one ``name: hex`` line per tensor (sorted by name)."""
    if not header or "\n" in header or not header.startswith("TRT-"):
        raise ValueError("calibration cache header must be one line starting with 'TRT-', got %r" % (header,))
    lines = [header]
    for name in sorted(scales):
        scale = float(scales[name])
        if "\n" in name:
            raise ValueError("tensor name with a newline: %r" % name)
        if not scale > 0 or scale != scale or scale == float("inf"):
            raise ValueError("scale of %s must be a positive finite number, got %r" % (name, scale))
        lines.append("%s: %s" % (name, scale_to_hex(scale)))
    return "\n".join(lines) + "\n"


def parse_calibration_cache(text, source="calibration cache"):
    """Text -> (header, {tensor name: scale}); a ModelError names the first bad line."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not lines[0].startswith("TRT-"):
        raise ModelError("%s is not a TensorRT calibration cache (first line should start with 'TRT-')" % source,
                         hint="write it with `edgekit quantize --precision int8`")
    header = lines[0].strip()
    scales = {}
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        name, sep, value = line.rpartition(":")
        try:
            if not sep or not name:
                raise ValueError("no 'name: value'")
            scales[name] = hex_to_scale(value)
        except ValueError as exc:
            raise ModelError("%s line %d is malformed (%s): %r" % (source, number, exc, line[:80]),
                             hint="regenerate it with `edgekit quantize --precision int8`")
    return header, scales


def write_calibration_cache(path, scales, header=DEFAULT_HEADER):
    """Write ``{tensor name: scale}`` atomically in the TensorRT cache format."""
    from edgekit.fsutil import atomic_write_text

    atomic_write_text(path, format_calibration_cache(scales, header=header))
    return path


def read_calibration_cache(path):
    """Read a cache file -> (header, {tensor name: scale})."""
    try:
        with open(str(path), "rb") as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise ModelError("cannot read calibration cache %s: %s" % (path, getattr(exc, "strerror", None) or exc),
                         hint="check the path")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError("%s is not a text calibration cache" % path,
                         hint="write it with `edgekit quantize --precision int8`")
    return parse_calibration_cache(text, source=str(path))


def header_version(header):
    """'TRT-8201-EntropyCalibration2' -> (8201, 'EntropyCalibration2')."""
    parts = header.split("-", 2)
    if len(parts) != 3 or parts[0] != "TRT" or not parts[1].isdigit():
        raise ModelError("unrecognised calibration cache header %r" % header,
                         hint="expected e.g. %s" % DEFAULT_HEADER)
    return int(parts[1]), parts[2]
