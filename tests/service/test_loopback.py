"""One ``is_loopback`` (edgekit.service.config), read by both of its callers: the config's bind check
(``outputs.http.listen`` off loopback needs a token) and the HTTP server (its bind check and the
Host-header check against DNS rebinding)."""

import http.client

import pytest

from edgekit.errors import ConfigError
from edgekit.service import config as cfgmod
from edgekit.service.sinks import http as http_mod
from edgekit.service.sinks.http import HttpServer

LOOPBACK = ("127.0.0.1", "127.1.2.3", "127.255.255.254", "::1", "[::1]", "0:0:0:0:0:0:0:1",
            "[0:0:0:0:0:0:0:1]", "0000::0001", "::ffff:127.0.0.1", "localhost", "LOCALHOST", " localhost ")
NOT_LOOPBACK = ("0.0.0.0", "::", "10.0.0.1", "192.168.1.10", "::2", "", "127.evil.com", "127.0.0.1.evil.example",
                "127.evil", "localhost.example.com", "ip6-localhost", "evil.localhost", "128.0.0.1",
                "::ffff:10.0.0.1", "[127.0.0.1")


def test_one_definition():
    assert http_mod.is_loopback is cfgmod.is_loopback


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback(host):
    assert cfgmod.is_loopback(host) is True


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_not_loopback(host):
    assert cfgmod.is_loopback(host) is False


BASE = {"model.path": "m.onnx", "source.uri": "synthetic://"}


@pytest.mark.parametrize("listen,loopback", [("127.0.0.1:8080", True), ("[0:0:0:0:0:0:0:1]:8080", True),
                                             ("localhost:8080", True), ("127.evil.com:8080", False),
                                             ("[::2]:8080", False)])
def test_config_bind_check(listen, loopback):
    overrides = dict(BASE, **{"outputs.http.listen": listen})
    if loopback:
        assert cfgmod.load_config(None, overrides)["outputs"]["http"]["listen"] == listen
    else:
        with pytest.raises(ConfigError, match="needs a token"):
            cfgmod.load_config(None, overrides)


@pytest.mark.parametrize("host", ["127.evil.com", "0.0.0.0", "localhost.example.com"])
def test_server_bind_check_refuses_other_hosts_without_a_token(host):
    with pytest.raises(ConfigError, match="needs a token"):
        HttpServer(host=host, port=0)


@pytest.mark.parametrize("host,answered", [("0:0:0:0:0:0:0:1", True), ("[0:0:0:0:0:0:0:1]:8080", True),
                                           ("localhost:8080", True), ("127.9.9.9", True),
                                           ("127.evil.com", False), ("127.evil.com:8080", False),
                                           ("[::ffff:10.0.0.1]", False)])
def test_server_host_header_check(host, answered):
    server = HttpServer(host="127.0.0.1", port=0).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request("GET", "/healthz", headers={"Host": host})
            status = conn.getresponse().status
        finally:
            conn.close()
    finally:
        server.close()
    assert status == (200 if answered else 421)
