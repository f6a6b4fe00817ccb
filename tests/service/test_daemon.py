"""`edgekit serve` as a real process: systemd notify, SIGTERM drain, SIGHUP reload, user errors."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from daemon_helpers import ROOT, edgekit_cmd, env_with_project, run_serve, tiny_classifier
from edgekit.service.daemon import Notifier


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_classifier(tmp_path_factory.mktemp("model") / "tiny.onnx")


class NotifySocket(object):
    """A stand-in for systemd's notify socket: a real AF_UNIX datagram socket we read."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []

    def collect(self, until=None, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
            if until and any((until(m) if callable(until) else until in m) for m in self.messages):
                return True
        return False

    def close(self):
        self.sock.close()


def start_serve(args, env=None):
    return subprocess.Popen(edgekit_cmd() + ["serve"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, env=env or env_with_project(), cwd=ROOT)


def read_jsonl(path):
    with open(path, "rb") as handle:
        data = handle.read()
    assert data == b"" or data.endswith(b"\n"), "torn last line: %r" % data[-80:]
    return [json.loads(line) for line in data.decode().splitlines()]


def complete_lines(path):
    """Lines of a file another process is appending to (a line may be half-copied at read time)."""
    with open(path, "rb") as handle:
        data = handle.read()
    return [json.loads(line) for line in data[:data.rfind(b"\n") + 1].decode().splitlines()]


def test_notifier_sends_datagrams(tmp_path):
    listener = NotifySocket(tmp_path / "notify")
    try:
        notifier = Notifier({"NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "4000000"})
        assert notifier.enabled and notifier.watchdog_interval == 2.0
        assert notifier.notify("READY=1", "STATUS=hello")
        listener.collect(until="READY=1", timeout=2)
        assert listener.messages == ["READY=1\nSTATUS=hello"]
    finally:
        listener.close()
    assert Notifier({}).notify("READY=1") is False
    assert Notifier({"WATCHDOG_USEC": "100", "WATCHDOG_PID": "1"}).watchdog_interval is None  # for another pid
    assert Notifier({"NOTIFY_SOCKET": "@abstract"}).address == "\0abstract"


def test_serve_notifies_and_drains_on_sigterm(model, tmp_path):
    listener = NotifySocket(tmp_path / "notify")
    jsonl, summary = str(tmp_path / "r.jsonl"), str(tmp_path / "summary.json")
    env = env_with_project({"NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "400000"})
    proc = start_serve(["--model", model, "--backend", "onnxruntime", "--source", "synthetic://?width=64&height=48&fps=0",
                        "--jsonl", jsonl, "--summary", summary], env=env)
    try:
        assert listener.collect(until="READY=1"), listener.messages
        listener.messages = []
        listener.collect(timeout=1.0)
        assert listener.messages.count("WATCHDOG=1") >= 2           # petted every 0.2 s while frames flow
        assert any(m.startswith("STATUS=") for m in listener.messages)
        time.sleep(0.3)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)                              # in the middle of writing lines
        out, err = proc.communicate(timeout=10)
        elapsed = time.monotonic() - started
        listener.collect(until="STOPPING=1", timeout=1.0)
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
    assert proc.returncode == 0, err
    # the drain is bounded by DRAIN_SECONDS (2 s) in code; here only that it ends, with slack for a loaded box
    assert elapsed < 5.0, elapsed
    records = read_jsonl(jsonl)                                      # every line whole
    assert len(records) > 20
    data = json.load(open(summary))
    assert data["frames"] >= len(records) and data["sinks"]["jsonl"]["handled"] == len(records)
    assert sorted(data["latency_ms"]) == sorted(["capture", "preprocess", "infer", "postprocess", "output",
                                                  "end_to_end", "frame_age"])
    assert "backend onnxruntime" in err and "ready: first inference done" in err
    assert any(m.startswith("STOPPING=1") for m in listener.messages)
    stop = data["stop_s"]                      # what the stop spent its time on (a slow one is also logged)
    assert set(stop) == {"pipeline", "outputs", "source", "total"} and set(stop["outputs"]) == {"jsonl"}
    assert stop["total"] >= stop["pipeline"] + stop["outputs"]["jsonl"] + stop["source"] - 0.003


def test_frames_limit_summary_and_backend_message(model, tmp_path, make_video):
    video = make_video(frames=12, width=160, height=120)
    summary = str(tmp_path / "s.json")
    proc = run_serve(["--model", model, "--source", video, "--fast", "--frames", "10", "--summary", summary,
                      "--json"])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["frames"] == 10 and json.load(open(summary))["frames"] == 10
    assert set(["frames", "dropped", "fps", "reconnects", "latency_ms"]) <= set(data)
    assert "(auto: first available of tensorrt, onnxruntime, opencv)" in proc.stderr
    assert "frames 160x120 are resized (stretch) to 32x32" in proc.stderr
    # what the daemon chose for the CPU, said at startup (bench_daemon measures these choices): a file
    # read with --fast is lossless, so every core gets a worker with one intra-op thread each
    workers = min(os.cpu_count() or 1, 4)
    if workers > 1:
        assert "intra-op threads %d, spinning during inference" % max(1, (os.cpu_count() or 1) // workers) \
            in proc.stderr
        assert ("pipeline with %d workers: %d frames in flight" % (workers, workers)) in proc.stderr
        assert "(auto: every frame of the source counts and inference runs on the CPU)" in proc.stderr
        assert ("each worker decodes its own next 16 frames at a time (no grabber thread; fewer when they would "
                "take over 0.1 s or 32 MB), then runs each stage over all of them before the next stage") in proc.stderr
        assert "(read by the workers)" in proc.stderr
        assert data["workers"] == workers and data["chunk"] == 16
        proc = run_serve(["--model", model, "--source", video, "--fast", "--frames", "7", "--json", "--chunk", "3"])
        assert proc.returncode == 0, proc.stderr
        assert "each worker decodes its own next 3 frames at a time" in proc.stderr
        data = json.loads(proc.stdout)
        assert data["frames"] == 7 and data["chunk"] == 3
    # the same file paced like a camera: one worker, ONNX Runtime's threads, spinning only during inference
    proc = run_serve(["--model", model, "--source", video, "--frames", "3", "--json", "--threads", "2"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["workers"] == 1 and json.loads(proc.stdout)["chunk"] == 1
    assert "intra-op threads 2, spinning during inference" in proc.stderr
    assert "pipeline sequential: inference runs on the CPU" in proc.stderr
    assert "(auto: a live source, whose newest frame is wanted soonest)" in proc.stderr
    # forced: two workers on a camera-paced file, and spinning off from the config
    config = tmp_path / "serve.yaml"
    config.write_text("model: {spinning: false}\npipeline: {workers: 2}\n")
    proc = run_serve(["--model", model, "--source", video, "--frames", "4", "--json", "--config", str(config)])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["workers"] == 2 and "spinning off" in proc.stderr
    assert "(pipeline.workers: 2)" in proc.stderr
    assert "the grabber thread decodes" in proc.stderr      # a paced (live-like) source keeps its grabber
    assert "(read by the workers)" not in proc.stderr


def hup_until_then_stop(proc, jsonl, done):
    """SIGHUP, wait up to 10 s for the newest record to satisfy ``done``, then SIGTERM: (stdout, stderr)."""
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not done(complete_lines(jsonl)[-1]):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=10)


def test_sighup_reload_keeps_old_model_on_failure(model, tmp_path):
    good = tiny_classifier(tmp_path / "second.onnx", labels=["a", "b", "c", "d"], seed=2)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 10)
    config = tmp_path / "serve.yaml"
    jsonl = str(tmp_path / "r.jsonl")

    def write_config(model_path, width=64):
        config.write_text("model: {path: %s, backend: onnxruntime}\nsource: {uri: 'synthetic://?width=%d&height=48"
                          "&fps=50'}\noutputs: {jsonl: {path: %s}}\n" % (model_path, width, jsonl))

    write_config(model)
    proc = start_serve(["--config", str(config)])
    try:
        wait_for_lines(jsonl, 3)
        write_config(str(corrupt))
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert proc.poll() is None                                    # still serving
        n = len(complete_lines(jsonl))
        wait_for_lines(jsonl, n + 3)
        write_config(good, width=80)                                   # new model and new source
        out, err = hup_until_then_stop(proc, jsonl, lambda record: record["model"] == "second.onnx")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "reload failed, keeping the old model and settings: " in err and "corrupt.onnx is not a valid ONNX file" in err
    assert "reload done" in err
    models = [r["model"] for r in read_jsonl(jsonl)]
    assert models[0] == "tiny.onnx" and models[-1] == "second.onnx" and "corrupt.onnx" not in models
    sources = [r["source"] for r in read_jsonl(jsonl)]
    assert "width=64" in sources[0] and "width=80" in sources[-1]


def test_sighup_reload_keeps_the_chunk_and_refuses_a_source_it_cannot_chunk(model, tmp_path):
    """pipeline.chunk, like pipeline.workers, applies at a restart; a reload to a live source under an
    explicit chunk fails and keeps the old source."""
    config = tmp_path / "serve.yaml"
    jsonl = str(tmp_path / "r.jsonl")
    summary = tmp_path / "s.json"

    def write_config(chunk, uri):
        config.write_text("model: {path: %s, backend: onnxruntime}\nsource: {uri: '%s'}\npipeline: {workers: 2, "
                          "chunk: %d}\noutputs: {jsonl: {path: %s}}\nsummary: %s\n" % (model, uri, chunk, jsonl, summary))

    write_config(3, "synthetic://?width=64&height=48&fps=0")
    proc = start_serve(["--config", str(config)])
    try:
        wait_for_lines(jsonl, 3)
        write_config(3, "synthetic://?width=72&height=48&fps=30")         # live: no chunks there
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert proc.poll() is None
        write_config(5, "synthetic://?width=80&height=48&fps=0")          # a new chunk: at the next restart
        out, err = hup_until_then_stop(proc, jsonl, lambda record: "width=80" in record["source"])
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert ("reload failed, keeping the old model and settings: pipeline.chunk: 3 needs several workers that read a "
            "lossless source themselves") in err
    assert "pipeline.chunk changed: restart the service to apply it (kept at 3)" in err and "reload done" in err
    sources = [r["source"] for r in read_jsonl(jsonl)]
    assert "width=64" in sources[0] and "width=80" in sources[-1] and not any("width=72" in s for s in sources)
    assert json.loads(summary.read_text())["chunk"] == 3


TEARDOWN_PROBE = """import atexit, sys
atexit.register(lambda: sys.stderr.write("TEARDOWN\\n"))
from edgekit.cli import main
sys.argv[0] = "edgekit"
sys.exit(main() if sys.argv[1] == "serve" else main(sys.argv[2:]))
"""


@pytest.mark.parametrize("entry", ["program", "main-argv"])
def test_serve_as_the_program_ends_at_once_with_everything_written(model, tmp_path, entry):
    """`edgekit serve` run as the program ends with os._exit once the daemon has stopped: no
    interpreter teardown (an atexit hook never runs), yet stdout, the log and the summary are complete,
    and the exit code is kept; a caller of main([...]) gets the code back and the usual exit."""
    summary = tmp_path / "s.json"
    argv = ([] if entry == "program" else ["--argv"]) + ["serve", "--model", model, "--source",
                                                         "synthetic://?width=64&height=48&fps=0", "--frames", "5",
                                                         "--summary", str(summary), "--json"]
    proc = subprocess.run([sys.executable, "-c", TEARDOWN_PROBE] + argv, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=60, env=env_with_project(), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["frames"] == 5 and json.loads(summary.read_text())["frames"] == 5
    assert "served 5 frames" in proc.stderr
    assert ("TEARDOWN" in proc.stderr) is (entry == "main-argv")
    missing = [sys.executable, "-c", TEARDOWN_PROBE] + argv[:argv.index("--model") + 1] + [str(tmp_path / "no.onnx")]
    proc = subprocess.run(missing + ["--source", "synthetic://"], stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=60, env=env_with_project(), cwd=ROOT)
    assert proc.returncode == 2 and "edgekit serve: error: model file not found" in proc.stderr, proc.stderr
    assert ("TEARDOWN" in proc.stderr) is (entry == "main-argv")


def wait_for_lines(path, n, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and len(complete_lines(path)) >= n:
            return
        time.sleep(0.05)
    raise AssertionError("fewer than %d lines in %s" % (n, path))


@pytest.mark.parametrize("case", ["missing", "corrupt", "bad_config", "http_no_token", "bad_source", "no_meta",
                                  "bad_workers", "workers_one_at_a_time", "workers_flag", "bad_chunk",
                                  "chunk_live"])
def test_user_errors_are_one_line_exit_2(model, tmp_path, case):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x0a\x05hello-not-onnx")
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("model: {path: %s}\nsource: {uri: synthetic://}\noutputs: {jsonl: {max_bytes: 12}}\n" % model)
    bad_workers = tmp_path / "workers.yaml"
    bad_workers.write_text("model: {path: %s}\nsource: {uri: synthetic://}\npipeline: {workers: 0}\n" % model)
    bad_chunk = tmp_path / "chunk.yaml"
    bad_chunk.write_text("model: {path: %s}\nsource: {uri: synthetic://}\npipeline: {chunk: many}\n" % model)
    args = {
        "missing": ["--model", str(tmp_path / "nope.onnx"), "--source", "synthetic://"],
        "corrupt": ["--model", str(corrupt), "--source", "synthetic://", "--backend", "onnxruntime"],
        "bad_config": ["--config", str(bad_config)],
        "http_no_token": ["--model", model, "--source", "synthetic://", "--http", "0.0.0.0:8080"],
        "bad_source": ["--model", model, "--source", "synthetic://?width=x"],
        "no_meta": ["--model", str(corrupt), "--source", "synthetic://", "--backend", "onnxruntime"],
        "bad_workers": ["--config", str(bad_workers)],
        "workers_one_at_a_time": ["--model", model, "--source", "synthetic://", "--backend", "opencv",
                                  "--workers", "2"],
        "workers_flag": ["--model", model, "--source", "synthetic://", "--workers", "many"],
        "bad_chunk": ["--config", str(bad_chunk)],
        # a chunk needs workers that read the source themselves: a paced (live-like) source keeps its grabber
        "chunk_live": ["--model", model, "--source", "synthetic://?fps=30", "--workers", "2", "--chunk", "4"],
    }[case]
    expected = {
        "missing": "model file not found",
        "corrupt": "not a valid ONNX file",
        "bad_config": "config key outputs.jsonl.max_bytes must be >= 1024, got 12",
        "http_no_token": "HTTP on 0.0.0.0 (not loopback) needs a token",
        "bad_source": "width='x' is not an integer",
        "no_meta": "not a valid ONNX file",
        "bad_workers": "config key pipeline.workers must be auto or an integer >= 1, got 0",
        "workers_one_at_a_time": "the opencv runner infers one frame at a time; pipeline workers must be 1",
        "workers_flag": "argument --workers: 'many' is not an integer",
        "bad_chunk": "config key pipeline.chunk must be auto or an integer >= 1, got 'many'",
        "chunk_live": "pipeline.chunk: 4 needs several workers that read a lossless source themselves",
    }[case]
    out = tmp_path / "results.jsonl"
    proc = run_serve(args + ["--jsonl", str(out), "--summary", str(tmp_path / "s.json")], timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert not out.exists() and not (tmp_path / "s.json").exists()          # nothing left behind
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("edgekit serve: error: ") and expected in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr


def test_http_is_wired(model, tmp_path):
    import urllib.request

    proc = start_serve(["--model", model, "--backend", "onnxruntime", "--http", "127.0.0.1:0",
                        "--source", "synthetic://?width=64&height=48&fps=30"])
    try:
        url = None
        deadline = time.monotonic() + 20
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if line.startswith("HTTP on "):
                url = line.split()[2]
        assert url and url.startswith("http://127.0.0.1:")
        body = None
        while time.monotonic() < deadline:
            try:
                body = json.loads(urllib.request.urlopen(url + "v1/latest", timeout=2).read())
                break
            except Exception:
                time.sleep(0.1)
        assert body and body["result"]["task"] == "classification"
        metrics = urllib.request.urlopen(url + "metrics", timeout=2).read().decode()
        assert "edgekit_frames_total" in metrics and 'edgekit_stage_seconds_bucket{stage="infer"' in metrics
        assert urllib.request.urlopen(url + "readyz", timeout=2).status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def unit_for_here(tmp_path):
    """The unit with ExecStart pointing at this interpreter (verify checks that the command exists)."""
    text = open(os.path.join(ROOT, "deploy", "edgekit.service")).read()
    path = tmp_path / "edgekit.service"
    path.write_text(text.replace("/opt/edgekit/bin/edgekit", os.path.realpath(sys.executable) + " -m edgekit"))
    return text, str(path)


def test_unit_file_verifies(tmp_path):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is absent here")
    text, unit = unit_for_here(tmp_path)
    proc = subprocess.run([tool, "verify", unit], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout
    for key in ("Type=notify", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                "SupplementaryGroups=video", "DeviceAllow=char-video4linux rw", "DeviceAllow=/dev/nvhost-ctrl rw",
                "Restart=on-failure", "WatchdogSec=", "ReadWritePaths=/var/lib/edgekit",
                "ExecReload=/bin/kill -HUP $MAINPID",
                "EnvironmentFile=-/etc/default/edgekit"):       # OPENBLAS_CORETYPE on a Nano (jetson/setup.sh)
        assert key in text, key
    security = subprocess.run([tool, "security", "--offline=true", unit], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    if "Overall exposure level" in security.stdout:
        score = float(security.stdout.split("Overall exposure level for edgekit.service:")[1].split()[0])
        assert score <= 2.5, security.stdout[-300:]        # the README (systemd) reports it (1.8 here)


SYSTEM_PYTHON = "/usr/bin/python3"


def test_serve_under_system_python_with_opencv_runner(model, tmp_path):
    """Debian's python3 + cv2, no onnxruntime: auto picks the opencv runner (as on a bare board)."""
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip("no %s" % SYSTEM_PYTHON)
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import cv2, yaml, numpy\n"
                            "import importlib.util as u\nprint(u.find_spec('onnxruntime') is None)"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if probe.returncode != 0:
        pytest.skip("%s lacks cv2/yaml/numpy: %s" % (SYSTEM_PYTHON, probe.stderr.strip()[-200:]))
    if not os.path.exists(os.path.join(ROOT, "edgekit", "runners", "opencv.py")):
        pytest.skip("the opencv runner (edgekit/runners/opencv.py) is not in the tree yet")
    env = env_with_project()
    env.pop("VIRTUAL_ENV", None)
    summary = str(tmp_path / "s.json")
    proc = run_serve(["--model", model, "--source", "synthetic://?width=64&height=48&fps=0", "--frames", "20",
                      "--summary", summary], python=SYSTEM_PYTHON, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.load(open(summary))["frames"] == 20
    if probe.stdout.strip() == "True":
        assert "backend opencv (auto" in proc.stderr


def test_mqtt_is_wired(model, broker):
    """`edgekit serve --mqtt` against the real mosquitto of the `broker` fixture (tests/service/conftest.py)."""
    import threading

    import paho.mqtt.client as mqtt

    messages, subscribed = [], threading.Event()
    # paho 2 here, paho 1.6 on the board (and in a Python 3.6 run of these tests)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2) if hasattr(mqtt, "CallbackAPIVersion") else mqtt.Client()
    client.on_connect = lambda c, *a: c.subscribe("edgekit/door-cam/#", qos=1)
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_message = lambda c, u, m: messages.append((m.topic, json.loads(m.payload.decode())))
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        assert subscribed.wait(10)
        proc = run_serve(["--model", model, "--backend", "onnxruntime", "--source",
                          "synthetic://?width=64&height=48&fps=0", "--frames", "25", "--device-id", "door-cam",
                          "--mqtt", "127.0.0.1:%d" % broker.port])
        assert proc.returncode == 0, proc.stderr
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len([m for m in messages if m[0].endswith("/results")]) < 25:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        client.loop_stop()
        client.disconnect()
    results = [m[1] for m in messages if m[0] == "edgekit/door-cam/results"]
    assert sorted(r["seq"] for r in results) == list(range(1, 26))
    assert all(r["device"] == "door-cam" and r["model"] == "tiny.onnx" for r in results)
    states = [m[1]["state"] for m in messages if m[0] == "edgekit/door-cam/status"]
    assert states[0] == "online" and states[-1] == "offline"


def test_camera_outage_is_survived_and_watchdog_keeps_going(model, tmp_path, make_video):
    """The camera (a looping video) vanishes and comes back: the daemon reconnects instead of dying,
    keeps petting the watchdog while its grabber retries, and says so in STATUS."""
    video = make_video(name="cam.mp4", frames=6, fps=30)
    hidden = str(tmp_path / "away.mp4")
    config = tmp_path / "serve.yaml"
    summary = str(tmp_path / "summary.json")
    config.write_text("model: {path: %s, backend: onnxruntime}\nsource: {uri: %s, loop: true, reconnect_initial_s: 0.05,"
                      " reconnect_max_s: 0.2}\nsummary: %s\n" % (model, video, summary))
    listener = NotifySocket(tmp_path / "notify")
    env = env_with_project({"NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "400000"})
    proc = start_serve(["--config", str(config)], env=env)
    try:
        assert listener.collect(until="READY=1"), listener.messages
        os.rename(video, hidden)
        assert listener.collect(until="reconnecting", timeout=10), listener.messages
        listener.messages = []
        listener.collect(timeout=1.0)
        assert listener.messages.count("WATCHDOG=1") >= 3, listener.messages   # still petted during the outage
        os.rename(hidden, video)
        listener.messages = []
        flowing_again = lambda m: m.startswith("STATUS=") and m[len("STATUS=")].isdigit()   # "STATUS=29.8 fps, ..."
        assert listener.collect(until=flowing_again, timeout=10), listener.messages
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
    assert proc.returncode == 0, err
    data = json.load(open(summary))
    assert data["reconnects"] >= 1 and data["frames"] > 6
