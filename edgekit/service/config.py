"""The daemon's configuration: a YAML file, validated against a schema, CLI flags on top.

Every mistake is a ConfigError naming the key and the problem ("config key outputs.jsonl.max_bytes
must be an integer >= 1024, got '10MB'"); unknown keys are refused with the nearest valid name.
Relative paths in a file are relative to that file; in flags, to the working directory.
``load_config(path, overrides)`` returns plain nested dicts with every default filled in.
"""

import copy
import difflib
import ipaddress
import os

from edgekit import runners
from edgekit.errors import ConfigError


def _rtsp_decoders():
    from edgekit.sources.rtsp import DECODERS

    return tuple(DECODERS) + (None,)


class Key(object):
    """One leaf of the schema: accepted types, default, and an optional check(value) -> problem or None."""

    def __init__(self, types, default=None, check=None, choices=None, required=False, path=False, doc=""):
        self.types = types if isinstance(types, tuple) else (types,)
        self.default = default
        self.check = check
        self._choices = choices         # a sequence, or a function returning one (read when asked)
        self.required = required
        self.path = path
        self.doc = doc

    @property
    def choices(self):
        return self._choices() if callable(self._choices) else self._choices


def at_least(low):
    return lambda v: None if v >= low else "must be >= %s" % low


def workers_value(v):
    if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
        return None
    return "must be auto or an integer >= 1"


def host_names(v):
    """allowed_hosts: Host-header names (no port, no scheme), answered without a token."""
    for name in v:
        if not isinstance(name, str) or not name.strip():
            return "must be a list of host names"
        if any(c in name for c in " /@") or name.count(":") == 1:
            return "must hold bare host names (no scheme, port or path), e.g. nano-01.local"
    return None


def port_range(v):
    return None if 0 <= v <= 65535 else "must be a port number 0..65535"


NUM = (int, float)
OPT_STR = (str, type(None))
OPT_INT = (int, type(None))
OPT_NUM = (int, float, type(None))
OPT_BOOL = (bool, type(None))

