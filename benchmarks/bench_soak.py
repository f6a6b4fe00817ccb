"""Soak: `edgekit serve` for minutes (or hours) with every output and every kind of client, watched
from outside for leaks - resident memory, open files, threads - the way a board runs all day.

The daemon (a subprocess, as systemd runs it) serves the shapes detector (random weights, exported
here) on a 640x480 MP4 paced at 30 fps like a camera and looped (the capture is closed and reopened at
every end of the file), writes JSON Lines rotated every 1 MB, publishes over MQTT to a real mosquitto
(when installed), and serves HTTP to:
  - a watcher on /v1/stream.mjpg for the whole run;
  - a stream client that connects, takes 5 frames and leaves, again and again;
  - a poller of /metrics, /v1/status, /v1/latest and /v1/snapshot.jpg, a new connection each time.
It gets SIGHUP (reload of config and model) every 20 s and SIGTERM at the end.

Every 2 s the process's figures are read from /proc (edgekit/service/procstats.py, pid of the daemon).
The first quarter of the run is warm-up (caches, allocator arenas, first reloads); leaks are judged
on the rest. Claims (goals fixed before the first run):
  - resident memory: median of the last quarter <= median of the second quarter + 2 %, and the
    least-squares slope after warm-up is printed in MB per hour;
  - open files and threads: their floor (10th percentile: the level they are at or above 90 % of
    the time) in the second half <= in the first half after warm-up. A leak raises the floor; clients
    connecting at the instant of a sample only make peaks, and a reload caught mid-swap a rare dip;
  - no client error and no failed reload; the daemon exits 0 within 2 s of SIGTERM.

EDGEKIT_SOAK_SECONDS sets the length (default 300), EDGEKIT_SOAK_RELOAD_S the SIGHUP interval (0: none); ``EDGEKIT_SOAK_SECONDS=14400 python
benchmarks/run.py soak`` soaks for four hours. A plot of memory and open files over time is written
beside the JSON (runs/bench/soak.png).
"""

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))       # the tests' real-mosquitto helper

from _common import OUT_DIR, claim, export_recipe, make_video, median, write  # noqa: E402

SECONDS = float(os.environ.get("EDGEKIT_SOAK_SECONDS", "300"))
SAMPLE_S = 2.0
RELOAD_EVERY_S = float(os.environ.get("EDGEKIT_SOAK_RELOAD_S", "20"))   # 0: no reloads
VIDEO_FRAMES = 300          # 10 s at 30 fps: the file ends and is reopened every 10 s


class Clients(object):
    """The HTTP clients, each in its own thread, counting answers and errors until stopped."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = {"requests": 0, "stream_frames": 0, "stream_sessions": 0, "busy": 0}
        self.errors = []
        self.threads = [threading.Thread(target=fn) for fn in (self.watcher, self.short_streams, self.poller)]

    def count(self, key, n=1):
        with self.lock:
            self.counts[key] += n

    def error(self, text):
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append("%.1f s: %s" % (time.time() - self.started, text))
            self.counts.setdefault("errors", 0)
            self.counts["errors"] += 1

    def stream(self, max_frames=None):
        """Read /v1/stream.mjpg until stopped or ``max_frames``; frames read."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/v1/stream.mjpg")
            answer = conn.getresponse()
            if answer.status == 503:        # the stream limit: an answer, not an error
                self.count("busy")
                return 0
            if answer.status != 200:
                self.error("stream: HTTP %d" % answer.status)
                return 0
            self.count("stream_sessions")
            frames, tail = 0, b""
            while not self.stop.is_set() and (max_frames is None or frames < max_frames):
                chunk = answer.read1(65536) if hasattr(answer, "read1") else answer.read(4096)
                if not chunk:
                    self.error("stream: closed by the server")
                    break
                found = (tail + chunk).count(b"--edgekit-frame")
                tail = chunk[-16:]
                frames += found
                self.count("stream_frames", found)
            return frames
        except (OSError, http.client.HTTPException) as exc:
            self.error("stream: %s: %s" % (type(exc).__name__, exc))
            return 0
        finally:
            conn.close()

    def watcher(self):
        while not self.stop.is_set():
            self.stream()

    def short_streams(self):
        while not self.stop.is_set():
            self.stream(max_frames=5)
            self.stop.wait(0.5)

    def poller(self):
        routes = ("/metrics", "/v1/status", "/v1/latest", "/v1/snapshot.jpg")
        i = 0
        while not self.stop.wait(0.1):
            route = routes[i % len(routes)]
            i += 1
            try:
                status, body = get(self.port, route)
                if status != 200 or not body:
                    self.error("%s: HTTP %d" % (route, status))
                self.count("requests")
            except (OSError, http.client.HTTPException) as exc:
                self.error("%s: %s: %s" % (route, type(exc).__name__, exc))

    def __enter__(self):
        self.started = time.time()
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(15)


