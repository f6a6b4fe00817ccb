"""`edgekit doctor` with recorded Jetson files (a JetPack 4.6.1 Nano) and on this laptop-like machine."""

import json
import os
import subprocess
import sys
import types

import pytest

from edgekit import doctor

NV_TEGRA_RELEASE = ("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, "
                    "DATE: Sat Feb 19 17:05:08 UTC 2022\n")
MEMINFO = "MemTotal:        4059272 kB\nMemAvailable:    2310552 kB\nSwapTotal:       %d kB\nSwapFree: 0 kB\n"
CUDNN_H = "#define CUDNN_MAJOR 8\n#define CUDNN_MINOR 2\n#define CUDNN_PATCHLEVEL 1\n"
BUILD_INFO = "  Video I/O:\n    FFMPEG:                      NO\n    GStreamer:                   %s\n"


def write(root, rel, text):
    path = os.path.join(str(root), rel.lstrip("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def nano_root(tmp_path, swap_kb=2029632, pinned=False, csi=True):
    write(tmp_path, "/proc/device-tree/model", "NVIDIA Jetson Nano Developer Kit\x00")
    write(tmp_path, "/etc/nv_tegra_release", NV_TEGRA_RELEASE)
    write(tmp_path, "/proc/meminfo", MEMINFO % swap_kb)
    write(tmp_path, "/usr/local/cuda/version.txt", "CUDA Version 10.2.300\n")
    write(tmp_path, "/usr/include/aarch64-linux-gnu/cudnn_version_v8.h", CUDNN_H)
    write(tmp_path, "/sys/devices/system/cpu/cpu0/cpufreq/scaling_min_freq", "1479000\n" if pinned else "102000\n")
    write(tmp_path, "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "1479000\n")
    write(tmp_path, "/sys/devices/gpu.0/devfreq/57000000.gpu/min_freq", "921600000\n" if pinned else "76800000\n")
    write(tmp_path, "/sys/devices/gpu.0/devfreq/57000000.gpu/max_freq", "921600000\n")
    if csi:
        write(tmp_path, "/dev/video0", "")
        write(tmp_path, "/sys/class/video4linux/video0/name", "vi-output, imx219 6-0010\n")
    write(tmp_path, "/dev/video1", "")
    write(tmp_path, "/sys/class/video4linux/video1/name", "HD Pro Webcam C920\n")
    return str(tmp_path)


def fake_run(outputs):
    def run(argv):
        return outputs.get(argv[0])
    return run


def fake_modules(gstreamer="YES (1.14.5)", trt=True, pycuda=True):
    cv2 = types.SimpleNamespace(__version__="4.1.1", __file__="/usr/lib/python3.6/dist-packages/cv2.so",
                                getBuildInformation=lambda: BUILD_INFO % gstreamer)
    trt_mod = types.SimpleNamespace(__version__="8.2.1.8") if trt else None
    device = types.SimpleNamespace(name=lambda: "NVIDIA Tegra X1", compute_capability=lambda: (5, 3))
    drv = types.SimpleNamespace(init=lambda: None, Device=lambda i: device)
    return {"cv2": cv2, "tensorrt": trt_mod, "pycuda": types.SimpleNamespace(VERSION_TEXT="2021.1") if pycuda else None,
            "pycuda.driver": drv, "onnxruntime": None, "cuda.bindings.runtime": None}


def by_name(report):
    return dict((c["name"], c) for c in report["checks"])


def test_a_healthy_nano(tmp_path):
    system = doctor.System(root=nano_root(tmp_path, pinned=True), modules=fake_modules(),
                           run=fake_run({"nvpmodel": (0, "NV Power Mode: MAXN\n0\n"),
                                         "systemctl": (0, "active\n")}))
    report = doctor.diagnose(system)
    checks = by_name(report)
    assert report["jetson"] is True
    assert checks["board"]["value"] == "NVIDIA Jetson Nano Developer Kit"
    assert checks["jetpack"]["value"] == "JetPack 4.6.1 (L4T R32.7.1)"
    assert checks["tensorrt"]["value"] == "8.2.1.8" and checks["cuda"]["value"] == "10.2.300"
    assert checks["cudnn"]["value"] == "8.2.1" and checks["gpu"]["value"] == "NVIDIA Tegra X1, compute 5.3"
    assert checks["opencv gstreamer"]["status"] == "ok" and "1.14.5" in checks["opencv gstreamer"]["value"]
    assert "/dev/video0 CSI (vi-output, imx219 6-0010)" in checks["cameras"]["value"]
    assert "/dev/video1 USB/V4L2" in checks["cameras"]["value"]
    assert checks["csi daemon"]["status"] == "ok"
    assert checks["power mode"]["value"] == "MAXN" and checks["clocks"]["status"] == "ok"
    assert checks["clocks"]["value"] == "pinned (jetson_clocks): CPU 1479 MHz, GPU 921 MHz"
    assert checks["swap"]["status"] == "ok"
    assert checks["onnxruntime"]["status"] == "warn"      # TensorRT is there: ORT is optional
    text = doctor.format_report(report)
    assert "✓ board" in text and "! onnxruntime" in text


def test_a_nano_with_problems_says_what_to_do(tmp_path):
    system = doctor.System(root=nano_root(tmp_path, swap_kb=0), modules=fake_modules(gstreamer="NO", trt=False,
                                                                                      pycuda=False),
                           run=fake_run({"nvpmodel": (0, "NV Power Mode: 5W\n1\n"), "systemctl": (3, "inactive\n")}))
    report = doctor.diagnose(system)
    checks = by_name(report)
    assert report["ok"] is False
    assert checks["tensorrt"]["status"] == "fail" and "python3-libnvinfer" in checks["tensorrt"]["advice"]
    assert checks["pycuda"]["status"] == "fail" and "jetson/setup.sh" in checks["pycuda"]["advice"]
    assert checks["opencv gstreamer"]["status"] == "fail" and "pip3 uninstall" in checks["opencv gstreamer"]["advice"]
    assert checks["swap"]["status"] == "fail" and "--swap-only" in checks["swap"]["advice"]
    assert checks["power mode"]["status"] == "warn" and "nvpmodel -m 0" in checks["power mode"]["advice"]
    assert checks["clocks"]["status"] == "warn" and "jetson_clocks" in checks["clocks"]["advice"]
    assert checks["clocks"]["value"] == "not pinned (CPU 102-1479 MHz, GPU 76-921 MHz)"
    assert checks["csi daemon"]["status"] == "fail" and "restart nvargus-daemon" in checks["csi daemon"]["advice"]
    text = doctor.format_report(report, ascii_only=True)
    assert "x tensorrt" in text and "-> sudo apt install python3-libnvinfer" in text


def test_a_laptop_skips_jetson_checks_with_the_reason(tmp_path):
    system = doctor.System(root=str(tmp_path), modules=dict(fake_modules(trt=False, pycuda=False)), run=fake_run({}))
    checks = by_name(doctor.diagnose(system))
    assert checks["board"]["status"] == "skip" and "not a Jetson" in checks["board"]["value"]
    assert checks["power mode"]["status"] == "skip" and checks["clocks"]["status"] == "skip"
    assert checks["tensorrt"]["status"] == "skip" and "onnxruntime" in checks["tensorrt"]["advice"]
    assert "jetpack" not in checks


@pytest.mark.parametrize("text,expected", [
    (NV_TEGRA_RELEASE, "32.7.1"), ("# R35 (release), REVISION: 4.1, GCID: 1", "35.4.1"),
    ("# R36 (release), REVISION: 3, GCID", "36.3.0"), ("garbage", None), (None, None)])
def test_parse_l4t(text, expected):
    assert doctor.parse_l4t(text) == expected


def test_gstreamer_line():
    assert doctor.gstreamer_in_build(BUILD_INFO % "YES (1.20.3)") == (True, "1.20.3")
    assert doctor.gstreamer_in_build(BUILD_INFO % "NO") == (False, None)


def test_cli_json_on_this_machine():
    proc = subprocess.run([sys.executable, "-m", "edgekit", "doctor", "--json"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    report = json.loads(proc.stdout)
    assert proc.returncode == (0 if report["ok"] else 1)
    names = [c["name"] for c in report["checks"]]
    assert names[:3] == ["board", "python", "tensorrt"] and "disk" in names
    assert all(c["status"] in ("ok", "fail", "warn", "skip") for c in report["checks"])


def test_cli_on_a_recorded_nano(tmp_path):
    root = nano_root(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "edgekit", "doctor", "--root", root], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert "NVIDIA Jetson Nano Developer Kit" in proc.stdout and "JetPack 4.6.1" in proc.stdout


def test_desktop_with_cuda_python_instead_of_pycuda(tmp_path):
    modules = dict(fake_modules(pycuda=False), **{"cuda.bindings.runtime": types.SimpleNamespace()})
    checks = by_name(doctor.diagnose(doctor.System(root=str(tmp_path), modules=modules, run=fake_run({}))))
    assert checks["pycuda"]["status"] == "skip" and "cuda-python" in checks["pycuda"]["value"]


def test_engines_built_by_another_tensorrt_are_reported(tmp_path):
    from edgekit.engine import cache

    key = cache.make_key("ab" * 32, "8.2.1.8", "10.2", "NVIDIA Tegra X1", "5.3", "fp16")
    engine, sidecar = cache.entry_paths(str(tmp_path), "m", key)
    cache.write_entry(engine, sidecar, b"x" * 2048, {"format": cache.FORMAT, "model": "m", "key": key})
    (check,) = doctor.check_engines(None, {"tensorrt": "8.2.1.8"}, cache_dir=str(tmp_path))
    assert check.status == "ok" and check.value.startswith("1 engine(s)")
    (check,) = doctor.check_engines(None, {"tensorrt": "8.5.2.2"}, cache_dir=str(tmp_path))
    assert check.status == "warn" and "built with TensorRT 8.2.1.8, not 8.5.2.2" in check.value
    assert "--clear" in check.advice
    (check,) = doctor.check_engines(None, {}, cache_dir=str(tmp_path / "none"))
    assert check.value.startswith("empty")


def test_zram_alone_is_not_swap_for_engine_builds(tmp_path):
    """JetPack 4.6 enables zram (nvzramconfig): on a 4 GB Nano that is all the swap there is, and it
    compresses into the same RAM, so the doctor asks for a swap file (jetson/setup.sh makes one)."""
    root = nano_root(tmp_path)
    write(tmp_path, "/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n" + "".join(
        "/dev/zram%d partition 507408 0 5\n" % i for i in range(4)))
    system = doctor.System(root=root, modules=fake_modules(), run=fake_run({"nvpmodel": (0, "NV Power Mode: MAXN\n0\n")}))
    swap = by_name(doctor.diagnose(system))["swap"]
    assert swap["status"] == "fail" and "zram, not counted" in swap["value"] and "--swap-only" in swap["advice"]
    write(tmp_path, "/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/dev/zram0 partition 507408 0 5\n"
          "/var/swapfile file 1522224 0 -2\n")
    swap = by_name(doctor.diagnose(system))["swap"]
    assert swap["status"] == "ok" and swap["value"].startswith("1.5 GiB")
