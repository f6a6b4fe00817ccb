"""The daemon's own process figures from /proc (Linux; nothing elsewhere): memory, CPU, open files,
threads. Served on ``/metrics`` under the names Prometheus' client libraries use for every process
(``process_resident_memory_bytes``, ``process_open_fds``...), so existing dashboards and alerts for
a leak apply unchanged, and in ``/v1/status`` for people. Python 3.6, standard library only.
"""

import os

PROC = "/proc"

# name, type, help - the process collector's names (prometheus/client_python), plus the thread count
METRICS = (
    ("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", "cpu_seconds"),
    ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", "virtual_memory_bytes"),
    ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", "resident_memory_bytes"),
    ("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
     "start_time_seconds"),
    ("process_open_fds", "gauge", "Number of open file descriptors.", "open_fds"),
    ("process_max_fds", "gauge", "Maximum number of open file descriptors.", "max_fds"),
    ("edgekit_threads", "gauge", "OS threads of the daemon's process.", "threads"),
)


def _boot_time(proc):
    with open(os.path.join(proc, "stat")) as handle:
        for line in handle:
            if line.startswith("btime "):
                return float(line.split()[1])
    raise ValueError("no btime in %s/stat" % proc)


def read(proc=PROC, pid="self"):
    """{cpu_seconds, virtual_memory_bytes, resident_memory_bytes, start_time_seconds, open_fds,
    max_fds, threads} of process ``pid``, or {} where there is no /proc (a figure that cannot be
    read is left out, never guessed)."""
    base = os.path.join(proc, str(pid))
    try:
        with open(os.path.join(base, "stat")) as handle:
            text = handle.read()
    except (IOError, OSError):
        return {}
    # "pid (comm) state ppid ..." - comm may hold spaces and parentheses; fields count from state (3)
    fields = text[text.rindex(")") + 2:].split()

    def field(number):
        return fields[number - 3]

    ticks = float(os.sysconf("SC_CLK_TCK"))
    out = {"cpu_seconds": (int(field(14)) + int(field(15))) / ticks,
           "threads": int(field(20)),
           "virtual_memory_bytes": int(field(23)),
           "resident_memory_bytes": int(field(24)) * os.sysconf("SC_PAGE_SIZE")}
    try:
        out["start_time_seconds"] = _boot_time(proc) + int(field(22)) / ticks
    except (IOError, OSError, ValueError, IndexError):
        pass
    try:
        out["open_fds"] = len(os.listdir(os.path.join(base, "fd")))
    except (IOError, OSError):
        pass
    if str(pid) == "self":
        import resource     # Unix only, as /proc is

        out["max_fds"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return out


def render_prometheus(figures):
    """Prometheus text lines for read()'s figures ("" for none)."""
    lines = []
    for name, kind, help_text, key in METRICS:
        if key in figures:
            value = figures[key]
            lines.append("# HELP %s %s" % (name, help_text))
            lines.append("# TYPE %s %s" % (name, kind))
            lines.append("%s %s" % (name, repr(float(value)) if isinstance(value, float) else value))
    return "\n".join(lines) + "\n" if lines else ""


def summary(figures):
    """The figures for people (/v1/status): memory in MB, CPU seconds, open files, threads."""
    out = {}
    if "resident_memory_bytes" in figures:
        out["rss_mb"] = round(figures["resident_memory_bytes"] / 1048576.0, 1)
    if "cpu_seconds" in figures:
        out["cpu_s"] = round(figures["cpu_seconds"], 2)
    for key in ("open_fds", "threads"):
        if key in figures:
            out[key] = figures[key]
    return out