SCHEMA = {
    "device_id": Key(str, "edgekit", doc="name in records, MQTT topics and metrics"),
    "model": {
        "path": Key(OPT_STR, None, required=True, path=True, doc=".onnx or TensorRT .engine (with its .json sidecar)"),
        "backend": Key(str, runners.AUTO, choices=runners.choices, doc="auto (the first installed of the backends, "
                        "in the order listed) or one backend"),
        "meta": Key(OPT_STR, None, path=True, doc="YAML metadata for a model without an edgekit block"),
        "threads": Key(OPT_INT, None, check=at_least(1), doc="ONNX Runtime intra-op threads"),
        "spinning": Key(OPT_BOOL, None, doc="ONNX Runtime thread spinning during each inference (null: on, "
                        "stopped when the inference returns)"),
        "class_agnostic": Key((str, bool), "auto", check=lambda v: None if v in ("auto", True, False)
                              else "must be auto, true or false",
                              doc="one box per object across classes (a box overlapping a higher-scoring "
                              "one of another class by IoU >= 0.7 is dropped); auto: on when analytics "
                              "tracks the boxes, else the model's decoder setting"),
    },
    "source": {
        "uri": Key(OPT_STR, None, required=True, path="uri", doc="csi://0, v4l2:///dev/video0, rtsp://..., gst://..., a path"),
        "loop": Key(bool, False, doc="finite sources start again at their end"),
        "realtime": Key(OPT_BOOL, None, doc="video files: pace at the file's frame rate (default true)"),
        "fps": Key(OPT_NUM, None, check=at_least(0), doc="video files / image folders: pace at this rate"),
        "decoder": Key(OPT_STR, None, choices=_rtsp_decoders, doc="RTSP decoder"),
        "read_timeout_s": Key(NUM, 5.0, check=at_least(0.1)),
        "reconnect_initial_s": Key(NUM, 0.5, check=at_least(0.01)),
        "reconnect_max_s": Key(NUM, 10.0, check=at_least(0.01)),
    },
    "pipeline": {
        "overlap": Key(str, "auto", choices=("auto", "on", "off"), doc="preprocess N+1 while inferring N"),
        "workers": Key((str, int), "auto", check=workers_value,
                       doc="frames in flight: auto = one per core for a lossless source on a CPU runner, else 1"),
        "chunk": Key((str, int), "auto", check=workers_value,
                     doc="frames each worker takes at a time when the workers read the source themselves "
                     "(auto: 16; fewer when they would take over 0.1 s or 32 MB)"),
        "max_frames": Key(OPT_INT, None, check=at_least(1), doc="stop after this many frames"),
    },
    "outputs": {
        "jsonl": {
            "path": Key(OPT_STR, None, path=True),
            "max_bytes": Key(int, 10 * 1024 * 1024, check=at_least(1024)),
            "backups": Key(int, 5, check=at_least(0)),
            "queue": Key(int, 256, check=at_least(1)),
        },
        "events": {
            "path": Key(OPT_STR, None, path=True, doc="append analytics events to this JSON Lines file (one event a "
                        "line, rotated like outputs.jsonl); off when null"),
            "max_bytes": Key(int, 10 * 1024 * 1024, check=at_least(1024), doc="rotate the events file at this size"),
            "backups": Key(int, 5, check=at_least(0), doc="rotated events files kept (.1, .2, ...)"),
            "queue": Key(int, 256, check=at_least(1), doc="events waiting to be written at most (more are dropped "
                         "and counted)"),
        },
        "snapshots": {
            "dir": Key(OPT_STR, None, path=True, doc="write each event's annotated frame and object crop (JPEG) "
                       "into this folder; off when null"),
            "max_mb": Key(NUM, 500.0, check=at_least(1), doc="the folder's size bound: the oldest snapshots go "
                          "first beyond it"),
            "max_age_s": Key(NUM, 7 * 86400.0, check=at_least(1), doc="snapshots older than this are deleted"),
            "queue": Key(int, 16, check=at_least(1), doc="events waiting for their snapshot at most (more get none, "
                         "counted in edgekit_snapshots_dropped_total)"),
            "jpeg_quality": Key(int, 85, check=at_least(1), doc="JPEG quality 1..100 of the snapshots"),
        },
        "http": {
            "listen": Key(OPT_STR, None, doc="HOST:PORT; off when null"),
            "token_file": Key(OPT_STR, None, path=True),
            "max_streams": Key(int, 4, check=at_least(1)),
            "max_request_bytes": Key(int, 8192, check=at_least(256)),
            "allowed_hosts": Key(list, [], check=host_names,
                                 doc="Host-header names answered without a token besides loopback (DNS rebinding)"),
        },
        "mqtt": {
            "host": Key(OPT_STR, None, doc="broker; off when null"),
            "port": Key(int, 1883, check=port_range),
            "topic_prefix": Key(str, "edgekit"),
            "qos": Key(int, 1, choices=(0, 1, 2)),
            "buffer": Key(int, 1000, check=at_least(1)),
            "telemetry_interval_s": Key(NUM, 10.0, check=at_least(0.1)),
            "username": Key(OPT_STR, None),
            "password_file": Key(OPT_STR, None, path=True),
            "discovery": Key(bool, True, doc="with analytics: publish Home Assistant MQTT discovery configs (retained) "
                             "for the counts and zones"),
            "discovery_prefix": Key(str, "homeassistant", doc="Home Assistant's discovery prefix (its MQTT "
                                    "integration's setting)"),
            "tls": {            # `tls: true` is short for `tls: {enabled: true}`
                "enabled": Key(bool, False, doc="TLS to the broker (system CAs unless ca_certs)"),
                "ca_certs": Key(OPT_STR, None, path=True, doc="CA bundle that signed the broker's certificate"),
                "certfile": Key(OPT_STR, None, path=True, doc="client certificate (brokers that require one)"),
                "keyfile": Key(OPT_STR, None, path=True, doc="client certificate's private key"),
                "insecure": Key(bool, False, doc="skip the broker host name check (testing only)"),
            },
        },
    },
    "analytics": Key((dict, str, type(None)), None, path=True,
                     doc="tracking, lines and zones (docs/analytics.md): the mapping itself, or the path of a YAML "
                     "file holding it (the file `edgekit track --config` reads); validated once the model's labels "
                     "are known; off when null"),
    "summary": Key(OPT_STR, None, path=True, doc="write a JSON summary here at exit"),
}

TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
              type(None): "null", dict: "a mapping", list: "a list"}


def defaults(schema=SCHEMA):
    out = {}
    for name, spec in schema.items():
        out[name] = defaults(spec) if isinstance(spec, dict) else copy.deepcopy(spec.default)
    return out


def _type_ok(value, types):
    if isinstance(value, bool) and bool not in types:
        return False                   # YAML `true` is not an integer here
    if isinstance(value, int) and not isinstance(value, bool) and float in types:
        return True
    return isinstance(value, types)


