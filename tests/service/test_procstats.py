"""The daemon's process figures (/proc): against this process, and against a stand-in /proc tree."""

import os
import subprocess
import sys

from edgekit.service import procstats

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# Run in a fresh interpreter: in the test process, threads and files of other tests come and go.
PROBE = r"""
import mmap, os, sys, threading, time
sys.path.insert(0, %(root)r)
from edgekit.service import procstats


def status_kb(key):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])


low = status_kb("VmRSS")
before = procstats.read()
high = status_kb("VmRSS")       # the kernel's per-thread counters may lag by up to 64 pages
assert low - 512 <= before["resident_memory_bytes"] / 1024 <= high + 512, (low, before, high)
assert before["virtual_memory_bytes"] >= before["resident_memory_bytes"]
assert before["threads"] == len(os.listdir("/proc/self/task")) == 1, before

release = threading.Event()
thread = threading.Thread(target=release.wait)
thread.start()
with open(sys.executable, "rb"):
    during = procstats.read()
    assert during["threads"] == before["threads"] + 1, (before, during)
    assert during["open_fds"] == before["open_fds"] + 1, (before, during)
    assert during["open_fds"] == len(os.listdir("/proc/self/fd"))   # both count the listing's own fd
release.set()
thread.join()
after = procstats.read()
for _ in range(200):            # join() returns as the thread ends; the OS thread goes a moment later
    if after["threads"] == before["threads"]:
        break
    time.sleep(0.01)
    after = procstats.read()
assert after["threads"] == before["threads"] and after["open_fds"] == before["open_fds"], (before, after)

# 64 MiB of fresh pages (an anonymous mapping: never memory the allocator already holds), touched
blob = mmap.mmap(-1, 64 * 2 ** 20)
for i in range(0, len(blob), 4096):
    blob[i] = 1
grown = procstats.read()
assert grown["resident_memory_bytes"] - after["resident_memory_bytes"] > 60 * 2 ** 20, (after, grown)
blob.close()

total = 0
while procstats.read()["cpu_seconds"] < after["cpu_seconds"] + 0.1:   # CPU time accrues as we work
    total += sum(range(10000))
assert procstats.read()["start_time_seconds"] == before["start_time_seconds"]
print("ok")
"""


def test_figures_of_a_process_follow_what_it_does():
    out = subprocess.run([sys.executable, "-c", PROBE % {"root": ROOT}], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout


def _fake_proc(root, stat, fds=3, boot="1700000000"):
    pid = root / "4242"
    (pid / "fd").mkdir(parents=True)
    for i in range(fds):
        (pid / "fd" / str(i)).write_text("")
    (pid / "stat").write_text(stat)
    (root / "stat").write_text("cpu  1 2 3\nbtime %s\nprocesses 9\n" % boot)
    return str(root)


def _stat_line(comm, utime=250, stime=50, threads=7, start=1000, vsize=123456789, rss_pages=2048):
    fields = ["S"] + ["0"] * 10 + [str(utime), str(stime)] + ["0"] * 4 + [str(threads), "0", str(start),
                                                                             str(vsize), str(rss_pages)]
    fields += ["0"] * 20
    return "4242 (%s) %s\n" % (comm, " ".join(fields))


def test_stand_in_proc_with_an_awkward_command_name(tmp_path):
    # /proc/PID/stat as proc(5) lays it out; the command name may hold spaces and parentheses
    root = _fake_proc(tmp_path, _stat_line("edge) kit (x"), fds=5)
    ticks = float(os.sysconf("SC_CLK_TCK"))
    figures = procstats.read(proc=root, pid=4242)
    assert figures == {"cpu_seconds": 300 / ticks, "threads": 7, "virtual_memory_bytes": 123456789,
                       "resident_memory_bytes": 2048 * os.sysconf("SC_PAGE_SIZE"),
                       "start_time_seconds": 1700000000 + 1000 / ticks, "open_fds": 5}
    text = procstats.render_prometheus(figures)
    assert "process_threads" not in text and "edgekit_threads 7\n" in text
    assert "process_resident_memory_bytes %d\n" % (2048 * os.sysconf("SC_PAGE_SIZE")) in text
    assert "process_max_fds" not in text                        # only read for this process
    assert procstats.summary(figures) == {"rss_mb": round(2048 * os.sysconf("SC_PAGE_SIZE") / 1048576.0, 1),
                                          "cpu_s": round(300 / ticks, 2), "open_fds": 5, "threads": 7}


def test_no_proc_means_no_figures_and_nothing_rendered(tmp_path):
    assert procstats.read(proc=str(tmp_path / "absent")) == {}
    assert procstats.render_prometheus({}) == "" and procstats.summary({}) == {}
    root = _fake_proc(tmp_path, _stat_line("x"), boot="")     # a figure that cannot be read is left out
    assert "start_time_seconds" not in procstats.read(proc=root, pid=4242)
