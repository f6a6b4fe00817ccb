"""The HTTP server with real clients (http.client / urllib): routes, auth, limits, traversal."""

import http.client
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from edgekit.errors import ConfigError
from edgekit.service.sinks.http import BOUNDARY, HttpServer, is_loopback
from edgekit.service.metrics import Metrics

TOKEN = "s3cret-token-for-tests"


def request(server, path, method="GET", headers=None, body=None, host="127.0.0.1"):
    conn = http.client.HTTPConnection(host, server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), resp.read()
    finally:
        conn.close()


def raw(server, data, read=65536):
    """Send raw bytes, return what comes back (until the server closes or ``read`` bytes)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(data)
        chunks = []
        while sum(len(c) for c in chunks) < read:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        sock.close()


def status_of(answer):
    return int(answer.split(b" ", 2)[1])


@pytest.fixture
def server():
    servers = []

    def make(**kwargs):
        kwargs.setdefault("port", 0)
        s = HttpServer(**kwargs).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def read_parts(resp, count):
    """Read ``count`` JPEG parts of a multipart stream -> list of decoded images."""
    import cv2

    images = []
    while len(images) < count:
        line = resp.readline()
        if not line:
            break
        if line.strip() != ("--" + BOUNDARY).encode():
            continue
        headers = {}
        while True:
            line = resp.readline().strip()
            if not line:
                break
            key, _, value = line.decode().partition(":")
            headers[key.lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        data = resp.read(int(headers["content-length"]))
        images.append(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    return images


# -- routes --------------------------------------------------------------------------------------
def test_every_route_before_and_after_the_first_frame(server, frames):
    metrics = Metrics()
    metrics.inc("frames_total", 3)
    s = server(metrics=metrics)
    assert s.url == "http://127.0.0.1:%d/" % s.port

    status, headers, body = request(s, "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert headers["cache-control"] == "no-store" and headers["x-content-type-options"] == "nosniff"

    status, _, body = request(s, "/readyz")
    assert status == 503 and json.loads(body) == {"ready": False, "reason": "no frames yet"}
    assert request(s, "/v1/latest")[0] == 503
    assert request(s, "/v1/snapshot.jpg")[0] == 503

    frame, record = frames(5)
    s.submit(record, frame)
    assert request(s, "/readyz")[0] == 200
    status, headers, body = request(s, "/v1/latest")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == json.loads(json.dumps(record))

    status, headers, body = request(s, "/metrics")
    assert status == 200 and headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = body.decode()
    assert "edgekit_frames_total 3" in text
    assert 'edgekit_http_requests_total{code="503",route="/readyz"} 1' in text
    assert "# TYPE edgekit_http_streams gauge" in text
    # the process figures, under the names every Prometheus client library gives them
    rss = int(re.search(r"^process_resident_memory_bytes (\d+)$", text, re.M).group(1))
    assert rss > 10 * 2 ** 20 and "# TYPE process_cpu_seconds_total counter" in text
    threads = int(re.search(r"^edgekit_threads (\d+)$", text, re.M).group(1))
    assert threads >= 2                                      # this thread and the server's, at least
    assert re.search(r"^process_open_fds \d+$", text, re.M) and re.search(r"^process_max_fds \d+$", text, re.M)
    types = re.findall(r"^# TYPE (\S+) ", text, re.M)
    assert len(types) == len(set(types))                     # each name described once


def test_snapshot_is_the_annotated_latest_frame(server, frames):
    import cv2

    s = server(labels=["square", "box"])
    frame, record = frames(3)
    s.submit(record, frame)
    status, headers, body = request(s, "/v1/snapshot.jpg")
    assert status == 200 and headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == frame.shape
    x1, y1, x2, y2 = [int(v) for v in record["result"]["detections"][0]["box"]]
    # the box outline is drawn in the class colour where the frame had plain background/fill
    from edgekit.vision.draw import color_for
    edge = image[(y1 + y2) // 2, x1 - 1:x1 + 2].astype(int)
    assert np.abs(edge - np.array(color_for(1))).sum(axis=1).min() < 60
    assert not np.array_equal(image[(y1 + y2) // 2, x1], frame[(y1 + y2) // 2, x1])
    assert frame[0, 0].tolist() == [40, 40, 40]            # the submitted frame itself is untouched


def test_stream_pushes_new_frames_as_they_come(server, frames):
    s = server(stream_fps=0)
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    conn.request("GET", "/v1/stream.mjpg")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "multipart/x-mixed-replace; boundary=%s" % BOUNDARY
    stop = threading.Event()

    def feed():
        seq = 0
        while not stop.is_set():
            seq += 1
            s.submit(*reversed(frames(seq)))
            time.sleep(0.02)

    t = threading.Thread(target=feed)
    t.start()
    try:
        images = read_parts(resp, 3)
    finally:
        stop.set()
        t.join()
        conn.close()
    assert len(images) == 3 and all(img is not None and img.shape == (240, 320, 3) for img in images)
    assert not np.array_equal(images[0], images[2])       # moving rectangle: new frames


def test_page_and_assets_from_the_package(server):
    s = server()
    status, headers, body = request(s, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'<script src="app.js"></script>' in body and b"http://" not in body and b"https://" not in body
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "set-cookie" not in headers                      # no token, no session
    for path, kind in (("/app.js", "application/javascript"), ("/style.css", "text/css")):
        status, headers, body = request(s, path)
        assert status == 200 and headers["content-type"].startswith(kind) and len(body) > 100
    js = request(s, "/app.js")[2].decode()
    assert "v1/stream.mjpg" in js and "v1/latest" in js and "//cdn" not in js


def test_head_and_methods(server, frames):
    s = server()
    s.submit(*reversed(frames(1)))
    status, headers, body = request(s, "/v1/latest", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 10
    status, headers, _ = request(s, "/v1/stream.mjpg", method="HEAD")
    assert status == 200 and headers["content-type"].startswith("multipart/x-mixed-replace")
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        status, headers, _ = request(s, "/v1/latest", method=method, body=b"x" * 10)
        assert status == 405 and headers["allow"] == "GET, HEAD"
    assert status_of(raw(s, b"BREW /pot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")) == 501
    assert request(s, "/nope")[0] == 404


def test_readyz_follows_status_fn_and_reports_its_reason(server):
    state = {"ready": False, "last_error": "camera: no frames for 5 s", "frames": 10}
    s = server(status_fn=lambda: dict(state))
    status, _, body = request(s, "/readyz")
    assert status == 503 and json.loads(body)["reason"] == "camera: no frames for 5 s"
    state.update(ready=True, last_error=None)
    assert request(s, "/readyz")[0] == 200
    status, _, body = request(s, "/v1/status")
    data = json.loads(body)
    assert data["frames"] == 10 and data["http"]["max_streams"] == 4
    assert data["process"]["rss_mb"] > 10 and data["process"]["threads"] > 1 and data["process"]["open_fds"] > 3

    def broken():
        raise RuntimeError("boom")
    s2 = server(status_fn=broken)
    status, _, body = request(s2, "/readyz")
    assert status == 503 and "boom" in json.loads(body)["reason"]


def test_readyz_without_status_fn_goes_stale(server, frames):
    s = server(stale_after=0.2)
    s.submit(*reversed(frames(1)))
    assert request(s, "/readyz")[0] == 200
    time.sleep(0.3)
    status, _, body = request(s, "/readyz")
    assert status == 503 and json.loads(body)["reason"] == "frames stopped flowing"


# -- security ----------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.com"])
def test_refuses_non_loopback_without_token(host):
    with pytest.raises(ConfigError, match="needs a token"):
        HttpServer(host=host, port=0)
    with pytest.raises(ConfigError, match="needs a token"):
        HttpServer(host=host, port=0, token="   ")


def test_loopback_names():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "", "localhost.example.com",
                                            "127.0.0.1.evil.example", "127.evil"))


def test_bad_limits_and_busy_port_are_config_errors(server):
    with pytest.raises(ConfigError, match="max_streams"):
        HttpServer(port=0, max_streams=-1)
    with pytest.raises(ConfigError, match="port"):
        HttpServer(port=70000)
    s = server()
    with pytest.raises(ConfigError, match="cannot listen"):
        HttpServer(port=s.port).start()


def test_token_required_on_every_route(server, frames):
    s = server(host="0.0.0.0", token=TOKEN)
    s.submit(*reversed(frames(1)))
    routes = ["/healthz", "/readyz", "/metrics", "/v1/latest", "/v1/status", "/v1/snapshot.jpg",
              "/v1/stream.mjpg", "/", "/app.js", "/style.css"]
    for path in routes:
        status, headers, _ = request(s, path)
        assert status == 401, path
        assert headers["www-authenticate"].startswith("Bearer")
        assert request(s, path, headers={"Authorization": "Bearer wrong"})[0] == 401
        assert request(s, path, headers={"Authorization": "Basic " + TOKEN})[0] == 401
        assert request(s, path, headers={"Authorization": "Bearer " + TOKEN[:-1]})[0] == 401
    for path in routes:
        if path != "/v1/stream.mjpg":
            assert request(s, path, headers={"Authorization": "Bearer " + TOKEN})[0] == 200, path
    assert request(s, "/v1/stream.mjpg", method="HEAD", headers={"Authorization": "bearer " + TOKEN})[0] == 200


def test_page_token_becomes_a_session_cookie(server, frames):
    s = server(token=TOKEN)
    s.submit(*reversed(frames(1)))
    assert request(s, "/?token=wrong")[0] == 401
    assert request(s, "/v1/latest?token=" + TOKEN)[0] == 401        # only the page takes ?token=
    status, headers, _ = request(s, "/?token=" + TOKEN)
    assert status == 200
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    session = cookie.split(";")[0]
    for path in ("/v1/latest", "/v1/status", "/app.js", "/v1/snapshot.jpg"):
        assert request(s, path, headers={"Cookie": "other=1; " + session})[0] == 200
    assert request(s, "/v1/latest", headers={"Cookie": session[:-1] + "0"})[0] == 401


TRAVERSALS = [
    "/../http.py", "/..%2fhttp.py", "/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd", "/assets/../http.py",
    "/app.js/../../metrics.py", "/assets/index.html", "/static/../../../../etc/passwd", "/etc/passwd",
    "/index.html/..", "/./app.js/..", "/%00", "/app.js%00.png", "/http.py", "/assets/app.js",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_nothing_served_from_disk_but_the_assets(server, path):
    s = server()
    answer = raw(s, ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path).encode())
    assert status_of(answer) == 404
    assert b"root:" not in answer and b"import" not in answer


def test_request_size_limits(server):
    s = server(max_request_bytes=1024)
    assert status_of(raw(s, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Pad: " + b"a" * 600 + b"\r\n\r\n")) == 200
    big = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 100) for i in range(20))
    assert status_of(raw(s, big + b"\r\n")) == 431
    assert status_of(raw(s, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")) == 414
    body = b"GET /v1/latest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello"
    assert status_of(raw(s, body)) == 413
    # the server is still fine
    assert request(s, "/healthz")[0] == 200


def test_stream_limit(server, frames):
    s = server(max_streams=2)
    s.submit(*reversed(frames(1)))
    conns = []
    for _ in range(2):
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        conn.request("GET", "/v1/stream.mjpg")
        resp = conn.getresponse()
        assert resp.status == 200
        assert len(read_parts(resp, 1)) == 1
        conns.append(conn)
    status, headers, body = request(s, "/v1/stream.mjpg")
    assert status == 503 and "too many streams" in json.loads(body)["error"]
    assert 'edgekit_http_rejected_total{reason="streams"} 1' in request(s, "/metrics")[2].decode()
    conns.pop().close()
    deadline = time.time() + 5
    while s.streams > 1 and time.time() < deadline:     # the server notices at its next write
        s.submit(*reversed(frames(2)))
        time.sleep(0.05)
    assert s.streams == 1
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    conn.request("GET", "/v1/stream.mjpg")
    assert conn.getresponse().status == 200
    conn.close()
    conns[0].close()


def test_connection_limit(server):
    s = server(max_connections=2)
    idle = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(2)]
    deadline = time.time() + 5
    while s.connections < 2 and time.time() < deadline:      # accepted by the server's thread
        time.sleep(0.02)
    try:
        assert status_of(raw(s, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")) == 503
    finally:
        for sock in idle:
            sock.close()
    deadline = time.time() + 5
    while s.connections and time.time() < deadline:
        time.sleep(0.05)
    assert request(s, "/healthz")[0] == 200


# -- as a sink ---------------------------------------------------------------------------------
def test_submit_is_lazy_and_encodes_once_per_frame(server, frames):
    s = server()
    for seq in range(200):
        s.submit(*reversed(frames(seq)))
    assert s.latest.encodes == 0                             # nobody watching: no drawing, no JPEG
    for _ in range(3):
        assert request(s, "/v1/snapshot.jpg")[0] == 200
    assert s.latest.encodes == 1                             # three clients, one frame, one encode
    s.submit(*reversed(frames(201)))
    request(s, "/v1/snapshot.jpg")
    assert s.latest.encodes == 2
    assert s.stats()["submitted"] == 201


def test_records_with_numpy_values_serialise(server):
    s = server()
    s.submit({"seq": np.int64(3), "score": np.float32(0.5), "box": np.arange(4)}, None)
    assert json.loads(request(s, "/v1/latest")[2]) == {"seq": 3, "score": 0.5, "box": [0, 1, 2, 3]}
    assert request(s, "/v1/snapshot.jpg")[0] == 503            # a record without a frame


def test_close_ends_streams_and_frees_the_port(frames):
    s = HttpServer(port=0, stream_fps=0).start()
    s.submit(*reversed(frames(1)))
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    conn.request("GET", "/v1/stream.mjpg")
    resp = conn.getresponse()
    read_parts(resp, 1)
    t0 = time.time()
    s.close(timeout=2)
    assert time.time() - t0 < 3 and s.streams == 0
    rest = resp.read()                                         # the stream ends: no hang, no timeout
    assert rest.count(b"--" + BOUNDARY.encode()) <= 1
    conn.close()
    again = HttpServer(port=s.port).start()                    # port reusable at once
    again.close()


def test_many_concurrent_clients_while_frames_are_submitted(server, frames):
    s = server(max_streams=4, max_connections=64, stream_fps=0)
    stop = threading.Event()
    errors = []

    def feed():
        seq = 0
        while not stop.is_set():
            seq += 1
            s.submit(*reversed(frames(seq)))
            time.sleep(0.01)

    def poll(path, n):
        try:
            for _ in range(n):
                status, headers, body = request(s, path)
                assert status == 200, (path, status)
                if path == "/v1/latest":
                    assert json.loads(body)["device"] == "cam1"
                else:
                    assert b"# TYPE edgekit_http_streams gauge" in body
        except Exception as exc:  # collected and asserted below
            errors.append("%s: %r" % (path, exc))

    def watch():
        try:
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
            conn.request("GET", "/v1/stream.mjpg")
            resp = conn.getresponse()
            assert resp.status == 200
            images = read_parts(resp, 5)
            assert len(images) == 5 and all(i is not None for i in images)
            conn.close()
        except Exception as exc:
            errors.append("stream: %r" % (exc,))

    feeder = threading.Thread(target=feed)
    feeder.start()
    time.sleep(0.05)
    workers = [threading.Thread(target=poll, args=(p, 15)) for p in ["/metrics", "/v1/latest"] * 8]
    workers += [threading.Thread(target=watch) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    stop.set()
    feeder.join()
    assert errors == []
    text = request(s, "/metrics")[2].decode()
    assert 'edgekit_http_requests_total{code="200",route="/metrics"} 120' in text
    assert 'edgekit_http_requests_total{code="200",route="/v1/latest"} 120' in text
    assert s.latest.encodes <= s.submitted


def test_urllib_client_roundtrip_with_token(server, frames):
    s = server(token=TOKEN)
    s.submit(*reversed(frames(2)))
    req = urllib.request.Request(s.url + "v1/latest", headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["seq"] == 2
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(s.url + "v1/latest", timeout=10)
    assert info.value.code == 401


def test_page_colours_match_the_drawn_boxes():
    import re

    from edgekit.service.sinks.http import ASSET_DIR
    from edgekit.vision.draw import PALETTE

    with open(ASSET_DIR + "/app.js") as handle:
        js = handle.read()
    block = re.search(r"var PALETTE = \[(.*?)\];", js, re.S).group(1)
    hexes = re.findall(r'"#([0-9a-f]{6})"', block)
    assert ["%02x%02x%02x" % (r, g, b) for b, g, r in PALETTE] == hexes


def test_without_token_only_loopback_host_names_are_answered(server):
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example."""
    s = server(allowed_hosts=["camera.lan"])
    for host in ("127.0.0.1:%d" % s.port, "localhost", "[::1]:8080", "camera.lan:8080"):
        assert request(s, "/healthz", headers={"Host": host})[0] == 200, host
    for host in ("evil.example", "evil.example:%d" % s.port, "127.0.0.1.evil.example"):
        status, _, body = request(s, "/v1/latest", headers={"Host": host})
        assert status == 421 and "rebinding" in json.loads(body)["hint"], host
    t = server(token=TOKEN)
    assert request(t, "/healthz", headers={"Host": "evil.example", "Authorization": "Bearer " + TOKEN})[0] == 200