def floor(samples, key):
    """The 10th percentile (nearest rank) of samples[key]."""
    from edgekit.profiler.stats import percentile

    return percentile(sorted(s[key] for s in samples), 10)


def slope_per_hour(samples, key):
    """Least-squares slope of samples[key] against time, per hour."""
    ts = [s["t"] for s in samples]
    ys = [s[key] for s in samples]
    if len(ts) < 3:
        return None
    mt, my = sum(ts) / len(ts), sum(ys) / len(ys)
    den = sum((t - mt) ** 2 for t in ts)
    return sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / den * 3600.0 if den else None


def plot(samples, warmup_s, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = [s["t"] / 60.0 for s in samples]
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    for ax, key, label in zip(axes, ("rss_mb", "open_fds", "threads"), ("resident memory (MB)", "open files",
                                                                         "threads")):
        ax.plot(ts, [s[key] for s in samples], lw=1.2)
        ax.axvline(warmup_s / 60.0, color="grey", ls="--", lw=0.8)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_title("edgekit serve, soak: HTTP + MQTT + JSON Lines, %s (dashed: end of warm-up)" % (
        "SIGHUP every %.0f s" % RELOAD_EVERY_S if RELOAD_EVERY_S else "no SIGHUP"), fontsize=9)
    axes[-1].set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=90)
    plt.close(fig)
    os.replace(path + ".tmp.png", path)


def start_broker(workdir):
    from _mosquitto import MOSQUITTO, Broker

    if not MOSQUITTO:
        print("soak: mosquitto is not installed, so MQTT is left out of the soak", flush=True)
        return None
    return Broker(workdir).start()


def run_soak(workdir):
    from _net import free_port, wait_port

    from edgekit.service import procstats

    _, _, model = export_recipe("shapes-detector", workdir, ["circle", "square", "triangle"])
    video = make_video(os.path.join(workdir, "clip.mp4"), VIDEO_FRAMES)
    broker = start_broker(workdir)
    port = free_port()
    config = {"device_id": "soak", "model": {"path": model},
              "source": {"uri": video, "loop": True, "realtime": True},
              "outputs": {"jsonl": {"path": os.path.join(workdir, "out", "results.jsonl"),
                                    "max_bytes": 1048576, "backups": 2},
                          "http": {"listen": "127.0.0.1:%d" % port},
                          "mqtt": {"host": "127.0.0.1", "port": broker.port, "telemetry_interval_s": 1.0}
                          if broker else {"host": None}}}
    os.makedirs(os.path.join(workdir, "out"))
    path = os.path.join(workdir, "serve.json")      # YAML is a superset of JSON
    with open(path, "w") as handle:
        json.dump(config, handle)
    summary_path = os.path.join(workdir, "summary.json")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log = open(os.path.join(workdir, "serve.log"), "w")
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "serve", "--config", path, "--summary", summary_path],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    samples, reloads = [], 0
    try:
        if not wait_port(port, 60) or not wait_ready(port, 60):
            raise RuntimeError("the daemon was not ready (HTTP /readyz) within 60 s")
        start = time.time()
        next_reload = start + RELOAD_EVERY_S
        with Clients(port) as clients:
            while time.time() - start < SECONDS:
                if proc.poll() is not None:
                    raise RuntimeError("the daemon exited with %s during the soak" % proc.returncode)
                figures = procstats.read(pid=proc.pid)
                samples.append({"t": time.time() - start, "rss_mb": figures["resident_memory_bytes"] / 1048576.0,
                                "open_fds": figures["open_fds"], "threads": figures["threads"],
                                "cpu_s": figures["cpu_seconds"]})
                if RELOAD_EVERY_S and time.time() >= next_reload:
                    proc.send_signal(signal.SIGHUP)
                    reloads += 1
                    next_reload += RELOAD_EVERY_S
                time.sleep(SAMPLE_S)
        status = json.loads(get(port, "/v1/status")[1].decode("utf-8"))
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        exit_s = time.time() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        if broker:
            broker.stop()
    with open(summary_path) as handle:
        summary = json.load(handle)
    rotated = sorted(f for f in os.listdir(os.path.join(workdir, "out")))
    return {"samples": samples, "reloads_sent": reloads, "status": status, "summary": summary,
            "exit_code": proc.returncode, "exit_s": exit_s, "clients": dict(clients.counts),
            "client_errors": clients.errors, "jsonl_files": rotated, "mqtt": broker is not None}


