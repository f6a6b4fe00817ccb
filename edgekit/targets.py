"""Device presets: data with sources. No command hard-codes a device fact; they read these.

Sources (see docs/design/platform.md):
  [JP46]   JetPack 4.6.x: L4T R32.7, Python 3.6.9, CUDA 10.2, cuDNN 8.2.1, TensorRT 8.2.1
           (Ultralytics docs/en/guides/nvidia-jetson.md; mmdeploy docs/en/01-how-to-build/jetsons.md)
  [NANO]   Jetson Nano module: Maxwell GPU, compute 5.3, 128 CUDA cores @ 921.6 MHz,
           472 GFLOP/s FP16 (~236 FP32), 4 GB LPDDR4 at 25.6 GB/s (NVIDIA Jetson Nano data sheet)
  [T2T]    torch2trt benchmarks/JETSON_NANO.md; torch2trt#255 (INT8 slower than FP16 on the Nano)
  [OTRT]   onnx-tensorrt docs/operators.md per release (max opset: 13 for 8.2, 17 for 8.5/8.6)
  [XNX]    NVIDIA Jetson Xavier NX data sheet: Volta, 384 CUDA + 48 tensor cores @ 1100 MHz,
           8 GB LPDDR4x 59.7 GB/s, compute 7.2; JetPack 5.1 ships TensorRT 8.5.2
  [ORIN]   NVIDIA Jetson Orin Nano data sheet: Ampere, 1024 CUDA + 32 tensor cores @ 625 MHz,
           8 GB LPDDR5 68 GB/s, compute 8.7; JetPack 6.x ships TensorRT 10.x
"""

from edgekit.errors import ConfigError

GIGA = 1e9


class Target(object):
    """One device preset. Plain attributes; ``as_dict()`` for JSON."""

    FIELDS = (
        "name", "description", "runtime", "tensorrt", "max_opset", "precisions", "fast_precisions",
        "int8", "peak_flops", "memory_bandwidth", "memory_bytes", "compute_capability", "python",
        "jetpack", "latency_calibration",
    )

    def __init__(self, **fields):
        unknown = set(fields) - set(self.FIELDS)
        if unknown:
            raise TypeError("unknown target fields: %s" % sorted(unknown))
        for key in self.FIELDS:
            setattr(self, key, fields.get(key))

    @property
    def is_jetson(self):
        return self.name.startswith("jetson-")

    @property
    def uses_tensorrt(self):
        return self.runtime == "tensorrt"

    def tensorrt_series(self):
        """'8.2', '8.5', '10' or None: the key of the per-release lint tables."""
        if not self.tensorrt:
            return None
        major, minor = self.tensorrt.split(".")[:2]
        if major == "8":
            return "8.2" if int(minor) < 5 else "8.5"
        return major

    def check_precision(self, precision, force=False):
        """Refuse a precision the hardware cannot run fast, unless forced. Returns a warning or None."""
        from edgekit.errors import PrecisionError

        if precision not in self.precisions:
            raise PrecisionError(
                "%s cannot run %s (it runs: %s)" % (self.name, precision, ", ".join(self.precisions)),
                hint="choose one of those with --precision")
        if precision not in self.fast_precisions:
            message = "%s has no fast %s: %s" % (
                self.name, precision, "its GPU has no INT8 path, FP16 is its fast precision"
                if precision == "int8" and self.name == "jetson-nano" else "it would run slower than %s"
                % "/".join(self.fast_precisions))
            if not force:
                raise PrecisionError(message, hint="use --precision %s, or --force for a bundle meant for "
                                     "another board" % self.fast_precisions[-1])
            return message + " (forced)"
        return None

    def as_dict(self):
        return dict((key, getattr(self, key)) for key in self.FIELDS)


