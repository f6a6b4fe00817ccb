"""The daemon's YAML config: schema validation naming the key, CLI overrides, paths, secrets."""

import os

import pytest

from edgekit.errors import ConfigError
from edgekit.service import config as cfgmod

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = {"model.path": "m.onnx", "source.uri": "synthetic://"}


def write(tmp_path, text, name="serve.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_and_overrides(tmp_path):
    cfg = cfgmod.load_config(None, BASE)
    assert cfg["model"]["backend"] == "auto" and cfg["device_id"] == "edgekit"
    assert cfg["model"]["path"] == os.path.join(os.getcwd(), "m.onnx")
    assert cfg["outputs"]["jsonl"]["max_bytes"] == 10 * 1024 * 1024 and cfg["outputs"]["http"]["listen"] is None
    path = write(tmp_path, "model: {path: models/a.onnx, backend: onnxruntime}\nsource: {uri: '0', loop: true}\n"
                 "outputs:\n  jsonl: {path: out/r.jsonl, backups: 2}\n")
    cfg = cfgmod.load_config(path, {"model.backend": "opencv", "outputs.jsonl.backups": None})
    assert cfg["model"]["path"] == str(tmp_path / "models" / "a.onnx")      # relative to the file
    assert cfg["outputs"]["jsonl"]["path"] == str(tmp_path / "out" / "r.jsonl")
    assert cfg["model"]["backend"] == "opencv"                               # the flag wins
    assert cfg["outputs"]["jsonl"]["backups"] == 2                           # a flag not given changes nothing
    assert cfg["source"]["loop"] is True and cfg["source"]["uri"] == "0"                # a camera index stays
    path = write(tmp_path, "model: {path: a.onnx}\nsource: {uri: clips/cam.mp4}\n", name="b.yaml")
    assert cfgmod.load_config(path)["source"]["uri"] == str(tmp_path / "clips" / "cam.mp4")
    path = write(tmp_path, "model: {path: a.onnx}\nsource: {uri: 'synthetic://?fps=5'}\n", name="c.yaml")
    assert cfgmod.load_config(path)["source"]["uri"] == "synthetic://?fps=5"


@pytest.mark.parametrize("text, message", [
    ("model: {path: a.onnx, thread: 2}", "config key model.thread is unknown. Did you mean model.threads"),
    ("modle: {path: a.onnx}", "config key modle is unknown. Did you mean model"),
    ("model: {path: a.onnx, threads: two}", "config key model.threads must be an integer or null, got 'two'"),
    ("model: {path: a.onnx, backend: cuda}", "config key model.backend must be one of auto, tensorrt"),
    ("model: {path: a.onnx, class_agnostic: maybe}", "config key model.class_agnostic must be auto, true or false"),
    ("source: {loop: 'yes'}", "config key source.loop must be true or false, got 'yes'"),
    ("source: {read_timeout_s: 0}", "config key source.read_timeout_s must be >= 0.1, got 0"),
    ("outputs: {jsonl: {max_bytes: 10MB}}", "config key outputs.jsonl.max_bytes must be an integer, got '10MB'"),
    ("outputs: {mqtt: {qos: 3}}", "config key outputs.mqtt.qos must be one of 0, 1, 2, got 3"),
    ("outputs: {mqtt: {port: 70000}}", "config key outputs.mqtt.port must be a port number"),
    ("pipeline: 3", "config key pipeline must be a mapping, got 3"),
    ("pipeline: {max_frames: true}", "config key pipeline.max_frames must be an integer or null, got True"),
    ("- a\n- b", "must hold a mapping"),
    ("model: [unclosed", "is not valid YAML at line 1"),
])
def test_invalid_config_names_key_and_problem(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        cfgmod.load_config(path, BASE)
    assert message in info.value.one_line()


def test_required_keys():
    with pytest.raises(ConfigError, match="config key source.uri is required"):
        cfgmod.load_config(None, {"model.path": "m.onnx"})
    with pytest.raises(ConfigError, match="config key model.path is required"):
        cfgmod.load_config(None, {"source.uri": "0"})


def test_http_bind_rules():
    cfg = cfgmod.load_config(None, dict(BASE, **{"outputs.http.listen": "127.0.0.1:0"}))
    assert cfgmod.parse_host_port(cfg["outputs"]["http"]["listen"], "k", 8080) == ("127.0.0.1", 0)
    assert cfgmod.parse_host_port("[::1]:9000", "k", 8080) == ("::1", 9000)
    assert cfgmod.parse_host_port("camera.local", "k", 8080) == ("camera.local", 8080)
    with pytest.raises(ConfigError, match="HTTP on 0.0.0.0 \\(not loopback\\) needs a token"):
        cfgmod.load_config(None, dict(BASE, **{"outputs.http.listen": "0.0.0.0:8080"}))
    with pytest.raises(ConfigError, match="port 'http' is not a number"):
        cfgmod.parse_host_port("host:http", "--http", 8080)
    cfgmod.load_config(None, dict(BASE, **{"outputs.http.listen": "0.0.0.0:8080",
                                           "outputs.http.token_file": "/etc/edgekit/token"}))


def test_secrets_and_paths(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    os.chmod(str(token), 0o600)
    assert cfgmod.read_secret(str(token), "k") == ("s3cret", False)
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(ConfigError, match="is empty"):
        cfgmod.read_secret(str(tmp_path / "empty"), "outputs.http.token_file")
    with pytest.raises(ConfigError, match="model file not found"):
        cfgmod.check_model_path(str(tmp_path / "missing.onnx"))
    with pytest.raises(ConfigError, match="not a regular file"):
        cfgmod.check_model_path(str(tmp_path))
    with pytest.raises(ConfigError, match="directory .* does not exist"):
        cfgmod.check_output_path(str(tmp_path / "no" / "r.jsonl"), "outputs.jsonl.path")
    with pytest.raises(ConfigError, match="is a directory"):
        cfgmod.check_output_path(str(tmp_path), "outputs.jsonl.path")
    os.symlink("/etc/passwd", str(tmp_path / "link.jsonl"))
    with pytest.raises(ConfigError, match="is a symlink"):
        cfgmod.check_output_path(str(tmp_path / "link.jsonl"), "outputs.jsonl.path")
    assert cfgmod.check_output_path(str(tmp_path / "ok.jsonl"), "k") == os.path.realpath(str(tmp_path)) + "/ok.jsonl"


def test_example_config_is_valid():
    path = os.path.join(ROOT, "deploy", "serve.example.yaml")
    cfg = cfgmod.load_config(path)
    assert cfg["model"]["path"].endswith(".onnx") and cfg["source"]["uri"]
    assert cfg["outputs"]["http"]["listen"].startswith("127.0.0.1:")
    # every key of the schema appears in the example, so it documents all of them
    text = open(path).read()

    def keys(schema, prefix=""):
        for name, spec in schema.items():
            if isinstance(spec, dict):
                for k in keys(spec, prefix + name + "."):
                    yield k
            else:
                yield prefix + name

    missing = [k for k in keys(cfgmod.SCHEMA) if k.split(".")[-1] + ":" not in text]
    assert missing == []


def test_mqtt_tls_paths_resolved_and_checked(tmp_path):
    (tmp_path / "certs").mkdir()
    for name in ("ca.crt", "client.crt", "client.key"):
        (tmp_path / "certs" / name).write_text("x")
    path = write(tmp_path, "outputs:\n  mqtt:\n    host: broker\n    tls: {enabled: true, ca_certs: certs/ca.crt,"
                 " certfile: certs/client.crt, keyfile: certs/client.key}\n")
    cfg = cfgmod.load_config(path, BASE)
    tls = cfg["outputs"]["mqtt"]["tls"]
    assert tls["ca_certs"] == os.path.realpath(str(tmp_path / "certs" / "ca.crt"))   # relative to the file
    assert cfgmod.check_mqtt_tls(cfg) == {"ca_certs": tls["ca_certs"], "certfile": tls["certfile"],
                                          "keyfile": tls["keyfile"]}
    # `tls: true`: the system's CAs; no tls: plain TCP (MqttSink's tls=None)
    assert cfgmod.check_mqtt_tls(cfgmod.load_config(write(tmp_path, "outputs: {mqtt: {tls: true}}"), BASE)) == {}
    assert cfgmod.check_mqtt_tls(cfgmod.load_config(None, BASE)) is None
    insecure = cfgmod.load_config(write(tmp_path, "outputs: {mqtt: {tls: {enabled: true, insecure: true}}}"), BASE)
    assert cfgmod.check_mqtt_tls(insecure) == {"insecure": True}


@pytest.mark.parametrize("text, message", [
    ("outputs: {mqtt: {tls: {ca_certs: missing.crt}}}",
     "config key outputs.mqtt.tls.ca_certs is set but outputs.mqtt.tls.enabled is false"),
    ("outputs: {mqtt: {tls: {enabled: true, ca_certs: missing.crt}}}", "outputs.mqtt.tls.ca_certs: no such file"),
    ("outputs: {mqtt: {tls: {enabled: true, ca_certs: .}}}", "outputs.mqtt.tls.ca_certs: %s is not a regular file"),
    ("outputs: {mqtt: {tls: {enabled: true, keyfile: serve.yaml}}}",
     "config key outputs.mqtt.tls.keyfile needs outputs.mqtt.tls.certfile"),
    ("outputs: {mqtt: {tls: {enabled: yes please}}}", "config key outputs.mqtt.tls.enabled must be true or false"),
    ("outputs: {mqtt: {tls: {cafile: ca.crt}}}", "config key outputs.mqtt.tls.cafile is unknown"),
    ("outputs: {mqtt: {tls: 1}}", "config key outputs.mqtt.tls must be a mapping, got 1"),
    ("outputs: {http: {allowed_hosts: cam.local}}", "config key outputs.http.allowed_hosts must be a list, got 'cam.local'"),
    ("outputs: {http: {allowed_hosts: ['cam.local:8080']}}", "must hold bare host names (no scheme, port or path)"),
    ("outputs: {http: {allowed_hosts: ['http://cam.local']}}", "must hold bare host names"),
    ("outputs: {http: {allowed_hosts: [8080]}}", "config key outputs.http.allowed_hosts must be a list of host names"),
])
def test_tls_and_allowed_hosts_mistakes_name_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        cfgmod.load_config(path, BASE)
    assert (message % os.path.realpath(str(tmp_path)) if "%s" in message else message) in info.value.one_line()


def test_allowed_hosts(tmp_path):
    assert cfgmod.load_config(None, BASE)["outputs"]["http"]["allowed_hosts"] == []
    path = write(tmp_path, "outputs: {http: {listen: '127.0.0.1:0', allowed_hosts: [nano-01.local, 10.0.0.7]}}")
    assert cfgmod.load_config(path, BASE)["outputs"]["http"]["allowed_hosts"] == ["nano-01.local", "10.0.0.7"]