def test_nan_and_infinity_become_null(server):
    s = server()
    s.submit({"seq": 1, "score": float("nan"), "box": [1.0, float("inf")], "arr": np.array([np.nan])}, None)
    body = request(s, "/v1/latest")[2].decode()
    assert json.loads(body) == {"seq": 1, "score": None, "box": [1.0, None], "arr": [None]}
    assert "NaN" not in body and "Infinity" not in body


def test_a_broken_frame_or_result_is_a_500_for_that_request_only(server, frames):
    s = server(stream_fps=0)
    frame, record = frames(1)
    record["result"]["detections"][0]["box"] = "not a box"
    s.submit(record, frame)
    status, _, body = request(s, "/v1/snapshot.jpg")
    assert status == 500 and json.loads(body) == {"error": "internal error in snapshot"}
    assert "snapshot" in s.stats()["last_error"]
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    conn.request("GET", "/v1/stream.mjpg")
    resp = conn.getresponse()
    assert resp.status == 200 and read_parts(resp, 1) == []          # the stream ends, nothing hangs
    conn.close()
    assert request(s, "/healthz")[0] == 200 and request(s, "/v1/latest")[0] == 200
    s.submit(*reversed(frames(2)))                                     # the next good frame is fine
    assert request(s, "/v1/snapshot.jpg")[0] == 200
    assert 'edgekit_http_errors_total{route="snapshot"} 1' in request(s, "/metrics")[2].decode()


def test_ipv6_loopback(server):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        s = server(host="::1")
    except ConfigError as exc:
        pytest.skip("cannot bind ::1 here: %s" % exc)
    assert s.url == "http://[::1]:%d/" % s.port
    with urllib.request.urlopen(s.url + "healthz", timeout=10) as resp:
        assert json.loads(resp.read())["status"] == "ok"


def test_analytics_routes_without_analytics_say_so(server):
    s = server()
    for path in ("/v1/events", "/v1/counts", "/v1/tracks", "/v1/events/x-1-1/snapshot.jpg"):
        status, _, body = request(s, path)
        assert status == 404 and "no analytics configured" in json.loads(body.decode())["error"]
    s.analytics_pending = True                  # configured; the daemon is still loading the model
    status, headers, body = request(s, "/v1/counts")
    assert status == 503 and headers["retry-after"] == "1" and "starting" in json.loads(body.decode())["error"]
