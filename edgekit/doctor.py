"""`edgekit doctor`: what this machine has for edgekit, each item ✓ or ✗ with what to do.

On a Jetson: board model, L4T and JetPack, Python, TensorRT / CUDA / cuDNN / pycuda / ONNX Runtime /
OpenCV (and whether cv2 has GStreamer), cameras (V4L2 and CSI), power mode and clocks, memory and
swap, disk. On a laptop the Jetson-only items are skipped with the reason. Every file is read below
``System.root`` and every command goes through ``System.run`` so tests feed recorded files.
"""

import glob
import importlib
import os
import platform
import re
import shutil
import subprocess
import sys

OK, FAIL, WARN, SKIP = "ok", "fail", "warn", "skip"
MARKS = {OK: "✓", FAIL: "✗", WARN: "!", SKIP: "-"}
GIB = 1024 ** 3


class Check(object):
    __slots__ = ("name", "status", "value", "advice")

    def __init__(self, name, status, value, advice=None):
        self.name, self.status, self.value, self.advice = name, status, value, advice

    def as_dict(self):
        return {"name": self.name, "status": self.status, "value": self.value, "advice": self.advice}


class System(object):
    """Where facts come from: files under ``root``, commands through ``run``, modules through ``module``."""

    def __init__(self, root="/", run=None, modules=None):
        self.root = root
        self._run = run
        self._modules = modules          # {name: module or None} overrides, for tests

    def path(self, rel):
        return os.path.join(self.root, rel.lstrip("/"))

    def read(self, rel):
        try:
            with open(self.path(rel), "rb") as handle:
                return handle.read().decode("utf-8", "replace")
        except (IOError, OSError):
            return None

    def glob(self, pattern):
        return sorted(glob.glob(self.path(pattern)))

    def run(self, argv, timeout=10):
        """(exit code, output) or None when the program is absent."""
        if self._run is not None:
            return self._run(argv)
        if shutil.which(argv[0]) is None:
            return None
        try:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  universal_newlines=True, timeout=timeout)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.returncode, proc.stdout

    def module(self, name):
        if self._modules is not None and name in self._modules:
            return self._modules[name]
        try:
            return importlib.import_module(name)
        except Exception:            # ImportError, or a broken native module raising anything
            return None


