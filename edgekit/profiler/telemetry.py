"""Telemetry during a run: this process's CPU % and RSS from /proc; on a Jetson, tegrastats
(GPU %, EMC, temperatures, power rails), the nvpmodel power mode and whether clocks are pinned.

tegrastats lines differ between L4T releases (R32 Nano: ``POM_5V_IN 2003/2003``; R35/R36:
``VDD_IN 4515mW/4515mW`` and a date prefix; ``GR3D_FREQ 0%@76`` or ``0%@[305]`` or ``0%``), so
``parse_tegrastats`` reads fields by name and leaves out what a line lacks.
"""

import os
import re
import subprocess
import threading
import time

# -- tegrastats ---------------------------------------------------------------------------------
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_CORE = re.compile(r"^(\d+)%(?:@(\d+))?$")
# EMC_FREQ 0%@1600 | EMC_FREQ 0% | EMC_FREQ @2133 ; GR3D_FREQ 0%@76 | 0%@[305] | 0%@[0,0] | 0%
_FREQ = re.compile(r"\b([A-Z0-9]+)_FREQ (?:(\d+)%)?(?:@\[?([\d,]+)\]?)?")
_TEMP = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C\b")
_RAIL = re.compile(r"(?:^|\s)([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
_DATE = re.compile(r"^(\d\d-\d\d-\d{4} \d\d:\d\d:\d\d) ")
ABSENT_SENSOR = -256.0   # what R35+ print for a sensor that is not there (CV0@-256C)
ENGINE_NAMES = {"EMC": "emc", "GR3D": "gpu"}


def parse_tegrastats(line):
    """One tegrastats line -> dict with whatever the line has:
    ram_used_mb, ram_total_mb, swap_used_mb, swap_total_mb, cpu [{"load_pct", "mhz"} or None if off],
    cpu_load_pct (mean of online cores), emc_pct/emc_mhz, gpu_pct/gpu_mhz (and other *_FREQ engines
    by lower-case name), temps_c {sensor: C}, power_mw {rail: {"now", "avg"}}, time (R35+ prefix)."""
    line = line.strip()
    out = {}
    m = _DATE.match(line)
    if m:
        out["time"] = m.group(1)
    m = _RAM.search(line)
    if m:
        out["ram_used_mb"], out["ram_total_mb"] = int(m.group(1)), int(m.group(2))
    m = _SWAP.search(line)
    if m:
        out["swap_used_mb"], out["swap_total_mb"] = int(m.group(1)), int(m.group(2))
    m = _CPU.search(line)
    if m:
        cores = [_core(item.strip()) for item in m.group(1).split(",")]
        out["cpu"] = cores
        online = [c["load_pct"] for c in cores if c]
        if online:
            out["cpu_load_pct"] = sum(online) / float(len(online))
    for name, pct, mhz in _FREQ.findall(line):
        prefix = ENGINE_NAMES.get(name, name.lower())
        if pct:
            out[prefix + "_pct"] = int(pct)
        if mhz:
            values = [int(v) for v in mhz.split(",") if v]
            out[prefix + "_mhz"] = values[0] if len(values) == 1 else values
    temps = {}
    for name, value in _TEMP.findall(line):
        value = float(value)
        if value > ABSENT_SENSOR:
            temps[name] = value
    if temps:
        out["temps_c"] = temps
    power = {}
    for name, now, avg in _RAIL.findall(line):
        if name in ("RAM", "SWAP"):
            continue
        power[name] = {"now": int(now), "avg": int(avg)}
    if power:
        out["power_mw"] = power
    return out


def _core(item):
    if item == "off":
        return None
    m = _CORE.match(item)
    if not m:
        return None
    return {"load_pct": int(m.group(1)), "mhz": int(m.group(2)) if m.group(2) else None}


def summarize_tegrastats(records):
    """Mean/max of the numbers that matter over a run's parsed lines."""
    if not records:
        return None
    out = {"lines": len(records)}
    for field in ("gpu_pct", "emc_pct", "cpu_load_pct", "ram_used_mb"):
        values = [r[field] for r in records if isinstance(r.get(field), (int, float))]
        if values:
            out[field] = {"mean": sum(values) / len(values), "max": max(values)}
    temps = {}
    for r in records:
        for name, value in (r.get("temps_c") or {}).items():
            temps[name] = max(temps.get(name, value), value)
    if temps:
        out["temps_max_c"] = temps
    rails = {}
    for r in records:
        for name, value in (r.get("power_mw") or {}).items():
            rails.setdefault(name, []).append(value["now"])
    if rails:
        out["power_mean_mw"] = dict((k, sum(v) / float(len(v))) for k, v in rails.items())
    return out


# -- /proc --------------------------------------------------------------------------------------
def _proc_cpu_seconds(pid="self"):
    try:
        with open("/proc/%s/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = float(os.sysconf("SC_CLK_TCK"))
    return (int(fields[11]) + int(fields[12])) / ticks     # utime + stime


def rss_mb(pid="self"):
    try:
        with open("/proc/%s/status" % pid) as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        return _read("/proc/device-tree/model")
    except OSError:
        return None


# -- Jetson state --------------------------------------------------------------------------------
def _read(path):
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8", "replace").strip("\x00\n ")


def jetson_model():
    """'NVIDIA Jetson Nano Developer Kit' or None when not a Jetson."""
    try:
        model = _read("/proc/device-tree/model")
    except OSError:
        return None
    return model if "jetson" in model.lower() or os.path.exists("/etc/nv_tegra_release") else None


def l4t_release():
    """'R32.7.1' from /etc/nv_tegra_release, or None."""
    try:
        text = _read("/etc/nv_tegra_release")
    except OSError:
        return None
    m = re.search(r"R(\d+) \(release\), REVISION: ([\d.]+)", text)
    return "R%s.%s" % (m.group(1), m.group(2)) if m else text.splitlines()[0]


def _run(argv, timeout=5.0):
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    except OSError:
        return None
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    return out if proc.returncode == 0 else None


def parse_nvpmodel(text):
    """`nvpmodel -q` output ('NV Power Mode: MAXN\\n0') -> {"name": "MAXN", "id": 0}."""
    if not text:
        return None
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("NV Power Mode:"):
            out["name"] = line.split(":", 1)[1].strip()
        elif line.isdigit():
            out["id"] = int(line)
    return out or None


def parse_clocks_show(text):
    """`jetson_clocks --show` -> {"pinned": bool, "cpus": n, "gpu_mhz": ...}. Clocks are pinned when
    every online CPU and the GPU run with MinFreq == MaxFreq (what jetson_clocks sets)."""
    if not text:
        return None
    mins_maxes = []
    out = {}
    for line in text.splitlines():
        m = re.search(r"MinFreq=(\d+) MaxFreq=(\d+) CurrentFreq=(\d+)", line)
        if not m:
            continue
        lo, hi, cur = (int(v) for v in m.groups())
        name = line.split(":")[0].split()[0]
        if name.startswith("cpu") or name.startswith("GPU"):
            mins_maxes.append(lo == hi)
        if name.startswith("GPU"):
            out["gpu_mhz"] = cur / 1e6
        if name.startswith("EMC"):
            out["emc_mhz"] = cur / 1e6
    out["cpus"] = sum(1 for line in text.splitlines() if line.strip().startswith("cpu") and "MinFreq" in line)
    out["pinned"] = bool(mins_maxes) and all(mins_maxes)
    return out


def jetson_state():
    """Power mode and clocks on a Jetson ({} elsewhere). nvpmodel/jetson_clocks need root on
    some releases: then the field says unknown rather than guessing."""
    model = jetson_model()
    if not model:
        return {}
    state = {"model": model, "l4t": l4t_release()}
    state["power_mode"] = parse_nvpmodel(_run(["nvpmodel", "-q"])) or "unknown (nvpmodel -q failed; needs sudo?)"
    clocks = parse_clocks_show(_run(["jetson_clocks", "--show"]))
    state["clocks"] = clocks or {"pinned": None, "note": "jetson_clocks --show failed (needs sudo?)"}
    return state


# -- the sampler ---------------------------------------------------------------------------------
class Telemetry(object):
    """Background sampler: process CPU % (of one core, like top) and RSS every ``interval``;
    tegrastats lines when the binary exists. Use as a context manager around the run."""

    def __init__(self, interval=0.5, tegrastats="auto"):
        self.interval = interval
        self.samples = []          # [{"t", "cpu_pct", "rss_mb"}]
        self.tegrastats = []       # parsed lines
        self._want_tegra = tegrastats
        self._stop = threading.Event()
        self._threads = []
        self._proc = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        t = threading.Thread(target=self._sample_proc, name="telemetry")
        t.daemon = True
        t.start()
        self._threads.append(t)
        if self._want_tegra:
            self._start_tegrastats()
        return self

    def _start_tegrastats(self):
        try:
            self._proc = subprocess.Popen(["tegrastats", "--interval", str(int(self.interval * 1000))],
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          universal_newlines=True)
        except OSError:
            self._proc = None
            return
        t = threading.Thread(target=self._read_tegrastats, name="tegrastats")
        t.daemon = True
        t.start()
        self._threads.append(t)

    def _read_tegrastats(self):
        for line in self._proc.stdout:
            parsed = parse_tegrastats(line)
            if parsed:
                self.tegrastats.append(parsed)
            if self._stop.is_set():
                break

    def _sample_proc(self):
        last_cpu, last_t = _proc_cpu_seconds(), time.perf_counter()
        while not self._stop.wait(self.interval):
            cpu, now = _proc_cpu_seconds(), time.perf_counter()
            pct = None
            if cpu is not None and last_cpu is not None and now > last_t:
                pct = 100.0 * (cpu - last_cpu) / (now - last_t)
            self.samples.append({"t": now, "cpu_pct": pct, "rss_mb": rss_mb()})
            last_cpu, last_t = cpu, now

    def stop(self):
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        for t in self._threads:
            t.join(timeout=2.0)

    def summary(self):
        cpu = [s["cpu_pct"] for s in self.samples if s["cpu_pct"] is not None]
        rss = [s["rss_mb"] for s in self.samples if s["rss_mb"] is not None]
        out = {"interval_s": self.interval, "cpu_pct_mean": sum(cpu) / len(cpu) if cpu else None,
               "cpu_pct_max": max(cpu) if cpu else None, "rss_mb_max": max(rss) if rss else rss_mb(),
               "samples": len(self.samples)}
        tegra = summarize_tegrastats(self.tegrastats)
        if tegra:
            out["tegrastats"] = tegra
        return out
