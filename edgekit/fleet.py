"""The fleet view: which boards publish to an MQTT broker, and what they run.

Every daemon publishes (docs/board/http-mqtt.md, "MQTT"; ``edgekit.service.sinks.mqtt``)::

    <prefix>/<device>/status     retained {"state": "online"|"offline", "device", "model", "precision", "ts"}
                                 (the broker publishes the retained last will "offline" when a board vanishes)
    <prefix>/<device>/telemetry  retained {"device", "fps", "frames", "dropped", "model", "precision",
                                 "temperature_c", "ts"} every few seconds

``collect`` subscribes to both for a short while; retained messages give the whole fleet at once.
Device side: Python 3.6 and paho-mqtt 1.5+ or 2.x (imported lazily).
"""

import json
import threading
import time

from edgekit.errors import BackendUnavailable, ConfigError, UserError

DEFAULT_PORT = 1883
DEFAULT_PREFIX = "edgekit"
KINDS = ("status", "telemetry")
FIELDS = ("device", "state", "model", "precision", "fps", "temperature_c", "frames", "dropped", "last_seen",
          "age_s", "stale")


def parse_broker(text):
    """'host', 'host:port' or '[v6addr]:port' -> (host, port)."""
    from edgekit.service.config import parse_host_port

    text = (text or "").strip()
    host, port = None, -1
    if text and not text.startswith(":"):     # a bind address may omit the host; a broker may not
        try:
            host, port = parse_host_port(text, "--broker", DEFAULT_PORT)
        except ConfigError:
            pass
    if not host or not 0 < port < 65536:
        raise ConfigError("bad broker address %r" % text, hint="use --broker HOST or HOST:PORT, e.g. 10.0.0.5:1883")
    return host, port


class FleetView(object):
    """Folds status and telemetry messages into one row per device."""

    def __init__(self, prefix=DEFAULT_PREFIX):
        self.prefix = prefix.strip("/")
        self.devices = {}
        self.ignored = 0

    def topics(self):
        return ["%s/+/%s" % (self.prefix, kind) for kind in KINDS]

    def add(self, topic, payload, received=None):
        """Take one message; returns False (and counts it) when it is not a C6 status/telemetry."""
        head = self.prefix + "/"
        parts = topic[len(head):].split("/") if topic.startswith(head) else []
        if len(parts) != 2 or parts[1] not in KINDS or not payload:
            self.ignored += 1 if payload else 0
            return False
        try:
            data = json.loads(payload.decode("utf-8") if isinstance(payload, bytes) else payload)
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            self.ignored += 1
            return False
        entry = self.devices.setdefault(parts[0], {})
        entry[parts[1]] = data
        entry["received_" + parts[1]] = received if received is not None else time.time()
        return True

    def rows(self, now=None, stale_after=60.0):
        now = time.time() if now is None else now
        return [self._row(name, self.devices[name], now, stale_after) for name in sorted(self.devices)]

    @staticmethod
    def _row(name, entry, now, stale_after):
        status, telemetry = entry.get("status", {}), entry.get("telemetry", {})
        stamps = [v for v in (_number(status.get("ts")), _number(telemetry.get("ts"))) if v is not None]
        last_seen = max(stamps) if stamps else None
        state = status.get("state") if status.get("state") in ("online", "offline") else "unknown"
        age = None if last_seen is None else max(0.0, now - last_seen)
        row = {"device": name, "state": state,
               "model": status.get("model") or telemetry.get("model"),
               "precision": status.get("precision") or telemetry.get("precision"),
               "fps": _number(telemetry.get("fps")), "temperature_c": _number(telemetry.get("temperature_c")),
               "frames": _number(telemetry.get("frames")), "dropped": _number(telemetry.get("dropped")),
               "last_seen": last_seen, "age_s": age,
               "stale": bool(state == "online" and (age is None or age > stale_after))}
        return row


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _client(client_id):
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise BackendUnavailable("paho-mqtt is not installed", hint="pip install paho-mqtt (on a Jetson: sudo apt "
                                 "install python3-paho-mqtt)")
    if hasattr(mqtt, "CallbackAPIVersion"):          # paho 2.x
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    return mqtt.Client(client_id=client_id)         # paho 1.x


def _code(rc):
    return int(getattr(rc, "value", rc))


def collect(broker, prefix=DEFAULT_PREFIX, wait=1.0, username=None, password=None, connect_timeout=5.0):
    """Subscribe for ``wait`` seconds; returns a FleetView. UserError when the broker is unreachable."""
    host, port = parse_broker(broker)
    view = FleetView(prefix)
    lock = threading.Lock()
    connected = threading.Event()
    outcome = {}
    client = _client("edgekit-fleet-%d" % (int(time.time() * 1000) % 10 ** 9))
    if username:
        client.username_pw_set(username, password)

    def on_connect(client, userdata, flags, rc, properties=None):
        outcome["rc"] = _code(rc)
        if outcome["rc"] == 0:
            for topic in view.topics():
                client.subscribe(topic, qos=1)
        connected.set()

    def on_message(client, userdata, msg):
        with lock:
            view.add(msg.topic, msg.payload)

    client.on_connect, client.on_message = on_connect, on_message
    try:
        client.connect(host, port, keepalive=30)
    except (OSError, ValueError) as exc:
        raise UserError("cannot connect to the MQTT broker at %s:%d (%s)" % (host, port, exc),
                        hint="check --broker and that the broker runs (e.g. systemctl status mosquitto)")
    client.loop_start()
    try:
        if not connected.wait(connect_timeout):
            raise UserError("the MQTT broker at %s:%d did not answer within %.0f s" % (host, port, connect_timeout),
                            hint="check --broker")
        if outcome["rc"] != 0:
            raise UserError("the MQTT broker at %s:%d refused the connection (code %d)" % (host, port, outcome["rc"]),
                            hint="check --username and the EDGEKIT_MQTT_PASSWORD environment variable")
        time.sleep(max(0.0, wait))
    finally:
        client.disconnect()
        client.loop_stop()
    return view