def wait_ready(port, timeout):
    """True once /readyz answers 200: the model is loaded and frames flow (before that, /v1/latest
    rightly answers 503, which is not what the soak looks for)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if get(port, "/readyz", timeout=5)[0] == 200:
                return True
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.2)
    return False


def get(port, route, timeout=10):
    """GET http://127.0.0.1:port/route on a new connection: (status, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", route)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def judge(result):
    samples = result["samples"]
    warmup = SECONDS / 4.0
    after = [s for s in samples if s["t"] >= warmup]
    half = SECONDS / 2.0
    first = [s for s in after if s["t"] < half]          # the second quarter
    second = [s for s in after if s["t"] >= half]
    rss_q2 = median(s["rss_mb"] for s in first)
    rss_q4 = median(s["rss_mb"] for s in second if s["t"] >= 3 * SECONDS / 4.0)
    out = {"seconds": SECONDS, "warmup_s": warmup, "rss_mb_second_quarter": rss_q2, "rss_mb_last_quarter": rss_q4,
           "rss_growth": rss_q4 / rss_q2 - 1.0, "rss_mb_per_hour": slope_per_hour(after, "rss_mb"),
           "open_fds_floor": [floor(first, "open_fds"), floor(second, "open_fds")],
           "threads_floor": [floor(first, "threads"), floor(second, "threads")],
           "cpu_share": (samples[-1]["cpu_s"] - samples[0]["cpu_s"]) / (samples[-1]["t"] - samples[0]["t"])}
    status, summary = result["status"], result["summary"]
    print("soak: %.0f s, %d frames (%.1f fps), %d dropped, %d reconnects, %d reloads (%d sent, %d failed); "
          "clients: %s; %d JSON Lines files; MQTT %s" % (
              SECONDS, summary["frames"], summary["fps"], summary["dropped"], summary["reconnects"],
              status.get("reloads", 0), result["reloads_sent"], status.get("reload_failures", 0),
              ", ".join("%s %d" % kv for kv in sorted(result["clients"].items())), len(result["jsonl_files"]),
              "on" if result["mqtt"] else "off"), flush=True)
    print("soak: resident memory %.1f MB (second quarter) -> %.1f MB (last quarter), slope after warm-up %.1f MB/h; "
          "open files' floor %d -> %d; threads' floor %d -> %d (first half -> second half after warm-up); "
          "CPU %.0f %% of a core" % (
              rss_q2, rss_q4, out["rss_mb_per_hour"] or 0.0, out["open_fds_floor"][0], out["open_fds_floor"][1],
              out["threads_floor"][0], out["threads_floor"][1], 100 * out["cpu_share"]), flush=True)
    print("soak: the stop took %.2f s: %s" % (summary["stop_s"]["total"], json.dumps(summary["stop_s"])), flush=True)
    if result["client_errors"]:
        print("soak: client errors (first %d): %s" % (len(result["client_errors"]), "; ".join(result["client_errors"])))
    failed_reloads = status.get("reload_failures", 0)
    out["claims"] = [
        claim("soak_rss_growth_after_warmup", out["rss_growth"], "<= 0.02", ok=out["rss_growth"] <= 0.02),
        claim("soak_open_fds_floor_second_half_vs_first", out["open_fds_floor"][1] - out["open_fds_floor"][0], "<= 0",
              ok=out["open_fds_floor"][1] <= out["open_fds_floor"][0]),
        claim("soak_threads_floor_second_half_vs_first", out["threads_floor"][1] - out["threads_floor"][0], "<= 0",
              ok=out["threads_floor"][1] <= out["threads_floor"][0]),
        claim("soak_client_errors_and_failed_reloads", result["clients"].get("errors", 0) + failed_reloads, "== 0",
              ok=result["clients"].get("errors", 0) + failed_reloads == 0),
        claim("soak_sigterm_exit_s", result["exit_s"], "<= 2 s, exit 0",
              ok=result["exit_s"] <= 2.0 and result["exit_code"] == 0),
    ]
    return out


def main():
    workdir = tempfile.mkdtemp(prefix="edgekit-soak-")
    try:
        result = run_soak(workdir)
    except Exception:
        log = os.path.join(workdir, "serve.log")
        if os.path.exists(log):
            with open(log) as handle:
                print("soak: the end of the daemon's log (%s):\n%s" % (log, handle.read()[-3000:]), flush=True)
        raise
    out = judge(result)
    out.update(result)
    os.makedirs(OUT_DIR, exist_ok=True)
    shutil.copy(os.path.join(workdir, "serve.log"), os.path.join(OUT_DIR, "soak-serve.log"))
    plot(result["samples"], out["warmup_s"], os.path.join(OUT_DIR, "soak.png"))
    write("soak", out)
    shutil.rmtree(workdir, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()
