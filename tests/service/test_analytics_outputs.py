"""The daemon's analytics outputs, in process, on the walking-square video: MQTT events, retained
counts and Home Assistant discovery on a real mosquitto; HTTP /v1/events, /v1/counts, /v1/tracks,
snapshots and the Prometheus series; a reload of the rules that keeps counts and track ids."""

import json
import re
import os
import threading
import time
import urllib.error
import urllib.request

import pytest

from daemon_helpers import DOOR_RULES, centroid_detector, moving_square_video

pytest.importorskip("onnx")
pytest.importorskip("paho.mqtt.client")


class Subscriber(object):
    """(topic, payload bytes, retain) of everything under ``topics``."""

    def __init__(self, port, topics):
        import paho.mqtt.client as mqtt

        self.messages = []
        self.lock = threading.Lock()
        subscribed = threading.Event()
        if hasattr(mqtt, "CallbackAPIVersion"):
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        else:
            self.client = mqtt.Client()
        self.client.on_connect = lambda c, u, f, rc, *rest: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain), msg.qos))

    def on(self, topic):
        with self.lock:
            return [m for m in self.messages if m[0] == topic]

    def wait(self, predicate, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline and not predicate():
            time.sleep(0.02)
        return predicate()

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def get(url, raw=False):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read()
            return response.status, (body if raw else json.loads(body.decode()))
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read().decode())


@pytest.fixture
def daemon(tmp_path, broker):
    from edgekit.service.config import load_config
    from edgekit.service.daemon import Daemon

    centroid_detector(tmp_path / "det.onnx")
    moving_square_video(tmp_path / "walk.mp4", fps=30)
    rules = tmp_path / "door.yaml"
    rules.write_text(DOOR_RULES)
    (tmp_path / "snaps").mkdir()
    config = tmp_path / "serve.yaml"
    config.write_text("device_id: door\nmodel: {path: det.onnx}\nsource: {uri: walk.mp4}\nanalytics: door.yaml\n"
                      "outputs:\n  events: {path: events.jsonl}\n  snapshots: {dir: snaps}\n"
                      "  http: {listen: '127.0.0.1:0'}\n  mqtt: {host: 127.0.0.1, port: %d, telemetry_interval_s: 60}\n"
                      % broker.port)
    logs = []
    d = Daemon(load_config(str(config)), config_path=str(config), log=logs.append)
    d.logs = logs
    d.rules_path = rules
    d.dir = tmp_path
    sub = Subscriber(broker.port, ["door/#", "edgekit/door/#", "homeassistant/#"])
    d.sub = sub
    d.build()
    try:
        yield d
    finally:
        d.shutdown()
        sub.close()


