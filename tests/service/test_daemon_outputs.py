"""`edgekit serve` config keys for outputs, wired end to end: MQTT over TLS to a real mosquitto with a
private CA (outputs.mqtt.tls), and extra Host names for the HTTP server (outputs.http.allowed_hosts)."""

import shutil
import time

import pytest

from daemon_helpers import run_serve, tiny_classifier
from test_mqtt import Watcher, make_certificates


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_classifier(tmp_path_factory.mktemp("model") / "tiny.onnx")


def test_mqtt_tls_from_the_config(model, make_broker, tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    (tmp_path / "pki").mkdir()
    certs = make_certificates(tmp_path / "pki")
    broker = make_broker("cafile %s\ncertfile %s\nkeyfile %s\n"
                         % (certs["ca.crt"], certs["server.crt"], certs["server.key"]))
    watcher = Watcher(broker.port, ["edgekit/tls-cam/results"], tls_ca=certs["ca.crt"])
    config = tmp_path / "serve.yaml"          # the CA path relative to the config file
    config.write_text("device_id: tls-cam\noutputs:\n  mqtt:\n    host: 127.0.0.1\n    port: %d\n"
                      "    tls: {enabled: true, ca_certs: pki/ca.crt}\n" % broker.port)
    try:
        proc = run_serve(["--config", str(config), "--model", model, "--backend", "onnxruntime",
                          "--source", "synthetic://?width=64&height=48&fps=0", "--frames", "12"])
        assert proc.returncode == 0, proc.stderr
        assert "MQTT to 127.0.0.1:%d over TLS (CA %s)" % (broker.port, certs["ca.crt"]) in proc.stderr
        assert watcher.wait(lambda: sorted(set(watcher.seqs())) == list(range(1, 13)))
    finally:
        watcher.close()
    # the same broker without TLS in the config: the daemon says plain TCP and gets nowhere (no results)
    config.write_text("device_id: tls-cam\noutputs:\n  mqtt: {host: 127.0.0.1, port: %d}\n" % broker.port)
    proc = run_serve(["--config", str(config), "--model", model, "--backend", "onnxruntime",
                      "--source", "synthetic://?width=64&height=48&fps=0", "--frames", "3"])
    assert "MQTT to 127.0.0.1:%d (plain TCP)" % broker.port in proc.stderr


def test_allowed_hosts_from_the_config(model, tmp_path):
    import subprocess
    import urllib.error
    import urllib.request

    from daemon_helpers import edgekit_cmd, env_with_project, ROOT

    config = tmp_path / "serve.yaml"
    config.write_text("outputs:\n  http: {listen: '127.0.0.1:0', allowed_hosts: [nano-01.local]}\n")
    proc = subprocess.Popen(edgekit_cmd() + ["serve", "--config", str(config), "--model", model, "--backend",
                                             "onnxruntime", "--source", "synthetic://?width=64&height=48&fps=30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                            env=env_with_project(), cwd=ROOT)
    try:
        url, deadline = None, time.monotonic() + 20
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if line.startswith("HTTP on "):
                url = line.split()[2]
                assert "Host names answered besides loopback: nano-01.local" in line

        def status(host):
            request = urllib.request.Request(url + "healthz", headers={"Host": host})
            try:
                return urllib.request.urlopen(request, timeout=5).status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert url
        assert status("nano-01.local:8080") == 200
        assert status("NANO-01.local") == 200
        assert status("evil.example") == 421          # any other name: refused (DNS rebinding)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
