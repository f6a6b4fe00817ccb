"""The MQTT sink against a real mosquitto started by the tests (fixture ``broker`` in conftest)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from edgekit.errors import ConfigError
from edgekit.service.metrics import Metrics
from edgekit.service.sinks.mqtt import MqttSink, dumps, read_temperatures
from _net import free_port



ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STATUS = {"ready": True, "model": "tiny.onnx", "precision": "fp16", "fps": 29.5, "frames": 1234, "dropped": 3}


class Watcher(object):
    """A subscriber (paho 1.x or 2.x) collecting (topic, payload, qos, retain)."""

    def __init__(self, port, topics, client_id="", clean=True, tls_ca=None, auth=None):
        import paho.mqtt.client as mqtt

        self.messages = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        if hasattr(mqtt, "CallbackAPIVersion"):        # paho 2.x
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        else:                                          # paho 1.x (under Python 3.6, as on the board)
            self.client = mqtt.Client(client_id=client_id, clean_session=clean)
        self.client.on_connect = lambda c, u, f, rc, *rest: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        if tls_ca:
            self.client.tls_set(ca_certs=tls_ca)
        if auth:
            self.client.username_pw_set(*auth)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "subscriber could not subscribe"

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, json.loads(msg.payload.decode()), msg.qos, bool(msg.retain)))

    def on(self, suffix):
        with self.lock:
            return [m for m in self.messages if m[0].endswith(suffix)]

    def seqs(self):
        return [m[1]["seq"] for m in self.on("/results")]

    def wait(self, predicate, timeout=15.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def watchers():
    made = []

    def make(*args, **kwargs):
        w = Watcher(*args, **kwargs)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


@pytest.fixture
def sinks():
    made = []

    def make(port, **kwargs):
        kwargs.setdefault("status_fn", lambda: dict(STATUS))
        kwargs.setdefault("reconnect_min", 0.1)
        kwargs.setdefault("reconnect_max", 0.5)
        s = MqttSink("127.0.0.1", port, **kwargs).start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.close(timeout=2)


def test_results_arrive_with_qos1_and_status_is_retained_online(broker, watchers, sinks, record):
    w = watchers(broker.port, ["edgekit/cam1/results"])
    metrics = Metrics()
    sink = sinks(broker.port, device_id="cam1", metrics=metrics)
    assert sink.wait_connected(10)
    for seq in range(20):
        assert sink.submit(record(seq)) is True
    assert w.wait(lambda: len(w.seqs()) >= 20)
    assert sorted(set(w.seqs())) == list(range(20))
    assert all(m[2] == 1 for m in w.on("/results"))                 # delivered with QoS 1
    record = w.on("/results")[0][1]
    assert record["device"] == "cam1" and record["result"]["detections"][0]["label"] == "box"
    late = watchers(broker.port, ["edgekit/cam1/status"])            # joins later: gets the retained one
    assert late.wait(lambda: late.on("/status"))
    topic, status, _, retain = late.on("/status")[0]
    assert retain and status["state"] == "online" and status["device"] == "cam1"
    assert status["model"] == "tiny.onnx" and status["precision"] == "fp16"
    assert metrics.get("mqtt_published_total") == 20 and metrics.get("mqtt_connected") == 1


def test_clean_close_publishes_offline_and_delivers_the_buffer(broker, watchers, record):
    w = watchers(broker.port, ["edgekit/cam2/#"])
    sink = MqttSink("127.0.0.1", broker.port, device_id="cam2", telemetry_interval=None).start()
    assert sink.wait_connected(10)
    for seq in range(50):
        sink.submit(record(seq, device="cam2"))
    sink.close(timeout=5)
    assert w.wait(lambda: any(m[1]["state"] == "offline" for m in w.on("/status")))
    assert sorted(set(w.seqs())) == list(range(50))
    states = [m[1]["state"] for m in w.on("/status")]
    assert states[0] == "online" and states[-1] == "offline"
    stats = sink.stats()       # every QoS 1 publish handed to paho was acknowledged, "offline" included
    assert stats["inflight"] == 0 and stats["published"] == 50 and stats["buffered"] == 0, stats


SINK_SCRIPT = """
import sys, time
sys.path.insert(0, %(root)r)
from edgekit.service.sinks.mqtt import MqttSink
sink = MqttSink("127.0.0.1", %(port)d, device_id=%(device)r, telemetry_interval=None).start()
assert sink.wait_connected(10), "no connection"
for seq in range(%(count)d):
    sink.submit({"seq": seq, "device": %(device)r})