def _describe(types):
    names = ["a number"] if int in types and float in types else []
    for t in types:
        name = TYPE_NAMES.get(t, t.__name__)
        if not (names and names[0] == "a number" and t in (int, float)) and name not in names:
            names.append(name)
    return " or ".join(names)


def _merge(schema, data, base_dir, prefix, out):
    if not isinstance(data, dict):
        raise ConfigError("config key %s must be a mapping, got %r" % (prefix.rstrip(".") or "(top level)", data),
                          hint="indent its keys under it")
    for name, value in data.items():
        key = prefix + str(name)
        if name not in schema:
            close = difflib.get_close_matches(str(name), list(schema), n=1)
            raise ConfigError("config key %s is unknown" % key,
                              hint="did you mean %s%s" % (prefix, close[0]) if close else
                              "valid keys here: %s" % ", ".join(sorted(schema)))
        spec = schema[name]
        if isinstance(spec, dict):
            if value is None:
                continue
            if isinstance(value, bool) and "enabled" in spec:
                value = {"enabled": value}          # `tls: true` -> tls.enabled
            _merge(spec, value, base_dir, key + ".", out.setdefault(name, {}))
            continue
        if not _type_ok(value, spec.types):
            raise ConfigError("config key %s must be %s, got %r" % (key, _describe(spec.types), value),
                              hint="fix the value")
        choices = spec.choices
        if choices is not None and value not in choices:
            raise ConfigError("config key %s must be one of %s, got %r" % (
                key, ", ".join(str(c) for c in choices if c is not None), value), hint="fix the value")
        if spec.check is not None and value is not None:
            problem = spec.check(value)
            if problem:
                raise ConfigError("config key %s %s, got %r" % (key, problem, value), hint="fix the value")
        if spec.path and isinstance(value, str) and base_dir is not None and _is_path(value, spec.path):
            value = os.path.join(base_dir, os.path.expanduser(value))
        out[name] = value


def load_analytics(cfg):
    """The ``analytics`` setting as a mapping (a path is read as YAML) or None; the key ConfigErrors name."""
    value = cfg.get("analytics")
    if not isinstance(value, str):
        return value
    from edgekit.yamlfile import load_yaml

    if not os.path.isfile(value):
        raise ConfigError("config key analytics: no such file %s" % value, hint="give the rules file's path")
    data = load_yaml(value)
    if isinstance(data, dict) and set(data) == {"analytics"}:
        data = data["analytics"]
    return data


def _is_path(value, kind):
    """Plain paths are resolved; a source URI (scheme://...) or a camera index is not."""
    if kind == "uri":
        return "://" not in value and not value.isdigit()
    return True


def _check_required(schema, cfg, prefix=""):
    for name, spec in schema.items():
        if isinstance(spec, dict):
            _check_required(spec, cfg[name], prefix + name + ".")
        elif spec.required and cfg[name] in (None, ""):
            raise ConfigError("config key %s%s is required" % (prefix, name),
                              hint="set it in the config file or with its command-line flag")


def merge(cfg, data, base_dir=None):
    """Merge a (partial) nested dict into ``cfg`` after validating every key."""
    _merge(SCHEMA, data, base_dir, "", cfg)
    return cfg


def set_dotted(data, dotted, value):
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return data


def load_config(path=None, overrides=None):
    """Defaults <- YAML file <- overrides ({dotted.key: value}, from CLI flags). Validated."""
    from edgekit.yamlfile import load_yaml

    cfg = defaults()
    if path:
        path = os.path.abspath(path)
        merge(cfg, load_yaml(path), base_dir=os.path.dirname(path))
    flags = {}
    for dotted, value in (overrides or {}).items():
        if value is not None:
            set_dotted(flags, dotted, value)
    merge(cfg, flags, base_dir=os.getcwd())
    _check_required(SCHEMA, cfg)
    check_http(cfg)
    check_mqtt_tls(cfg)
    return cfg


# -- HTTP bind and secrets ----------------------------------------------------------------------
def parse_host_port(text, key, default_port):
    """'HOST:PORT', '[::1]:8080', 'HOST' or ':PORT' -> (host, port)."""
    text = str(text).strip()
    host, port = text, default_port
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[1:end], text[end + 1:]
        if rest.startswith(":"):
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        port = int(port)
    except ValueError:
        raise ConfigError("%s: port %r is not a number" % (key, port), hint="use HOST:PORT, e.g. 127.0.0.1:8080")
    if not 0 <= port <= 65535:
        raise ConfigError("%s: port %d is out of range" % (key, port), hint="use 1..65535 (0 picks a free port)")
    return host or "127.0.0.1", port


