"""`edgekit fleet status` against a real mosquitto with several simulated daemons publishing the
MQTT topics of docs/board/http-mqtt.md (status retained with a retained last will, telemetry retained),
under paho 1.6 (Debian's, like the board's) and paho 2.x (the venv's)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from _mosquitto import MOSQUITTO, Broker
from edgekit.cli import main
from edgekit.errors import ConfigError
from edgekit.fleet import FleetView, parse_broker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM_PYTHON = "/usr/bin/python3"

# One simulated daemon: exactly the daemon's MQTT topics and payloads, with paho 1.x or 2.x.
DAEMON = r"""
import json, sys, time
import paho.mqtt.client as mqtt
port, device, model, precision, fps, temp = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), float(sys.argv[6])
kw = {"client_id": device}
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, **kw) if hasattr(mqtt, "CallbackAPIVersion") else mqtt.Client(**kw)
base = "edgekit/%s/" % device
client.will_set(base + "status", json.dumps({"state": "offline", "device": device}), qos=1, retain=True)
client.connect("127.0.0.1", int(port), keepalive=5)
client.loop_start()
now = time.time()
client.publish(base + "status", json.dumps({"state": "online", "device": device, "model": model,
               "precision": precision, "ts": now}), qos=1, retain=True).wait_for_publish()
client.publish(base + "telemetry", json.dumps({"device": device, "fps": fps, "frames": 1200, "dropped": 3,
               "model": model, "precision": precision, "temperature_c": temp, "ts": now}), qos=1,
               retain=True).wait_for_publish()