if %(close)r:
    sink.close(timeout=5)
    import paho.mqtt
    print("closed", paho.mqtt.__version__, sink.stats()["published"], flush=True)
else:
    print("connected", flush=True)
    time.sleep(60)
"""


def run_sink_process(python, port, device, count, close):
    script = SINK_SCRIPT % {"root": ROOT, "port": port, "device": device, "count": count, "close": close}
    return subprocess.Popen([python, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)


def test_last_will_offline_when_the_connection_dies(broker, watchers):
    w = watchers(broker.port, ["edgekit/cam3/status"])
    proc = run_sink_process(sys.executable, broker.port, "cam3", 0, close=False)
    try:
        assert proc.stdout.readline().strip() == "connected", proc.stderr.read()
        assert w.wait(lambda: [m for m in w.on("/status") if m[1]["state"] == "online"])
        os.kill(proc.pid, signal.SIGKILL)                   # no DISCONNECT: the broker sends the will
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert w.wait(lambda: w.on("/status")[-1][1]["state"] == "offline")
    late = watchers(broker.port, ["edgekit/cam3/status"])
    assert late.wait(lambda: late.on("/status"))
    _, status, _, retain = late.on("/status")[-1]
    assert retain and status == dict(status, state="offline", device="cam3")


def test_broker_restart_loses_nothing_within_the_bound_and_drops_oldest_beyond(broker, watchers, sinks, record):
    # a persistent subscriber session, kept by the broker across its restart
    w = watchers(broker.port, ["edgekit/cam4/results"], client_id="watcher-cam4", clean=False)
    sink = sinks(broker.port, device_id="cam4", buffer=50, telemetry_interval=None)
    assert sink.wait_connected(10)
    for seq in range(30):
        sink.submit(record(seq, device="cam4"))
        time.sleep(0.002)
    assert w.wait(lambda: len(set(w.seqs())) >= 30)

    def outage(first, count):
        broker.stop()
        assert w.wait(lambda: not sink.connected, 10)
        for seq in range(first, first + count):
            sink.submit(record(seq, device="cam4"))
        broker.start()
        assert sink.wait_connected(15)

    outage(30, 40)                                          # 40 <= 50: all kept
    assert w.wait(lambda: set(range(70)) <= set(w.seqs()), 20), (sorted(set(range(70)) - set(w.seqs())), sink.stats())
    assert sink.stats()["dropped"] == 0

    outage(70, 80)                                          # 80 > 50: the 30 oldest dropped
    assert w.wait(lambda: set(range(100, 150)) <= set(w.seqs()), 20)
    assert not set(range(70, 100)) & set(w.seqs())
    stats = sink.stats()
    assert stats["dropped"] == 30 and stats["reconnects"] == 2 and stats["buffered"] == 0


def test_telemetry_is_retained_with_temperature(broker, watchers, sinks, tmp_path):
    for i, (kind, milli) in enumerate([("CPU-therm", "45500"), ("GPU-therm", "47250")]):
        zone = tmp_path / ("thermal_zone%d" % i)
        zone.mkdir()
        (zone / "temp").write_text(milli + "\n")
        (zone / "type").write_text(kind + "\n")
    assert read_temperatures(str(tmp_path)) == {"CPU-therm": 45.5, "GPU-therm": 47.2}
    sink = sinks(broker.port, device_id="cam5", telemetry_interval=0.2, thermal_root=str(tmp_path))
    assert sink.wait_connected(10)
    w = watchers(broker.port, ["edgekit/cam5/telemetry"])
    assert w.wait(lambda: len(w.on("/telemetry")) >= 2)
    _, telemetry, qos, _ = w.on("/telemetry")[-1]
    assert telemetry["device"] == "cam5" and telemetry["fps"] == 29.5 and telemetry["frames"] == 1234
    assert telemetry["temperature_c"] == 47.2 and telemetry["precision"] == "fp16" and qos == 1
    sink.close()
    late = watchers(broker.port, ["edgekit/cam5/telemetry"])
    assert late.wait(lambda: late.on("/telemetry")) and late.on("/telemetry")[0][3] is True   # retained


def test_no_broker_submit_never_blocks_and_bounds_the_buffer():
    metrics = Metrics()
    sink = MqttSink("127.0.0.1", free_port(), buffer=100, metrics=metrics, telemetry_interval=None,
                    reconnect_min=0.1, reconnect_max=0.2).start()
    try:
        results = [sink.submit({"seq": i}) for i in range(10000)]
        stats = sink.stats()
        assert stats["buffered"] == 100 and stats["dropped"] == 9900 and not stats["connected"]
        assert results.count(False) == 9900 and metrics.get("mqtt_dropped_total") == 9900
        deadline = time.time() + 5
        while sink.stats()["last_error"] is None and time.time() < deadline:
            time.sleep(0.05)
        assert "cannot reach the broker" in sink.stats()["last_error"]
    finally:
        t0 = time.time()
        sink.close(timeout=1)
        assert time.time() - t0 < 3


@pytest.mark.parametrize("kwargs, match", [
    ({"device_id": "a/b"}, "device_id"), ({"device_id": "cam+"}, "device_id"), ({"topic_prefix": "#"}, "topic_prefix"),
    ({"qos": 3}, "qos"), ({"buffer": 0}, "buffer"), ({"telemetry_interval": 0}, "telemetry_interval"),
])
def test_bad_settings_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        MqttSink("127.0.0.1", **kwargs)


def _system_paho_version():
    try:
        out = subprocess.check_output(["/usr/bin/python3", "-c", "import paho.mqtt; print(paho.mqtt.__version__)"],
                                      stderr=subprocess.DEVNULL, universal_newlines=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.strip()


@pytest.mark.system_python
def test_works_with_paho_1_6_on_system_python(broker, watchers):
    """JetPack ships paho-mqtt 1.x; Debian's python3-paho-mqtt is 1.6.1: the board's situation."""
    version = _system_paho_version()
    if version is None or not version.startswith("1."):
        pytest.skip("needs /usr/bin/python3 with paho-mqtt 1.x (Debian: python3-paho-mqtt), found %s" % version)
    w = watchers(broker.port, ["edgekit/cam6/#"])
    proc = run_sink_process("/usr/bin/python3", broker.port, "cam6", 25, close=True)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.split() == ["closed", version, "25"]
    assert w.wait(lambda: len(set(w.seqs())) == 25 and w.on("/status")[-1][1]["state"] == "offline")


def test_payloads_are_strict_json():
    import numpy as np

    text = dumps({"seq": np.int64(4), "score": float("nan"), "box": np.array([1.5, np.inf])})
    assert json.loads(text) == {"seq": 4, "score": None, "box": [1.5, None]}
    assert "NaN" not in text and "Infinity" not in text


def make_certificates(directory):
    """A throw-away CA and a server certificate for 127.0.0.1 (EC keys: fast)."""
    d = str(directory)

    def openssl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=edgekit test CA")
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "san.ext"), "w") as handle:
        handle.write("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    return {name: os.path.join(d, name) for name in ("ca.crt", "server.crt", "server.key")}


def test_tls_with_a_private_ca(make_broker, watchers, tmp_path, record):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    certs = make_certificates(tmp_path)
    broker = make_broker("cafile %s\ncertfile %s\nkeyfile %s\n"
                         % (certs["ca.crt"], certs["server.crt"], certs["server.key"]))
    w = watchers(broker.port, ["edgekit/cam7/results"], tls_ca=certs["ca.crt"])
    sink = MqttSink("127.0.0.1", broker.port, device_id="cam7", telemetry_interval=None,
                    tls={"ca_certs": certs["ca.crt"]}).start()
    try:
        assert sink.wait_connected(10)
        for seq in range(5):
            sink.submit(record(seq, device="cam7"))
        assert w.wait(lambda: sorted(set(w.seqs())) == list(range(5)))
    finally:
        sink.close()
    plain = MqttSink("127.0.0.1", broker.port, device_id="cam7b", telemetry_interval=None).start()
    try:
        assert not plain.wait_connected(1.0)               # a TLS listener: plain MQTT gets nowhere
    finally:
        plain.close(timeout=0.5)


def test_tls_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="tls.ca_certs: no such file"):
        MqttSink("127.0.0.1", tls={"ca_certs": str(tmp_path / "missing.crt")})
    with pytest.raises(ConfigError, match="unknown keys: cafile"):
        MqttSink("127.0.0.1", tls={"cafile": "x"})
    assert MqttSink("127.0.0.1", tls=True).tls == {}


def test_username_and_password(make_broker, watchers, tmp_path, record):
    passwords = tmp_path / "passwords"
    passwords.write_text("")
    for user, password in (("cam", "right-password"), ("viewer", "viewer-password")):
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True)
    broker = make_broker("allow_anonymous false\npassword_file %s\n" % passwords)
    w = watchers(broker.port, ["edgekit/cam8/results"], auth=("viewer", "viewer-password"))
    good = MqttSink("127.0.0.1", broker.port, device_id="cam8", username="cam", password="right-password",
                    telemetry_interval=None).start()
    bad = MqttSink("127.0.0.1", broker.port, device_id="cam9", username="cam", password="wrong",
                   telemetry_interval=None, reconnect_min=0.2, reconnect_max=0.5).start()
    try:
        assert good.wait_connected(10)
        good.submit(record(1, device="cam8"))
        assert w.wait(lambda: w.seqs() == [1])
        assert not bad.wait_connected(1.0)
        assert "refused" in bad.stats()["last_error"]
        assert bad.submit(record(2, device="cam9")) and bad.stats()["buffered"] == 1   # kept for later
    finally:
        good.close()
        bad.close(timeout=0.5)


def test_events_and_counts_outlive_a_broker_outage(broker, watchers, sinks):
    """Events wait in the bounded buffer while the broker is away; a count changed meanwhile is
    published at its latest value once it is back, retained."""
    w = watchers(broker.port, ["edgekit/cam5/events", "edgekit/cam5/counts/#"], client_id="watcher-cam5", clean=False)
    sink = sinks(broker.port, device_id="cam5", telemetry_interval=None)
    assert sink.wait_connected(10)
    sink.set_counts("door", {"type": "line", "in": 0, "out": 0})
    assert w.wait(lambda: w.on("/counts/door"))
    broker.stop()
    assert w.wait(lambda: not sink.connected, 10)
    for i in range(5):
        sink.submit_event({"id": "cam5-1-%d" % i, "type": "line_crossed"})
        sink.set_counts("door", {"type": "line", "in": i + 1, "out": 0})
    broker.start()
    assert sink.wait_connected(15)
    assert w.wait(lambda: len(set(m[1]["id"] for m in w.on("/events"))) == 5, 20), sink.stats()
    assert [m[1]["id"] for m in w.on("/events")][:5] == ["cam5-1-%d" % i for i in range(5)]
    assert all(m[2] == 1 and not m[3] for m in w.on("/events"))             # QoS 1, not retained
    assert w.wait(lambda: w.on("/counts/door")[-1][1]["in"] == 5)
    assert len(w.on("/counts/door")) <= 3                                    # the latest value, not every step
    late = watchers(broker.port, ["edgekit/cam5/counts/#"])
    assert late.wait(lambda: late.on("/counts/door"))
    assert late.on("/counts/door")[0][1]["in"] == 5 and late.on("/counts/door")[0][3] is True   # retained