def is_loopback(host):
    """True for an IP literal in 127.0.0.0/8 or ::1 (any spelling, bracketed or not, IPv4-mapped too)
    and for the name ``localhost``; any other name is not loopback, whatever it resolves to
    (``127.evil.example`` is a DNS name). The HTTP bind check and the Host-header check both use it."""
    host = str(host or "").strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def check_http(cfg):
    http = cfg["outputs"]["http"]
    if not http["listen"]:
        return
    host, _ = parse_host_port(http["listen"], "outputs.http.listen", 8080)
    if not is_loopback(host) and not http["token_file"]:
        raise ConfigError("HTTP on %s (not loopback) needs a token" % host,
                          hint="give --token-file FILE (outputs.http.token_file), or bind to 127.0.0.1")


TLS_FILES = ("ca_certs", "certfile", "keyfile")


def check_mqtt_tls(cfg):
    """outputs.mqtt.tls: files given only with TLS on, each a readable regular file (resolved),
    a key only with its certificate. Returns MqttSink's ``tls=`` argument: None, {} or a mapping."""
    tls = cfg["outputs"]["mqtt"]["tls"]
    given = [name for name in TLS_FILES if tls[name]]
    if not tls["enabled"]:
        if given or tls["insecure"]:
            first = (given or ["insecure"])[0]
            raise ConfigError("config key outputs.mqtt.tls.%s is set but outputs.mqtt.tls.enabled is false" % first,
                              hint="set outputs.mqtt.tls.enabled: true (or remove the TLS settings)")
        return None
    if tls["keyfile"] and not tls["certfile"]:
        raise ConfigError("config key outputs.mqtt.tls.keyfile needs outputs.mqtt.tls.certfile",
                          hint="give the client certificate that goes with the key")
    out = {}
    for name in given:
        out[name] = check_input_file(tls[name], "outputs.mqtt.tls.%s" % name)
        tls[name] = out[name]
    if tls["insecure"]:
        out["insecure"] = True
    return out


def check_input_file(path, key):
    """A file the daemon reads (certificates, keys): resolved; must be a readable regular file."""
    real = os.path.realpath(path)
    if not os.path.exists(real):
        raise ConfigError("%s: no such file %s" % (key, path), hint="check the path")
    if not os.path.isfile(real):
        raise ConfigError("%s: %s is not a regular file" % (key, real), hint="give the file itself")
    if not os.access(real, os.R_OK):
        raise ConfigError("%s: %s is not readable" % (key, real), hint="check its permissions")
    return real


def read_secret(path, key):
    """A token or password from a file: must exist, be a regular file and not be empty."""
    path = os.path.realpath(path)
    if not os.path.isfile(path):
        raise ConfigError("%s: %s is not a file" % (key, path), hint="create it (e.g. openssl rand -hex 32 > FILE)")
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except OSError as exc:
        raise ConfigError("%s: cannot read %s: %s" % (key, path, exc.strerror), hint="check its permissions")
    if not text:
        raise ConfigError("%s: %s is empty" % (key, path), hint="put the secret in it")
    return text, bool(os.stat(path).st_mode & 0o004)


# -- paths: resolved and checked ------------------------------------------------------------------
def check_model_path(path):
    real = os.path.realpath(path)
    if not os.path.exists(real):
        raise ConfigError("model file not found: %s" % path, hint="check --model / model.path")
    if not os.path.isfile(real):
        raise ConfigError("model path is not a regular file: %s" % real, hint="give the .onnx or .engine file")
    if not os.access(real, os.R_OK):
        raise ConfigError("model file is not readable: %s" % real, hint="check its permissions")
    return real


def check_output_path(path, key):
    """An output file: its directory must exist and be writable; the path must not be a directory
    or a symlink (a symlink could point a root daemon's writes anywhere)."""
    path = os.path.abspath(path)
    directory = os.path.realpath(os.path.dirname(path))
    if os.path.islink(path):
        raise ConfigError("%s: %s is a symlink" % (key, path), hint="give the real file path")
    if os.path.isdir(path):
        raise ConfigError("%s: %s is a directory" % (key, path), hint="give a file path inside it")
    if not os.path.isdir(directory):
        raise ConfigError("%s: directory %s does not exist" % (key, directory), hint="create it first")
    if not os.access(directory, os.W_OK):
        raise ConfigError("%s: directory %s is not writable" % (key, directory),
                          hint="fix its permissions (with systemd: ReadWritePaths=)")
    return os.path.join(directory, os.path.basename(path))
