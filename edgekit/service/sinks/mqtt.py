"""MQTT output: results with QoS 1, retained online/offline status with a last will, telemetry.

Topics (``<prefix>/<device>/...``):
  status     retained {"state": "online"|"offline", "device", "model", "precision", "ts"};
             the broker publishes "offline" itself (last will) when the connection dies
  results    one message per record (QoS ``qos``, default 1)
  telemetry  retained {"device", "fps", "frames", "dropped", "model", "precision", "temperature_c",
             "temperatures", "ts"} every ``telemetry_interval`` seconds
  events     with analytics: one message per event (QoS ``qos``, not retained; docs/reference/events.md),
             through the same bounded buffer as the results
  counts/<rule>  with analytics: retained, the rule's counts, published when they change (the latest
             value of each topic is kept and published again after every reconnect)
  <discovery_prefix>/<component>/<device>/<object>/config  retained Home Assistant discovery configs
             (``set_discovery``); a removed rule's configs are cleared with an empty retained message

``submit`` never blocks: records go to a bounded buffer (``buffer`` records). While the broker is
away they wait there; when it is full the oldest is dropped and counted (``dropped``,
``edgekit_mqtt_dropped_total``). A sender thread hands records to paho while connected, keeping at
most ``max_inflight`` unacknowledged; paho re-sends those after a reconnect, so QoS 1 results are
delivered at least once (duplicates are possible, losses within the bound are not).
paho reconnects by itself with exponential backoff (``reconnect_delay_set``, ``loop_start``).

TLS: ``tls=True`` (system CAs) or ``tls={"ca_certs": ..., "certfile": ..., "keyfile": ...}`` (client
certificates optional); ``username``/``password`` for brokers that require them.

paho-mqtt is imported when the sink starts; 1.x (``Client(client_id=...)``, JetPack's 1.6) and 2.x
(``Client(CallbackAPIVersion.VERSION2, ...)``) both work.
"""

import collections
import glob
import os
import threading
import time

from edgekit.jsonutil import dumps as _dumps
from edgekit.errors import ConfigError
from edgekit.service.sinks.base import Sink

THERMAL_ROOT = "/sys/class/thermal"


def dumps(data):
    return _dumps(data, separators=(",", ":"))


def read_temperatures(root=THERMAL_ROOT):
    """{zone type: degrees C} from /sys/class/thermal/thermal_zone*/ (empty where absent)."""
    temps = {}
    for zone in sorted(glob.glob(os.path.join(root, "thermal_zone*"))):
        try:
            with open(os.path.join(zone, "temp")) as handle:
                milli = float(handle.read().strip())
        except (OSError, ValueError):
            continue
        try:
            with open(os.path.join(zone, "type")) as handle:
                name = handle.read().strip() or os.path.basename(zone)
        except OSError:
            name = os.path.basename(zone)
        temps[name] = round(milli / 1000.0, 1)
    return temps


def _code(rc):
    """paho 1.x passes ints, 2.x ReasonCode objects."""
    value = getattr(rc, "value", rc)
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _check_topic_part(key, value, allow_slash):
    bad = "+#\x00" if allow_slash else "+#/\x00"
    if not value or any(ch in value for ch in bad) or value.startswith("/") or value.endswith("/"):
        raise ConfigError("mqtt %s %r is not a usable topic part" % (key, value),
                          hint="use letters, digits, - and _ (no +, #%s)" % ("" if allow_slash else " or /"))


TLS_KEYS = ("ca_certs", "certfile", "keyfile", "insecure")


def _check_tls(tls):
    """None/False: plain TCP; True: TLS with the system's CAs; a dict: ca_certs, certfile, keyfile
    (files that must exist), insecure (skip the host name check)."""
    if tls is None or tls is False:
        return None
    if tls is True:
        return {}
    if not isinstance(tls, dict):
        raise ConfigError("mqtt tls must be true, false or a mapping of %s" % ", ".join(TLS_KEYS))
    unknown = sorted(set(tls) - set(TLS_KEYS))
    if unknown:
        raise ConfigError("mqtt tls has unknown keys: %s" % ", ".join(unknown), hint="use %s" % ", ".join(TLS_KEYS))
    for key in ("ca_certs", "certfile", "keyfile"):
        path = tls.get(key)
        if path is not None and not os.path.isfile(path):
            raise ConfigError("mqtt tls.%s: no such file %s" % (key, path), hint="check the path")
    if tls.get("keyfile") and not tls.get("certfile"):
        raise ConfigError("mqtt tls.keyfile needs tls.certfile (the client certificate)")
    return dict(tls)


