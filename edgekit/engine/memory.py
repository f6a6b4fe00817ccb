"""Memory guard for building engines on small boards.

Building a TensorRT engine on a 4 GB Jetson Nano is memory-bound: CPU and GPU share the DRAM, and
the kernel's OOM killer ends the build with a bare "Killed". So: read /proc/meminfo before building,
cap the builder workspace by default on small boards, refuse with advice when memory plus swap
cannot hold the build, and turn a SIGKILL or MemoryError into the same advice.
"""

import os

from edgekit.errors import UserError

MIB = 1024 ** 2
GIB = 1024 ** 3

# Default workspace by board memory (MemTotal). A Nano 4GB reports ~3.9 GiB, a Nano 2GB ~1.9 GiB.
# Policy, not a device fact: big enough for the tactics small vision models use, small enough to
# leave room for the builder itself. None = TensorRT's own default.
WORKSPACE_DEFAULTS = (           # (MemTotal below, default workspace MiB)
    (2.5 * GIB, 128),
    (4.5 * GIB, 256),
    (8.5 * GIB, 1024),
)
# What a build needs besides the workspace: the CUDA context and the libraries TensorRT loads for its
# tactics, plus a few copies of the weights while the builder times tactics. Measured on a Jetson Nano with
# TensorRT 8.x, TensorRT's own [MemUsageChange] log (wang-xinyu/tensorrtx issue 1145): "Init CUDA: CPU +197",
# "Init cuBLAS/cuBLASLt: ... GPU +281", "Init cuDNN: ... GPU +412" (MiB; on a Tegra the "GPU" memory is the
# same DRAM, so these add up): about 890 MiB before the network itself.
BASE_BUILD_BYTES = 900 * MIB
WEIGHT_COPIES = 3

ADVICE = ("free memory before building: add swap (bash jetson/setup.sh --swap-only, or "
          "sudo fallocate -l 4G /swapfile && sudo mkswap /swapfile && sudo swapon /swapfile), stop the "
          "desktop (sudo systemctl isolate multi-user.target), close other programs, or build with a "
          "smaller --workspace (e.g. --workspace 128)")


class MemoryShortage(UserError):
    """Not enough memory to build an engine."""


def parse_meminfo(text):
    """/proc/meminfo text -> {field: bytes}."""
    info = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, rest = line.split(":", 1)
        parts = rest.split()
        if not parts:
            continue
        try:
            value = int(parts[0])
        except ValueError:
            continue
        if len(parts) > 1 and parts[1].lower() == "kb":
            value *= 1024
        info[key.strip()] = value
    return info


def read_meminfo(path="/proc/meminfo"):
    """{field: bytes}, or {} where there is no /proc (not Linux)."""
    try:
        with open(path) as handle:
            return parse_meminfo(handle.read())
    except (IOError, OSError):
        return {}


def default_workspace_mib(meminfo):
    total = meminfo.get("MemTotal")
    if not total:
        return None
    for below, mib in WORKSPACE_DEFAULTS:
        if total < below:
            return mib
    return None


class MemoryPlan(object):
    """workspace_mib (None: TensorRT's default), needed/available bytes, warnings."""

    def __init__(self, workspace_mib, needed, available, swap_free, warnings):
        self.workspace_mib = workspace_mib
        self.needed, self.available, self.swap_free = needed, available, swap_free
        self.warnings = warnings

    def as_dict(self):
        return {"workspace_mib": self.workspace_mib, "needed_mib": self.needed // MIB,
                "available_mib": self.available // MIB, "swap_free_mib": self.swap_free // MIB,
                "warnings": list(self.warnings)}


def plan_build(meminfo, model_bytes, workspace_mib=None, swaps=None):
    """Decide the workspace and check memory. Raises MemoryShortage when RAM + swap cannot hold the build.

    ``swaps``: ``read_swaps()`` rows. zram swap (JetPack enables it: nvzramconfig) compresses pages into the
    same RAM, so its free space is not counted as room for the build; a swap file or partition is."""
    warnings = []
    if workspace_mib is None:
        workspace_mib = default_workspace_mib(meminfo)
        if workspace_mib is not None:
            warnings.append("workspace capped at %d MiB on this %.1f GiB board (--workspace to change)"
                            % (workspace_mib, meminfo["MemTotal"] / float(GIB)))
    if not meminfo or "MemAvailable" not in meminfo:
        return MemoryPlan(workspace_mib, 0, 0, 0, warnings + ["cannot read /proc/meminfo: memory not checked"])
    available = meminfo["MemAvailable"]
    swap_free = meminfo.get("SwapFree", 0)
    zram_free = sum(size - used for name, size, used in (swaps or []) if is_zram(name))
    if zram_free:
        swap_free = max(0, swap_free - zram_free)
        warnings.append("zram swap (%d MiB free) not counted: it compresses into the same RAM; a swap file "
                        "is what adds room (jetson/setup.sh makes one)" % (zram_free // MIB))
    needed = BASE_BUILD_BYTES + WEIGHT_COPIES * int(model_bytes) + (workspace_mib or 0) * MIB
    if available + swap_free < needed:
        raise MemoryShortage(
            "not enough memory to build this engine: about %d MiB needed, %d MiB free and %d MiB of swap free"
            % (needed // MIB, available // MIB, swap_free // MIB), hint=ADVICE)
    if available < needed:
        warnings.append("only %d MiB of RAM free for a build needing about %d MiB: it will swap and be slow"
                        % (available // MIB, needed // MIB))
    disk_swap = sum(size for name, size, used in (swaps or []) if not is_zram(name)) if swaps is not None \
        else meminfo.get("SwapTotal", 0)
    if disk_swap == 0 and meminfo.get("MemTotal", 0) < 4.5 * GIB:
        warnings.append("no swap on a small board: a build can be killed; add a swap file (jetson/setup.sh)")
    return MemoryPlan(workspace_mib, needed, available, swap_free, warnings)


def killed_error(what="the engine build"):
    """The error for a build ended by SIGKILL (the OOM killer) or MemoryError."""
    return MemoryShortage("%s ran out of memory (killed by the kernel's out-of-memory killer)" % what,
                          hint=ADVICE)


def was_oom_killed(returncode):
    """A child process status that means SIGKILL (-9 from subprocess, 137 from a shell)."""
    return returncode in (-9, 137)


def read_swaps(proc_swaps="/proc/swaps"):
    """[(name, size bytes, used bytes)] from /proc/swaps (sizes there are KiB); [] when unreadable."""
    try:
        with open(proc_swaps) as handle:
            return parse_swaps(handle.read())
    except (IOError, OSError):
        return []


def parse_swaps(text):
    """/proc/swaps text -> [(name, size bytes, used bytes)]."""
    rows = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 4 and parts[2].isdigit() and parts[3].isdigit():
            rows.append((parts[0], int(parts[2]) * 1024, int(parts[3]) * 1024))
    return rows


def is_zram(name):
    return os.path.basename(name).startswith("zram")


def swap_files(proc_swaps="/proc/swaps"):
    return [name for name, _size, _used in read_swaps(proc_swaps)]


def zram_active(proc_swaps="/proc/swaps"):
    return any(is_zram(p) for p in swap_files(proc_swaps))