def test_events_counts_discovery_http_snapshots_and_metrics(daemon):
    d, sub = daemon, daemon.sub
    d.pipeline.run()
    base = "http://127.0.0.1:%d" % d.http.port
    # -- MQTT: events (QoS 1, not retained), retained counts, Home Assistant discovery
    assert sub.wait(lambda: len(sub.on("edgekit/door/events")) == 4), (d.mqtt.stats(), sorted(set(
        m[0] for m in sub.messages)), d.pipeline.summary(), d.analytics.events_total)
    events = [json.loads(p.decode()) for _, p, _, _ in sub.on("edgekit/door/events")]
    assert [(e["type"], e["rule"], e["direction"]) for e in events] == [
        ("line_crossed", "door", "in"), ("object_entered", "hall", None), ("object_left", "hall", None),
        ("line_crossed", "door", "out")]
    assert all(not retain and qos == 1 for _, _, retain, qos in sub.on("edgekit/door/events"))
    assert sub.wait(lambda: sub.on("edgekit/door/counts/door")
                    and json.loads(sub.on("edgekit/door/counts/door")[-1][1].decode())["out"] == 1)
    door = json.loads(sub.on("edgekit/door/counts/door")[-1][1].decode())
    assert door == {"type": "line", "in": 1, "out": 1, "in_by_label": {"person": 1},
                    "out_by_label": {"person": 1}}
    hall = json.loads(sub.on("edgekit/door/counts/hall")[-1][1].decode())
    assert hall["occupancy"] == 0 and hall["occupied"] == "OFF" and hall["entered"] == 1
    configs = dict((t, json.loads(p.decode())) for t, p, _, _ in sub.messages
                   if t.startswith("homeassistant/") and p)
    assert sorted(configs) == [
        "homeassistant/binary_sensor/door/hall_occupied/config",
        "homeassistant/sensor/door/door_in/config", "homeassistant/sensor/door/door_out/config",
        "homeassistant/sensor/door/hall_occupancy/config", "homeassistant/sensor/door/hall_occupancy_person/config"]
    door_in = configs["homeassistant/sensor/door/door_in/config"]
    assert door_in["state_topic"] == "edgekit/door/counts/door"
    assert door_in["value_template"] == "{{ value_json['in'] }}" and door_in["state_class"] == "total_increasing"
    assert door_in["unique_id"] == "edgekit_door_door_in"
    assert door_in["availability_topic"] == "edgekit/door/status" and door_in["payload_available"] == "online"
    assert door_in["device"]["identifiers"] == ["edgekit_door"] and door_in["device"]["model"] == "det.onnx"
    occupied = configs["homeassistant/binary_sensor/door/hall_occupied/config"]
    assert occupied["device_class"] == "occupancy" and occupied["payload_on"] == "ON"
    # a late subscriber (Home Assistant starting after the board) gets the retained configs and counts
    late = Subscriber(d.mqtt.port, ["homeassistant/#", "edgekit/door/counts/#"])
    try:
        assert late.wait(lambda: len(late.messages) >= 7)
        assert all(retain for _, _, retain, _ in late.messages)
        assert json.loads(late.on("edgekit/door/counts/door")[0][1].decode())["in"] == 1
    finally:
        late.close()
    # -- HTTP
    status, body = get(base + "/v1/events")
    assert status == 200 and [e["id"] for e in body["events"]] == [e["id"] for e in events]
    status, body = get(base + "/v1/events?since=%s&limit=2" % events[1]["id"])
    assert [e["id"] for e in body["events"]] == [events[2]["id"], events[3]["id"]]
    status, body = get(base + "/v1/events?since=%f" % events[2]["time"])
    assert [e["id"] for e in body["events"]] == [events[3]["id"]]
    assert get(base + "/v1/events?limit=x")[0] == 400
    assert get(base + "/v1/events?since=nope")[0] == 400
    status, body = get(base + "/v1/counts")
    assert body["counts"]["door"]["in"] == 1 and body["counts"]["hall"]["entered"] == 1
    status, body = get(base + "/v1/tracks")
    assert status == 200 and body["rules"]["door"]["points"] == [[128.0, pytest.approx(9.6)],
                                                                  [128.0, pytest.approx(182.4)]]
    assert [t["track_id"] for t in body["tracks"]] == [1] and len(body["tracks"][0]["trail"]) >= 2
    status, latest = get(base + "/v1/latest")
    assert latest["result"]["detections"][0]["track_id"] == 1
    # -- snapshots: named in the event, written atomically, served
    assert all(e["snapshot"] == e["id"] + ".jpg" for e in events)
    snaps = str(d.dir / "snaps")
    assert d.snapshots is not None
    deadline = time.time() + 5
    while d.snapshots.written < 4 and time.time() < deadline:
        time.sleep(0.02)
    assert sorted(os.listdir(snaps)) == sorted([e["id"] + ".jpg" for e in events] +
                                               [e["id"] + "-crop.jpg" for e in events])
    status, jpeg = get(base + "/v1/events/%s/snapshot.jpg" % events[0]["id"], raw=True)
    assert status == 200 and jpeg[:2] == b"\xff\xd8"
    import cv2
    import numpy as np

    crop = cv2.imdecode(np.frombuffer(get(base + "/v1/events/%s/crop.jpg" % events[0]["id"], raw=True)[1],
                                      np.uint8), cv2.IMREAD_COLOR)
    assert 40 <= crop.shape[0] <= 60 and crop[crop.shape[0] // 2, crop.shape[1] // 2].min() > 200   # the square
    assert get(base + "/v1/events/nope/snapshot.jpg")[0] == 404
    assert get(base + "/v1/events/..%2F..%2Fetc/snapshot.jpg")[0] == 404
    # -- Prometheus
    status, text = get(base + "/metrics", raw=True)
    text = text.decode()
    assert 'edgekit_line_crossings_total{direction="in",label="person",rule="door"} 1' in text
    assert 'edgekit_line_crossings_total{direction="out",label="person",rule="door"} 1' in text
    assert 'edgekit_zone_occupancy{label="person",rule="hall"} 0' in text
    assert 'edgekit_zone_occupancy{label="all",rule="hall"} 0' in text
    assert 'edgekit_events_total{type="line_crossed"} 2' in text
    assert "# TYPE edgekit_tracks_active gauge" in text
    assert "edgekit_snapshots_written_total 4" in text
    # the events file has the same events, with their snapshot references
    with open(str(d.dir / "events.jsonl")) as handle:
        assert [json.loads(line) for line in handle] == events


def test_reload_keeps_counts_and_track_ids_and_clears_removed_rules(daemon):
    d, sub = daemon, daemon.sub
    d.pipeline.run()
    tracker = d.analytics.analytics.tracker
    next_id = tracker.next_id
    d.rules_path.write_text(DOOR_RULES.replace("  - name: hall", "  - name: bay"))
    assert d.reload() is True
    assert any("analytics reloaded: 1 lines, 1 zones (counts and track ids kept)" in line for line in d.logs)
    counts = d.analytics.counts()
    assert counts["door"]["in"] == 1 and counts["door"]["out"] == 1          # kept across the reload
    assert counts["bay"]["entered"] == 0 and "hall" not in counts
    assert d.analytics.analytics.tracker is tracker and tracker.next_id == next_id
    gone = "homeassistant/sensor/door/hall_occupancy/config"
    assert sub.wait(lambda: any(p == b"" for _, p, _, _ in sub.on(gone)))          # cleared in Home Assistant
    assert sub.wait(lambda: any(p == b"" for _, p, _, _ in sub.on("edgekit/door/counts/hall")))
    assert sub.wait(lambda: sub.on("homeassistant/binary_sensor/door/bay_occupied/config"))
    # a bad rule on reload keeps the old rules and says why
    d.rules_path.write_text("zones: [{name: x, points: [[0, 0], [1, 1]]}]\n")
    assert d.reload() is False
    assert "analytics.zones[0].points needs at least 3 points" in d.last_reload_error
    assert set(d.analytics.counts()) == {"door", "bay"}


def test_status_page_draws_rules_tracks_counts_and_events_in_chromium(daemon, tmp_path):
    """Headless Chromium on the daemon's page after the walk: the counts, the events with their
    thumbnails, and the overlay (the line in yellow) on the stream; the screenshot is kept."""
    from test_browser import ARTIFACTS, CHROMIUM, chromium

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt install chromium)")

    d = daemon
    d.pipeline.run()
    record, frame = d.http.latest.record, d.http.latest.frame
    stop = threading.Event()

    def feed():                  # the stream goes on showing the last frame (the page waits for frames)
        while not stop.wait(0.05):
            d.http.submit(record, frame)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        check_page(d, tmp_path, chromium, ARTIFACTS)
    finally:
        stop.set()
        feeder.join()