client.publish(base + "results", json.dumps({"device": device, "seq": 1}), qos=1).wait_for_publish()
print("ready", flush=True)
time.sleep(60)
"""

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed (.ci/system-packages.sh)")


def _python_with_paho(python):
    return os.path.exists(python) and subprocess.call([python, "-c", "import paho.mqtt.client"]) == 0


def _start_daemon(python, port, *args):
    proc = subprocess.Popen([python, "-c", DAEMON, str(port)] + [str(a) for a in args], stdout=subprocess.PIPE,
                            universal_newlines=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture
def fleet(tmp_path):
    """A broker with three daemons: nano-01 and nano-02 online (paho 1.6 and 2.x), nano-03 died (last will)."""
    daemon_python = SYSTEM_PYTHON if _python_with_paho(SYSTEM_PYTHON) else sys.executable
    with Broker(tmp_path) as broker:
        procs = [_start_daemon(daemon_python, broker.port, "nano-01", "shapes-a", "fp16", 41.5, 48.0),
                 _start_daemon(sys.executable, broker.port, "nano-02", "shapes-b", "fp16", 39.0, 51.5),
                 _start_daemon(sys.executable, broker.port, "nano-03", "shapes-a", "int8", 12.0, 70.0)]
        procs[2].send_signal(signal.SIGKILL)          # vanishes without a DISCONNECT: the broker sends the will
        procs[2].wait()
        try:
            yield broker
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def _status_json(port, python=None, wait=1.0):
    if python is None:
        import io
        from contextlib import redirect_stdout

        buf = io.StringIO()
        with redirect_stdout(buf):
            code = main(["fleet", "status", "--broker", "127.0.0.1:%d" % port, "--wait", str(wait), "--json"])
        assert code == 0
        return json.loads(buf.getvalue())
    out = subprocess.check_output([python, "-m", "edgekit", "fleet", "status", "--broker", "127.0.0.1:%d" % port,
                                   "--wait", str(wait), "--json"], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                                  universal_newlines=True, timeout=60)
    return json.loads(out)


def test_fleet_status_lists_online_and_offline_devices(fleet, capsys):
    deadline = time.time() + 5
    while True:              # the last will reaches the broker when it notices the dead socket
        report = _status_json(fleet.port)
        states = dict((d["device"], d["state"]) for d in report["devices"])
        if states.get("nano-03") == "offline" or time.time() > deadline:
            break
    assert states == {"nano-01": "online", "nano-02": "online", "nano-03": "offline"}
    assert report["online"] == 2 and report["ignored_messages"] == 0
    one = [d for d in report["devices"] if d["device"] == "nano-01"][0]
    assert (one["model"], one["precision"], one["fps"], one["temperature_c"]) == ("shapes-a", "fp16", 41.5, 48.0)
    assert one["frames"] == 1200 and one["dropped"] == 3 and not one["stale"] and 0 <= one["age_s"] < 30
    dead = [d for d in report["devices"] if d["device"] == "nano-03"][0]
    assert dead["model"] == "shapes-a" and dead["temperature_c"] == 70.0     # last telemetry is kept

    code = main(["fleet", "status", "--broker", "127.0.0.1:%d" % fleet.port, "--wait", "0.5"])
    table = capsys.readouterr().out
    assert code == 0 and "3 device(s), 2 online" in table
    lines = dict((line.split()[0], line) for line in table.splitlines()[2:] if line.startswith("nano-"))
    assert "offline" in lines["nano-03"] and "41.5" in lines["nano-01"] and "s ago" in lines["nano-02"]


def test_fleet_status_on_system_python_with_paho_16(fleet):
    if not _python_with_paho(SYSTEM_PYTHON):
        pytest.skip("Debian's python3-paho-mqtt is not installed")
    report = _status_json(fleet.port, python=SYSTEM_PYTHON)
    assert sorted(d["device"] for d in report["devices"]) == ["nano-01", "nano-02", "nano-03"]


def test_empty_broker_and_unreachable_broker(tmp_path, capsys):
    with Broker(tmp_path) as broker:
        code = main(["fleet", "status", "--broker", "127.0.0.1:%d" % broker.port, "--wait", "0.2"])
        assert code == 0 and "no devices publish under edgekit/" in capsys.readouterr().out
        port = broker.port
    code = main(["fleet", "status", "--broker", "127.0.0.1:%d" % port, "--wait", "0.2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "cannot connect to the MQTT broker at 127.0.0.1:%d" % port in err[0]


def test_fleet_view_folds_messages_and_ignores_junk():
    view = FleetView("site/a")
    assert view.add("site/a/cam1/status", b'{"state": "online", "model": "m", "precision": "fp16", "ts": 100}')
    assert view.add("site/a/cam1/telemetry", b'{"fps": 30.0, "temperature_c": 55.5, "ts": 160}')
    assert not view.add("site/a/cam2/status", b"not json")
    assert not view.add("site/a/cam2/telemetry", b"[1, 2]")
    assert not view.add("site/a/cam3/status", b"")               # a cleared retained message
    assert not view.add("other/cam1/status", b'{"state": "online"}')
    (row,) = view.rows(now=200.0, stale_after=30.0)
    assert row["last_seen"] == 160 and row["age_s"] == 40.0 and row["stale"] and row["fps"] == 30.0
    assert view.ignored == 3


@pytest.mark.parametrize("text, expected", [("broker", ("broker", 1883)), ("10.0.0.5:8883", ("10.0.0.5", 8883)),
                                            ("[::1]:1884", ("::1", 1884))])
def test_parse_broker(text, expected):
    assert parse_broker(text) == expected


@pytest.mark.parametrize("text", ["", "host:notaport", "host:0", ":1883"])
def test_parse_broker_refuses(text):
    with pytest.raises(ConfigError, match="bad broker address"):
        parse_broker(text)


def test_fleet_status_sees_real_mqtt_sinks(tmp_path):
    """The daemon's own MqttSink (C6) as publisher: one running, one closed cleanly (offline)."""
    sinks_module = pytest.importorskip("edgekit.service.sinks.mqtt")
    thermal = tmp_path / "thermal" / "thermal_zone0"
    thermal.mkdir(parents=True)
    (thermal / "temp").write_text("47500\n")
    (thermal / "type").write_text("GPU-therm\n")

    def status(name):
        return lambda: {"ready": True, "model": name, "precision": "fp16", "fps": 29.5, "frames": 300, "dropped": 1}

    with Broker(tmp_path) as broker:
        sinks = [sinks_module.MqttSink("127.0.0.1", port=broker.port, device_id=name, status_fn=status("m-" + name),
                                       telemetry_interval=0.2, thermal_root=str(thermal.parent))
                 for name in ("cam-a", "cam-b")]
        try:
            for sink in sinks:
                sink.start()
                assert sink.wait_connected(5)
            deadline = time.time() + 5
            while True:
                rows = dict((d["device"], d) for d in _status_json(broker.port, wait=0.3)["devices"])
                if all(r.get("fps") for r in rows.values()) and len(rows) == 2 or time.time() > deadline:
                    break
            sinks[1].close()
            after = dict((d["device"], d) for d in _status_json(broker.port, wait=0.3)["devices"])
        finally:
            for sink in sinks:
                sink.close()
    assert rows["cam-a"]["state"] == "online" and rows["cam-a"]["model"] == "m-cam-a"
    assert rows["cam-a"]["fps"] == 29.5 and rows["cam-a"]["temperature_c"] == 47.5
    assert after["cam-b"]["state"] == "offline" and after["cam-a"]["state"] == "online"