def _paho():
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise ConfigError("MQTT output needs paho-mqtt, which is not installed",
                          hint="pip install paho-mqtt (on a Jetson: sudo apt install python3-paho-mqtt)")
    return mqtt


def new_client(client_id):
    """A paho client for 1.x or 2.x (2.x with the VERSION2 callback API)."""
    mqtt = _paho()
    api = getattr(mqtt, "CallbackAPIVersion", None)
    if api is not None:
        return mqtt.Client(api.VERSION2, client_id=client_id, clean_session=True)
    return mqtt.Client(client_id=client_id, clean_session=True)


class _Message(object):
    """A buffered publish other than a result: events, retained counts and discovery configs."""

    __slots__ = ("topic", "payload", "retain")

    def __init__(self, topic, payload, retain=False):
        self.topic, self.payload, self.retain = topic, payload, retain


class MqttSink(Sink):
    name = "mqtt"
    wants_frames = False

    def __init__(self, host, port=1883, device_id="edgekit", topic_prefix="edgekit", qos=1, buffer=1000,
                 metrics=None, status_fn=None, telemetry_interval=10.0, username=None, password=None,
                 keepalive=30, client_id=None, max_inflight=20, reconnect_min=1.0, reconnect_max=30.0,
                 thermal_root=THERMAL_ROOT, tls=None):
        if not host:
            raise ConfigError("mqtt host is empty", hint="set mqtt.host (e.g. 127.0.0.1)")
        _check_topic_part("device_id", device_id, allow_slash=False)
        _check_topic_part("topic_prefix", topic_prefix, allow_slash=True)
        if qos not in (0, 1, 2):
            raise ConfigError("mqtt qos must be 0, 1 or 2, got %r" % (qos,))
        for key, value in (("buffer", buffer), ("port", port), ("max_inflight", max_inflight)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError("mqtt %s must be a positive integer, got %r" % (key, value))
        if telemetry_interval is not None and telemetry_interval <= 0:
            raise ConfigError("mqtt telemetry_interval must be positive (or null to disable)")
        self.tls = _check_tls(tls)
        self.host, self.port = host, port
        self.device_id = device_id
        self.qos = qos
        self.metrics = metrics
        self.status_fn = status_fn
        self.telemetry_interval = telemetry_interval
        self.username, self.password = username, password
        self.keepalive = keepalive
        self.client_id = client_id or "%s-%s" % (topic_prefix.replace("/", "-"), device_id)
        self.max_inflight = max_inflight
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        self.thermal_root = thermal_root
        base = "%s/%s" % (topic_prefix, device_id)
        self.topics = {"status": base + "/status", "results": base + "/results", "telemetry": base + "/telemetry",
                       "events": base + "/events", "counts": base + "/counts"}
        self._retained = collections.OrderedDict()     # topic -> payload (b"" clears it), latest wins
        self._dirty = collections.OrderedDict()        # topics to (re)publish once connected
        self._discovered = {}                          # rule -> [config topics]
        self.discovery_prefix = "homeassistant"
        self.device_info = {}
        self._buffer = collections.deque()
        self.buffer_size = buffer
        self._cond = threading.Condition()
        self._connected = False
        self._stopping = False
        self._deadline = None
        self._handed = 0            # QoS>0 publishes handed to paho
        self._acked = 0             # ... acknowledged by the broker (on_publish)
        self.submitted = 0
        self.published = 0
        self.dropped = 0
        self.connects = 0
        self.last_error = None
        self._client = None
        self._thread = None

    # -- Sink -------------------------------------------------------------------------------------
    def submit(self, record, frame=None):
        """Buffer the record (O(1)); the oldest is dropped and counted when the buffer is full."""
        with self._cond:
            dropped = len(self._buffer) >= self.buffer_size
            if dropped:
                self._buffer.popleft()
                self.dropped += 1
            self._buffer.append(record)
            self.submitted += 1
            self._cond.notify_all()
        if dropped and self.metrics is not None:
            self.metrics.inc("mqtt_dropped_total")
        return not dropped

    def submit_event(self, event):
        """An analytics event to ``events``, through the results' bounded buffer (QoS ``qos``)."""
        return self.submit(_Message(self.topics["events"], event))

    def set_counts(self, rule, counts):
        """The retained counts of ``rule`` (a JSON-ready dict; None clears the topic)."""
        self.set_retained("%s/%s" % (self.topics["counts"], rule), b"" if counts is None else dumps(counts))

    def set_retained(self, topic, payload):
        """Keep ``topic``'s latest ``payload`` and publish it retained (again after each reconnect);
        an empty payload clears the retained message on the broker once and is then forgotten."""
        with self._cond:
            self._retained[topic] = payload
            self._dirty[topic] = True
            self._cond.notify_all()

    def set_discovery(self, rules, device_name=None, model=None, version=None):
        """Home Assistant MQTT discovery: ``rules`` = {rule: [(component, object_id, config)]}
        (AnalyticsHook.discovery). Each config gains the state topic (the rule's counts), a
        unique_id, the device block and the availability (the ``status`` topic's state); the
        configs of rules no longer given are cleared."""
        if device_name is not None:
            self.device_info = {"identifiers": ["edgekit_%s" % self.device_id], "name": device_name,
                                "manufacturer": "edgekit", "model": model or "edgekit serve",
                                "sw_version": version or ""}
        for rule in sorted(set(self._discovered) - set(rules)):
            for topic in self._discovered.pop(rule):
                self.set_retained(topic, b"")
        for rule, items in rules.items():
            topics = []
            for component, object_id, config in items:
                uid = "edgekit_%s_%s" % (self.device_id, object_id)
                topic = "%s/%s/%s/%s/config" % (self.discovery_prefix, component, self.device_id, object_id)
                payload = dict(config, unique_id=uid, object_id=uid, state_topic="%s/%s" % (self.topics["counts"], rule),
                               availability_topic=self.topics["status"],
                               availability_template="{{ value_json.state }}", payload_available="online",
                               payload_not_available="offline", device=self.device_info)
                self.set_retained(topic, dumps(payload))
                topics.append(topic)
            for topic in set(self._discovered.get(rule, ())) - set(topics):
                self.set_retained(topic, b"")
            self._discovered[rule] = topics

    def stats(self):
        with self._cond:
            return {"submitted": self.submitted, "published": self.published, "dropped": self.dropped,
                    "buffered": len(self._buffer), "inflight": self._handed - self._acked,
                    "connected": self._connected, "reconnects": max(self.connects - 1, 0),
                    "last_error": self.last_error}

    @property
    def connected(self):
        return self._connected

    def wait_connected(self, timeout=10.0):
        deadline = time.time() + timeout
        with self._cond:
            while not self._connected and time.time() < deadline:
                self._cond.wait(min(0.1, max(deadline - time.time(), 0.001)))
            return self._connected

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self):
        if self._client is not None:
            return self
        client = new_client(self.client_id)
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls is not None:
            client.tls_set(ca_certs=self.tls.get("ca_certs"), certfile=self.tls.get("certfile"),
                           keyfile=self.tls.get("keyfile"))
            if self.tls.get("insecure"):
                client.tls_insecure_set(True)
        client.will_set(self.topics["status"], self._status_payload("offline"), qos=1, retain=True)
        client.reconnect_delay_set(min_delay=self.reconnect_min, max_delay=self.reconnect_max)
        # our window is the limit; paho's own (which would queue, then resend oddly) never binds
        client.max_inflight_messages_set(self.max_inflight + 10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_publish = self._on_publish
        self._client = client
        client.connect_async(self.host, self.port, keepalive=self.keepalive)
        client.loop_start()
        self._thread = threading.Thread(target=self._run, name="sink-mqtt")
        self._thread.daemon = True
        self._thread.start()
        return self

    def close(self, timeout=2.0):
        """Send what is buffered (within ``timeout``), publish "offline" (retained), disconnect."""
        if self._client is None:
            return
        deadline = time.time() + timeout
        with self._cond:
            self._stopping = True
            self._deadline = deadline - min(0.5, timeout / 4.0)     # leave time for "offline"
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(max(deadline - time.time(), 0.1))
        client = self._client
        if self._connected:
            with self._cond:
                self._handed += 1          # counted like every QoS 1 publish: on_publish counts its ack
            info = client.publish(self.topics["status"], self._status_payload("offline"), qos=1, retain=True)
            self._wait(lambda: info.is_published() and self._handed - self._acked <= 0, deadline)
        client.disconnect()
        client.loop_stop()
        self._client = None
        self._set_gauge("mqtt_connected", 0)

    def _wait(self, done, deadline):
        while not done() and time.time() < deadline:
            time.sleep(0.01)

    # -- paho callbacks (paho's thread; never call paho while holding self._cond) -----------------
    def _on_connect(self, client, userdata, flags, rc, *rest):
        if _code(rc) != 0:
            self.last_error = "broker refused the connection: %s" % (rc,)
            return
        with self._cond:
            self._connected = True
            self.connects += 1
            for topic in self._retained:
                self._dirty[topic] = True
            self._cond.notify_all()
        if self.metrics is not None and self.connects > 1:
            self.metrics.inc("mqtt_reconnects_total")
        self._set_gauge("mqtt_connected", 1)
        self._publish(self.topics["status"], self._status_payload("online"), retain=True)

    def _on_connect_fail(self, client, userdata, *rest):
        self.last_error = "cannot reach the broker at %s:%s (retrying)" % (self.host, self.port)

    def _on_disconnect(self, client, userdata, *args):
        rc = args[1] if len(args) >= 2 else (args[0] if args else 0)
        with self._cond:
            was_connected, self._connected = self._connected, False
            self._cond.notify_all()
        if _code(rc) != 0 and was_connected:       # (a refused connection says so in _on_connect)
            self.last_error = "connection to %s:%s lost (%s)" % (self.host, self.port, rc)
        self._set_gauge("mqtt_connected", 0)

    def _on_publish(self, client, userdata, mid, *rest):
        with self._cond:
            self._acked += 1
            self._cond.notify_all()

    # -- sending ----------------------------------------------------------------------------------
    def _publish(self, topic, payload, retain=False, qos=None):
        qos = self.qos if qos is None else qos
        if qos > 0:
            with self._cond:
                self._handed += 1
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if qos > 0 and _code(getattr(info, "rc", 0)) not in (0, 4):     # 4: no connection, paho keeps it
            with self._cond:
                self._handed -= 1
            self.last_error = "publish to %s failed (rc %s)" % (topic, info.rc)
            return False
        return True

    def _take_batch(self):
        """Records to send now: while connected, up to the in-flight window (QoS>0); retained
        topics that changed go first (each at its latest payload)."""
        batch = []
        window = self.max_inflight - (self._handed - self._acked) if self.qos > 0 else len(self._buffer)
        while self._connected and self._dirty and len(batch) < window:
            topic, _ = self._dirty.popitem(last=False)
            payload = self._retained.get(topic)
            if payload is None:
                continue
            if payload == b"":
                del self._retained[topic]
            batch.append(_Message(topic, payload, retain=True))
        while self._connected and self._buffer and len(batch) < window:
            batch.append(self._buffer.popleft())
        return batch

    def _run(self):
        interval = self.telemetry_interval
        next_telemetry = time.time() + interval if interval else None
        while True:
            with self._cond:
                batch = self._take_batch()
                while not batch:
                    if self._stopping and ((not self._buffer and not self._dirty) or not self._connected
                                           or time.time() >= self._deadline):
                        return
                    now = time.time()
                    if next_telemetry is not None and now >= next_telemetry:
                        break
                    wait = 0.5 if next_telemetry is None else min(0.5, next_telemetry - now)
                    self._cond.wait(max(wait, 0.01))
                    batch = self._take_batch()
            if self._stopping and time.time() >= self._deadline:
                with self._cond:
                    self._buffer.extendleft(reversed(batch))      # not sent: counted as buffered
                return
            for record in batch:
                if isinstance(record, _Message):
                    payload = record.payload if isinstance(record.payload, (bytes, str)) else dumps(record.payload)
                    if self._publish(record.topic, payload, retain=record.retain, qos=max(self.qos, 1)
                                     if record.retain else None) and not record.retain:
                        self.published += 1
                elif self._publish(self.topics["results"], dumps(record)):
                    self.published += 1
            if self.metrics is not None and batch:
                self.metrics.inc("mqtt_published_total", len(batch))
                self.metrics.set("mqtt_buffered", len(self._buffer))
            if next_telemetry is not None and time.time() >= next_telemetry:
                next_telemetry = time.time() + interval
                if self._connected:
                    self._publish(self.topics["telemetry"], dumps(self.telemetry()), retain=True)

    # -- payloads ---------------------------------------------------------------------------------
    def _status(self):
        if self.status_fn is None:
            return {}
        try:
            return dict(self.status_fn())
        except Exception as exc:          # a status fault is reported, never fatal
            self.last_error = "status: %s: %s" % (type(exc).__name__, exc)
            return {}

    def _status_payload(self, state):
        status = self._status()
        return dumps({"state": state, "device": self.device_id, "model": status.get("model"),
                      "precision": status.get("precision"), "ts": round(time.time(), 3)})

    def telemetry(self):
        status = self._status()
        temps = read_temperatures(self.thermal_root)
        return {"device": self.device_id, "fps": status.get("fps"), "frames": status.get("frames"),
                "dropped": status.get("dropped"), "model": status.get("model"),
                "precision": status.get("precision"),
                "temperature_c": max(temps.values()) if temps else None, "temperatures": temps,
                "mqtt": {"buffered": len(self._buffer), "dropped": self.dropped},
                "ts": round(time.time(), 3)}

    def _set_gauge(self, name, value):
        if self.metrics is not None:
            self.metrics.set(name, value)