# -- board ------------------------------------------------------------------------------------
def parse_l4t(text):
    """'# R32 (release), REVISION: 7.1, ...' -> '32.7.1'."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text or "")
    if not match:
        return None
    release = "%s.%s" % (match.group(1), match.group(2))
    return release if release.count(".") >= 2 else release + ".0"


def check_board(system, facts):
    from edgekit.targets import jetpack_for_l4t

    model = system.read("/proc/device-tree/model")
    model = model.strip("\x00\n ") if model else None
    facts["jetson"] = bool(model and "jetson" in model.lower())
    if not facts["jetson"]:
        return [Check("board", SKIP, "%s %s (not a Jetson: no NVIDIA Jetson in /proc/device-tree/model)" % (
            platform.system(), platform.machine()))]
    checks = [Check("board", OK, model)]
    release = parse_l4t(system.read("/etc/nv_tegra_release"))
    if release is None:
        checks.append(Check("jetpack", FAIL, "no L4T release in /etc/nv_tegra_release",
                            "flash the board with JetPack 4.6 (SD card image from NVIDIA)"))
    else:
        jetpack = jetpack_for_l4t(release)
        facts["jetpack"] = jetpack
        checks.append(Check("jetpack", OK, "JetPack %s (L4T R%s)" % (jetpack or "?", release)))
    return checks


def check_python(system, facts):
    version = "%d.%d.%d" % sys.version_info[:3]
    if sys.version_info < (3, 6):
        return [Check("python", FAIL, version, "edgekit needs Python 3.6 or newer")]
    if facts.get("jetson") and facts.get("jetpack", "").startswith("4.") and sys.version_info[:2] != (3, 6):
        return [Check("python", WARN, version + " (%s)" % sys.executable,
                      "JetPack 4.6's TensorRT bindings exist for the system python3 (3.6) only: run edgekit "
                      "with /usr/bin/python3")]
    return [Check("python", OK, "%s (%s)" % (version, sys.executable))]


# -- libraries --------------------------------------------------------------------------------
def check_tensorrt(system, facts):
    trt = system.module("tensorrt")
    if trt is not None:
        facts["tensorrt"] = trt.__version__
        return [Check("tensorrt", OK, trt.__version__)]
    if facts.get("jetson"):
        return [Check("tensorrt", FAIL, "not importable", "sudo apt install python3-libnvinfer (JetPack), and "
                      "run edgekit with /usr/bin/python3")]
    return [Check("tensorrt", SKIP, "not installed (needed only for the tensorrt backend on an NVIDIA GPU)",
                  "use --backend onnxruntime here, or pip install 'edgekit[tensorrt]' on a desktop GPU")]


def cuda_version(system):
    text = system.read("/usr/local/cuda/version.txt")
    match = re.search(r"CUDA Version ([\d.]+)", text or "")
    if match:
        return match.group(1)
    text = system.read("/usr/local/cuda/version.json")
    match = re.search(r'"cuda"\s*:\s*\{[^}]*"version"\s*:\s*"([\d.]+)"', text or "")
    return match.group(1) if match else None


def check_cuda(system, facts):
    version = cuda_version(system)
    if version:
        return [Check("cuda", OK, version)]
    if facts.get("jetson"):
        return [Check("cuda", FAIL, "no /usr/local/cuda", "sudo apt install nvidia-jetpack (or cuda-toolkit-10-2)")]
    return [Check("cuda", SKIP, "no CUDA toolkit in /usr/local/cuda")]


CUDNN_HEADERS = ("/usr/include/cudnn_version.h", "/usr/include/aarch64-linux-gnu/cudnn_version_v8.h",
                 "/usr/include/x86_64-linux-gnu/cudnn_version_v8.h", "/usr/local/cuda/include/cudnn_version.h")


def check_cudnn(system, facts):
    for header in CUDNN_HEADERS:
        text = system.read(header)
        if text:
            parts = [re.search(r"#define CUDNN_%s\s+(\d+)" % p, text) for p in ("MAJOR", "MINOR", "PATCHLEVEL")]
            if all(parts):
                return [Check("cudnn", OK, ".".join(m.group(1) for m in parts))]
    if facts.get("jetson"):
        return [Check("cudnn", WARN, "version header not found", "sudo apt install libcudnn8-dev to see it "
                      "(TensorRT needs only the runtime library)")]
    return [Check("cudnn", SKIP, "not found")]


def check_pycuda(system, facts):
    pycuda = system.module("pycuda")
    if pycuda is None:
        cudart = system.module("cuda.bindings.runtime")
        if cudart is not None and not facts.get("jetson"):
            return [Check("pycuda", SKIP, "not installed; cuda-python is (the tensorrt runner uses it instead)")]
        if facts.get("jetson") or facts.get("tensorrt"):
            return [Check("pycuda", FAIL, "not importable", "build it: bash jetson/setup.sh (pip3 install pycuda "
                          "with /usr/local/cuda/bin on PATH)")]
        return [Check("pycuda", SKIP, "not installed (needed only with TensorRT)")]
    version = getattr(pycuda, "VERSION_TEXT", "?")
    try:
        drv = system.module("pycuda.driver")
        drv.init()
        device = drv.Device(0)
        gpu = "%s, compute %d.%d" % ((device.name(),) + tuple(device.compute_capability()))
    except Exception as exc:          # no driver / no device: say it, do not crash the doctor
        return [Check("pycuda", FAIL, "%s, but CUDA does not start: %s" % (version, str(exc).splitlines()[0]),
                      "check the NVIDIA driver (on a Jetson: reflash or sudo apt install --reinstall nvidia-l4t-cuda)")]
    return [Check("pycuda", OK, version), Check("gpu", OK, gpu)]


def check_onnxruntime(system, facts):
    ort = system.module("onnxruntime")
    if ort is None:
        return [Check("onnxruntime", WARN if facts.get("tensorrt") else FAIL, "not installed",
                      "on a Jetson: NVIDIA's onnxruntime-gpu wheel for your JetPack (Jetson Zoo); elsewhere: "
                      "pip install onnxruntime")]
    providers = ", ".join(p.replace("ExecutionProvider", "") for p in ort.get_available_providers())
    return [Check("onnxruntime", OK, "%s (%s)" % (ort.__version__, providers))]


def gstreamer_in_build(info):
    match = re.search(r"GStreamer:\s*(\S+)(?:\s*\(([^)]*)\))?", info or "")
    if not match:
        return False, None
    return match.group(1).upper() == "YES", match.group(2)


def check_opencv(system, facts):
    cv2 = system.module("cv2")
    if cv2 is None:
        return [Check("opencv", FAIL, "not importable", "on a Jetson: sudo apt install nvidia-opencv (JetPack's OpenCV, "
                      "with GStreamer); elsewhere: pip install opencv-python-headless")]
    has_gst, gst_version = gstreamer_in_build(cv2.getBuildInformation())
    where = getattr(cv2, "__file__", "") or ""
    checks = [Check("opencv", OK, "%s (%s)" % (cv2.__version__, where))]
    if has_gst:
        checks.append(Check("opencv gstreamer", OK, "yes (%s)" % (gst_version or "?")))
    elif facts.get("jetson"):
        checks.append(Check("opencv gstreamer", FAIL, "cv2 built without GStreamer: no CSI or hardware decoding",
                            "a PyPI opencv shadows JetPack's: pip3 uninstall opencv-python opencv-python-headless"))
    else:
        checks.append(Check("opencv gstreamer", WARN, "no (csi://, rtsp:// and gst:// sources need it)",
                            "use a cv2 built with GStreamer (Debian/Ubuntu: python3-opencv)"))
    return checks


# -- devices ----------------------------------------------------------------------------------
def check_cameras(system, facts):
    cams = []
    for dev in system.glob("/dev/video*"):
        node = os.path.basename(dev)
        name = (system.read("/sys/class/video4linux/%s/name" % node) or "").strip()
        kind = "CSI" if "vi-output" in name or "imx" in name.lower() else "USB/V4L2"
        cams.append("/dev/%s %s%s" % (node, kind, " (%s)" % name if name else ""))
    checks = [Check("cameras", OK if cams else WARN, "; ".join(cams) or "none found (/dev/video*)",
                    None if cams else "plug a USB camera or a CSI camera (ribbon, with the board off); file and "
                    "rtsp:// sources still work")]
    if facts.get("jetson") and any("CSI" in c for c in cams):
        argus = system.run(["systemctl", "is-active", "nvargus-daemon"])
        if argus is not None and argus[1].strip() != "active":
            checks.append(Check("csi daemon", FAIL, "nvargus-daemon is %s" % argus[1].strip(),
                                "sudo systemctl restart nvargus-daemon"))
        elif argus is not None:
            checks.append(Check("csi daemon", OK, "nvargus-daemon active"))
    return checks


def check_power(system, facts):
    if not facts.get("jetson"):
        return [Check("power mode", SKIP, "Jetson only (nvpmodel)")]
    out = system.run(["nvpmodel", "-q"])
    if out is None:
        return [Check("power mode", WARN, "nvpmodel not found")]
    match = re.search(r"NV Power Mode:\s*(\S+)", out[1])
    mode = match.group(1) if match else out[1].strip()[:40]
    if mode.upper() == "MAXN":
        return [Check("power mode", OK, mode)]
    return [Check("power mode", WARN, "%s (not the fastest)" % mode, "sudo nvpmodel -m 0 for MAXN (10 W; use a "
                  "5 V 4 A barrel-jack supply, micro-USB browns out under load)")]


GPU_DEVFREQ = "/sys/devices/gpu.0/devfreq/*"        # Nano: /sys/devices/gpu.0/devfreq/57000000.gpu


def _pinned(low, high):
    return low is not None and high is not None and low.strip() == high.strip()


def check_clocks(system, facts):
    """Pinned clocks (jetson_clocks sets min = max): CPU from cpufreq, GPU from devfreq (no root needed)."""
    if not facts.get("jetson"):
        return [Check("clocks", SKIP, "Jetson only (jetson_clocks)")]
    low = system.read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_min_freq")
    high = system.read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if not low or not high:
        return [Check("clocks", WARN, "cpufreq not readable")]
    clocks = [("CPU", int(low) // 1000, int(high) // 1000)]
    pinned = _pinned(low, high)
    for gpu in system.glob(GPU_DEVFREQ)[:1]:
        rel = os.path.relpath(gpu, system.root)
        gpu_low, gpu_high = system.read(rel + "/min_freq"), system.read(rel + "/max_freq")
        if gpu_low and gpu_high:
            clocks.append(("GPU", int(gpu_low) // 1000000, int(gpu_high) // 1000000))
            pinned = pinned and _pinned(gpu_low, gpu_high)
    if pinned:
        return [Check("clocks", OK, "pinned (jetson_clocks): " + ", ".join("%s %d MHz" % (n, h) for n, _, h in clocks))]
    return [Check("clocks", WARN, "not pinned (%s)" % ", ".join("%s %d-%d MHz" % c for c in clocks),
                  "sudo jetson_clocks before profiling, for stable latency figures")]


def check_memory(system, facts):
    from edgekit.engine import memory

    info = memory.parse_meminfo(system.read("/proc/meminfo") or "")
    if "MemTotal" not in info:
        return [Check("memory", SKIP, "no /proc/meminfo")]
    total, avail = info["MemTotal"] / float(GIB), info.get("MemAvailable", 0) / float(GIB)
    swap = info.get("SwapTotal", 0) / float(GIB)
    checks = [Check("memory", OK, "%.1f GiB, %.1f GiB available" % (total, avail))]
    swaps = memory.parse_swaps(system.read("/proc/swaps") or "")
    zram = sum(size for name, size, _used in swaps if memory.is_zram(name)) / float(GIB)
    if zram:            # JetPack's nvzramconfig: compressed RAM, no room for an engine build
        swap = max(0.0, swap - zram)
    shown = "%.1f GiB%s" % (swap, " (+ %.1f GiB zram, not counted)" % zram if zram else "")
    if swap == 0 and total < 4.5:
        checks.append(Check("swap", FAIL, "none" if not zram else shown, "building engines on a small board "
                            "needs a swap file (zram compresses into the same RAM): sudo bash jetson/setup.sh "
                            "--swap-only (4 GB swap file)"))
    else:
        checks.append(Check("swap", OK if swap or total >= 4.5 else WARN, shown))
    return checks


def check_disk(system, facts):
    from edgekit.engine.cache import default_cache_dir

    where = default_cache_dir()
    probe = where
    while probe and not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    try:
        free = shutil.disk_usage(probe).free / float(GIB)
    except OSError:
        return [Check("disk", SKIP, "cannot read free space of %s" % probe)]
    if free < 2:
        return [Check("disk", FAIL, "%.1f GiB free at %s" % (free, probe), "free space: engines, swap and "
                      "bundles need a few GB (sudo apt clean, remove old bundles)")]
    return [Check("disk", OK, "%.1f GiB free at %s" % (free, probe))]


def check_engines(system, facts, cache_dir=None):
    """Cached engines, and those a TensorRT upgrade has made stale (rebuilt on next use)."""
    from edgekit.engine import cache

    where = cache_dir or cache.default_cache_dir()
    found = [e for e in cache.entries(where) if e.complete]
    if not found:
        return [Check("engine cache", OK, "empty (%s)" % where)]
    size = sum(os.path.getsize(e.engine) for e in found) / 1048576.0
    stale = [e for e in found if facts.get("tensorrt") and e.key.get("tensorrt") != facts["tensorrt"]]
    if stale:
        versions = sorted(set(str(e.key.get("tensorrt")) for e in stale))
        return [Check("engine cache", WARN, "%d engine(s), %.0f MiB; %d built with TensorRT %s, not %s" % (
            len(found), size, len(stale), ", ".join(versions), facts["tensorrt"]),
            "they are rebuilt on next use; `edgekit build --clear` frees the space now")]
    return [Check("engine cache", OK, "%d engine(s), %.0f MiB in %s" % (len(found), size, where))]


CHECKS = (check_board, check_python, check_tensorrt, check_cuda, check_cudnn, check_pycuda, check_onnxruntime,
          check_opencv, check_cameras, check_power, check_clocks, check_memory, check_disk, check_engines)


def diagnose(system=None):
    """Run every check -> {"jetson": bool, "ok": bool, "checks": [...]}."""
    system = system or System()
    facts = {}
    checks = []
    for check in CHECKS:
        checks.extend(check(system, facts))
    return {"jetson": bool(facts.get("jetson")), "ok": not any(c.status == FAIL for c in checks),
            "checks": [c.as_dict() for c in checks]}


def format_report(report, ascii_only=False):
    marks = dict(MARKS, ok="+", fail="x") if ascii_only else MARKS
    width = max(len(c["name"]) for c in report["checks"])
    lines = []
    for c in report["checks"]:
        lines.append("%s %s  %s" % (marks[c["status"]], c["name"].ljust(width), c["value"]))
        if c["advice"] and c["status"] in (FAIL, WARN):
            lines.append("  %s  -> %s" % (" " * width, c["advice"]))
    failed = sum(1 for c in report["checks"] if c["status"] == FAIL)
    lines.append("%d problem(s)" % failed if failed else "no problems found")
    return "\n".join(lines)