def check_page(d, tmp_path, chromium, artifacts):
    import cv2
    import numpy as np

    dom, err = chromium(tmp_path, d.http.url, "--dump-dom")
    assert '<div id="analytics">' in dom, err[-2000:]
    assert '<tr data-rule="door"><td>door</td><td>in 1 / out 1</td></tr>' in dom
    assert '<tr data-rule="hall"><td>hall</td><td>0 inside, 1 entered</td></tr>' in dom
    events = [e["id"] for e in d.analytics.events()]
    shown = re.findall(r'<li data-event="([^"]+)"><img alt="[a-z_]+" src="v1/events/([^"]+)/crop.jpg">', dom)
    assert [a for a, _ in shown] == events[::-1] and [b for _, b in shown] == events[::-1]
    assert "line crossed door in #1 person" in dom
    assert '<canvas id="overlay" width="256" height="192">' in dom
    os.makedirs(artifacts, exist_ok=True)
    shot = os.path.join(artifacts, "analytics-status-page.png")
    if os.path.exists(shot):
        os.remove(shot)
    _, err = chromium(tmp_path, d.http.url, "--screenshot=%s" % shot)
    image = cv2.imread(shot, cv2.IMREAD_COLOR)
    assert image is not None, err[-2000:]
    view = image[60:600, :720].astype(int)
    yellow = (np.abs(view - np.array([0x3d, 0xd3, 0xff])).sum(axis=2) < 60).sum()      # the door line (BGR)
    assert yellow > 100, yellow
    metrics = d.metrics.render_prometheus()
    assert 'route="/v1/events/<id>"' in metrics                  # the thumbnails were fetched