TARGETS = {
    "jetson-nano": Target(
        name="jetson-nano",
        description="Jetson Nano 4GB, JetPack 4.6 (L4T R32.7)",
        runtime="tensorrt",
        tensorrt="8.2.1",                          # [JP46]
        max_opset=13,                              # [OTRT] TensorRT 8.2 parser
        precisions=("fp32", "fp16", "int8"),
        fast_precisions=("fp32", "fp16"),          # [NANO][T2T] no fast INT8 on Maxwell 5.3
        int8=False,
        peak_flops={"fp16": 472 * GIGA, "fp32": 236 * GIGA},   # [NANO]
        memory_bandwidth=25.6 * GIGA,              # [NANO]
        memory_bytes=4 * 1024 ** 3,                # [NANO] shared by CPU and GPU
        compute_capability="5.3",                  # [NANO]
        python="3.6",                              # [JP46]
        jetpack="4.6",
        # Two of the published FP16 batch-1 latencies [T2T]; the estimate is fitted on 20 such figures:
        # edgekit/profiler/estimate_fit.json (python -m edgekit.desktop.export.estimate_fit regenerates it)
        latency_calibration={"resnet18@224": 11.4, "resnet50@224": 29.8},
    ),
    "jetson-xavier-nx": Target(
        name="jetson-xavier-nx",
        description="Jetson Xavier NX, JetPack 5.1",
        runtime="tensorrt",
        tensorrt="8.5.2",                          # [XNX]
        max_opset=17,                              # [OTRT] TensorRT 8.5
        precisions=("fp32", "fp16", "int8"),
        fast_precisions=("fp32", "fp16", "int8"),
        int8=True,
        # 384 cores x 2 x 1.1 GHz = 0.845 TFLOP/s FP32; tensor cores ~6 TFLOP/s FP16 [XNX]
        peak_flops={"fp16": 6000 * GIGA, "fp32": 845 * GIGA, "int8": 12000 * GIGA},
        memory_bandwidth=59.7 * GIGA,              # [XNX]
        memory_bytes=8 * 1024 ** 3,
        compute_capability="7.2",
        python="3.8",
        jetpack="5.1",
        latency_calibration=None,
    ),
    "jetson-orin-nano": Target(
        name="jetson-orin-nano",
        description="Jetson Orin Nano 8GB, JetPack 6",
        runtime="tensorrt",
        tensorrt="10.3.0",                         # [ORIN]
        max_opset=20,                              # [OTRT] TensorRT 10 parser
        precisions=("fp32", "fp16", "int8"),
        fast_precisions=("fp32", "fp16", "int8"),
        int8=True,
        # 1024 cores x 2 x 0.625 GHz = 1.28 TFLOP/s FP32; 20 dense INT8 TOPS -> ~10 FP16 [ORIN]
        peak_flops={"fp16": 10000 * GIGA, "fp32": 1280 * GIGA, "int8": 20000 * GIGA},
        memory_bandwidth=68 * GIGA,                # [ORIN]
        memory_bytes=8 * 1024 ** 3,
        compute_capability="8.7",
        python="3.10",
        jetpack="6.1",
        latency_calibration=None,
    ),
    "x86-cpu": Target(
        name="x86-cpu",
        description="x86-64 CPU with ONNX Runtime (no TensorRT)",
        runtime="onnxruntime",
        tensorrt=None,
        max_opset=17,                              # what edgekit exports for ONNX Runtime
        precisions=("fp32", "fp16", "int8"),
        fast_precisions=("fp32", "int8"),          # FP16 on CPU is emulated: slower than FP32
        int8=True,
        peak_flops=None,                           # host-dependent: measure with `edgekit profile`
        memory_bandwidth=None,
        memory_bytes=None,
        compute_capability=None,
        python="3.10",
        jetpack=None,
        latency_calibration=None,
    ),
    "x86-trt10": Target(
        name="x86-trt10",
        description="Desktop NVIDIA GPU with TensorRT 10",
        runtime="tensorrt",
        tensorrt="10.3.0",
        max_opset=20,                              # [OTRT]
        precisions=("fp32", "fp16", "int8"),
        fast_precisions=("fp32", "fp16", "int8"),
        int8=True,
        peak_flops=None,
        memory_bandwidth=None,
        memory_bytes=None,
        compute_capability=None,
        python="3.10",
        jetpack=None,
        latency_calibration=None,
    ),
}

DEFAULT_TARGET = "jetson-nano"


def get_target(name):
    """Look a preset up by name; a clear error lists the known ones."""
    if isinstance(name, Target):
        return name
    try:
        return TARGETS[name]
    except KeyError:
        raise ConfigError("unknown target %r" % (name,),
                          hint="choose one of: %s" % ", ".join(sorted(TARGETS)))


def names():
    return sorted(TARGETS)


# Board identity -> preset, from the text of /proc/device-tree/model (docs/design/platform.md, "Jetson Nano"):
# e.g. "NVIDIA Jetson Nano Developer Kit", "NVIDIA Jetson Xavier NX Developer Kit",
# "NVIDIA Jetson Orin Nano Developer Kit". First match wins (order matters: "Orin Nano" before "Nano").
BOARD_MODELS = (
    ("Orin Nano", "jetson-orin-nano"),
    ("Xavier NX", "jetson-xavier-nx"),
    ("Jetson Nano", "jetson-nano"),
)


def detect_target(model_path="/proc/device-tree/model"):
    """The preset of the board this runs on, from the device tree; None when not a known board."""
    try:
        with open(model_path, "rb") as handle:
            text = handle.read().decode("utf-8", "replace").strip("\x00\n ")
    except OSError:
        return None
    for needle, name in BOARD_MODELS:
        if needle in text:
            return name
    return None


# L4T release (from /etc/nv_tegra_release) -> JetPack, for `edgekit doctor`.
# Source: NVIDIA JetPack SDK archive (developer.nvidia.com/embedded/jetpack-archive) release notes.
L4T_JETPACK = {
    "32.4.3": "4.4", "32.4.4": "4.4.1", "32.5.0": "4.5", "32.5.1": "4.5.1", "32.5.2": "4.5.1",
    "32.6.1": "4.6", "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3", "32.7.4": "4.6.4",
    "32.7.5": "4.6.5", "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2",
    "35.5.0": "5.1.3", "36.3.0": "6.0", "36.4.0": "6.1", "36.4.3": "6.2",
}


def jetpack_for_l4t(release):
    """'32.7.1' -> '4.6.1'; an unknown release of a known series -> '4.6.x'-style guess, else None."""
    if release in L4T_JETPACK:
        return L4T_JETPACK[release]
    series = {"32.7": "4.6.x", "32.6": "4.6", "35": "5.x", "36": "6.x"}
    for prefix in ("32.7", "32.6", "35", "36"):
        if release.startswith(prefix + "."):
            return series[prefix]
    return None
