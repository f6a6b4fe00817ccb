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
