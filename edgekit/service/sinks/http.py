"""The daemon's HTTP face: health, readiness, Prometheus metrics, latest result, snapshot, MJPEG
stream and a small status page. Standard library only (Python 3.6: no ThreadingHTTPServer).

    server = HttpServer(port=8080, metrics=metrics, status_fn=pipeline.status, labels=meta.labels)
    server.start()                 # binds; server.url, server.port (port 0 picks a free one)
    pipeline sinks: server.submit(record, frame)  -- never blocks, keeps only the latest
    server.close()

Routes (GET and HEAD only; anything else 405):
  /healthz            200 {"status": "ok"} while the process serves
  /readyz             200 when status_fn() says ready, else 503 {"ready": false, "reason": ...}
  /metrics            Prometheus text (text/plain; version=0.0.4)
  /v1/latest          the latest record (JSON), 503 before the first one
  /v1/status          status_fn() plus the server's own figures (JSON)
  /v1/snapshot.jpg    the latest frame, annotated, JPEG
  /v1/stream.mjpg     multipart/x-mixed-replace annotated stream; at most max_streams at once (503 beyond)
  with analytics (``analytics``: an AnalyticsHook; 404 without):
  /v1/events          recent events, oldest first: ?since=<event id or unix time>&limit=N (default 100)
  /v1/events/<id>/snapshot.jpg, /v1/events/<id>/crop.jpg   the event's snapshot files (404 when none)
  /v1/counts          {rule: counts} as published on MQTT counts/<rule>
  /v1/tracks          live tracks with short trails, the rules' geometry in pixels and their state
  /  /app.js /style.css   the status page, from the package's own assets (held in memory)

Security: a host that is not loopback needs a token (ConfigError otherwise). Without a token, only
requests whose Host header names a loopback address (or one of ``allowed_hosts``) are answered
(421 otherwise), so a web page cannot read the server through DNS rebinding. With a token every
request needs ``Authorization: Bearer <token>`` (constant-time compare). The page may instead be
opened once as ``/?token=<token>``: the answer sets an HttpOnly, SameSite=Strict session cookie
(an HMAC of the token, never the token itself) that the browser then sends with the page's own
requests, and the page removes the token from the address bar. Request line + headers are limited
to ``max_request_bytes`` (414/431), request bodies are refused (413), connections are capped.

Annotation is lazy: ``submit`` only keeps references; a frame is annotated and JPEG-encoded in a
client's thread, once per frame whatever the number of clients, and only when a client asks.
"""

import hashlib
import hmac
import os
import socket
import threading
import time

from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs, urlsplit

from edgekit.jsonutil import dumps
from edgekit.errors import ConfigError
from edgekit.service.config import is_loopback
from edgekit.service.metrics import Metrics
from edgekit.service import procstats
from edgekit.service.sinks.base import Sink

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JSON_TYPE = "application/json"
# the page's files live in edgekit/service/assets (package data beside the service, not a sink)
ASSET_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
# route -> (file in ASSET_DIR, content type): the only files ever served, read once at start
ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "application/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
COOKIE = "edgekit_session"
BOUNDARY = "edgekit-frame"


def to_json(data):
    return dumps(data, sort_keys=True).encode("utf-8")


class Response(object):
    __slots__ = ("status", "content_type", "body", "headers")

    def __init__(self, status, content_type, body, headers=None):
        self.status = status
        self.content_type = content_type
        self.body = body
        self.headers = headers or {}


def json_response(status, data, headers=None):
    return Response(status, JSON_TYPE, to_json(data), headers)


class LatestFrame(object):
    """The newest record and frame; annotated JPEG made on demand, once per frame.

    ``put`` takes a lock only long enough to swap references, then wakes stream waiters."""

    def __init__(self, render):
        self._render = render            # (frame, record) -> jpeg bytes
        self._cond = threading.Condition()
        self._encode_lock = threading.Lock()
        self.version = 0
        self.record = None
        self.frame = None
        self.ts = None
        self._jpeg = (0, None)           # (version, bytes)
        self._json = (0, None)
        self.encodes = 0
        self.closed = False

    def put(self, record, frame):
        with self._cond:
            self.version += 1
            self.record = record
            self.frame = frame           # never mutated afterwards by the pipeline (a new array per frame)
            self.ts = time.time()
            self._cond.notify_all()

    def close(self):
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait_newer(self, version, timeout):
        """Block until a version newer than ``version`` exists (or timeout/close); returns the latest."""
        with self._cond:
            if self.version <= version and not self.closed:
                self._cond.wait(timeout)
            return self.version

    def record_json(self):
        with self._cond:
            version, record = self.version, self.record
        cached_version, body = self._json
        if cached_version != version or body is None:
            body = to_json(record) if record is not None else None
            self._json = (version, body)
        return body

    def jpeg(self):
        """(version, bytes) of the latest annotated frame, or (0, None) before the first frame."""
        with self._encode_lock:          # one encoder at a time: others reuse its result
            with self._cond:
                version, record, frame = self.version, self.record, self.frame
            if frame is None:
                return 0, None
            cached_version, body = self._jpeg
            if cached_version == version and body is not None:
                return version, body
            body = self._render(frame, record)
            self.encodes += 1
            self._jpeg = (version, body)
            return version, body


class _ThreadingServer(ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    app = None

    def process_request(self, request, client_address):
        if not self.app.connection_opened(request):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\nRetry-After: 1\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        ThreadingMixIn.process_request(self, request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            ThreadingMixIn.process_request_thread(self, request, client_address)
        finally:
            self.app.connection_closed(request)


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class _Budget(object):
    """File wrapper for the request line and headers: at most ``limit`` bytes, then it reports an
    end of headers and sets ``exceeded`` (so nothing larger is ever buffered)."""

    def __init__(self, raw, limit):
        self.raw = raw
        self.remaining = limit
        self.exceeded = False

    def readline(self, size=-1):
        if self.exceeded:
            return b"\r\n"
        cap = self.remaining + 1 if size is None or size < 0 else min(size, self.remaining + 1)
        line = self.raw.readline(cap)
        self.remaining -= len(line)
        if self.remaining < 0:
            self.exceeded = True
            return b"\r\n"
        return line

    def __getattr__(self, name):
        return getattr(self.raw, name)


class _Handler(BaseHTTPRequestHandler):
    server_version = "edgekit"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 15                        # seconds: idle keep-alive, slow readers and writers

    @property
    def app(self):
        return self.server.app

    def version_string(self):
        return self.server_version

    def handle_one_request(self):
        budget = _Budget(self.rfile, self.app.max_request_bytes)
        raw_rfile, self.rfile = self.rfile, budget
        try:
            self.raw_requestline = budget.readline()
            if not self.raw_requestline:
                self.close_connection = True
                return
            if budget.exceeded:
                return self._refuse(414, "request line too long")
            if not self.parse_request():
                return
            if budget.exceeded:
                return self._refuse(431, "request headers too large")
        except socket.timeout:
            self.close_connection = True
            return
        finally:
            self.rfile = raw_rfile
        try:
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self.send_error(501, "unsupported method")
                return
            method()
            self.wfile.flush()
        except (socket.timeout, OSError):         # the client went away or stalled
            self.close_connection = True

    def _refuse(self, status, reason):
        self.close_connection = True
        self.app.count(self, status)
        self.command, self.requestline = None, ""
        self.request_version = "HTTP/1.0"
        self._send(json_response(status, {"error": reason}), head=False)

    def do_GET(self):
        self.app.dispatch(self, head=False)

    def do_HEAD(self):
        self.app.dispatch(self, head=True)

    def _not_allowed(self):
        self.close_connection = True          # a body may follow: never read it
        self.app.count(self, 405)
        self._send(json_response(405, {"error": "method not allowed"}, {"Allow": "GET, HEAD"}), head=False)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def _send(self, response, head):
        self.send_response(response.status)
        body = response.body if isinstance(response.body, bytes) else response.body.encode("utf-8")
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in self.app.common_headers().items():
            self.send_header(key, value)
        for key, value in response.headers.items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, fmt, *args):       # requests are counted in metrics, not printed
        pass


class HttpServer(Sink):
    """A Sink (``submit(record, frame)``) and a threaded HTTP server. See the module docstring."""

    name = "http"
    wants_frames = True

    def __init__(self, host="127.0.0.1", port=8080, token=None, metrics=None, status_fn=None, labels=None,
                 max_streams=4, max_request_bytes=8192, max_connections=32, jpeg_quality=80,
                 stream_fps=15.0, stale_after=5.0, allowed_hosts=()):
        token = (token or "").strip() or None
        if not is_loopback(host) and token is None:
            raise ConfigError("HTTP on %s (not loopback) needs a token" % host,
                              hint="give --token-file FILE (outputs.http.token_file), "
                              "or bind to 127.0.0.1")
        for key, value, low in (("port", port, 0), ("max_streams", max_streams, 0),
                                ("max_request_bytes", max_request_bytes, 256), ("max_connections", max_connections, 1),
                                ("jpeg_quality", jpeg_quality, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low or (key == "port" and value > 65535):
                raise ConfigError("http %s must be an integer >= %d, got %r" % (key, low, value))
        self.host = host
        self.requested_port = port
        self.port = port
        self.token = token
        self.metrics = metrics if metrics is not None else Metrics()
        self.status_fn = status_fn
        self.labels = list(labels) if labels else None
        self.max_streams = max_streams
        self.max_request_bytes = max_request_bytes
        self.max_connections = max_connections
        self.jpeg_quality = jpeg_quality
        self.stream_interval = 1.0 / stream_fps if stream_fps else 0.0
        self.stale_after = stale_after
        self.allowed_hosts = set(h.lower() for h in allowed_hosts or ())
        self.latest = LatestFrame(self._render)
        self._lock = threading.Lock()
        self.streams = 0
        self.connections = 0
        self.submitted = 0
        self.last_error = None
        self._sockets = set()
        self._server = None
        self._thread = None
        self._started = time.time()
        self._session = (hmac.new(token.encode("utf-8"), b"edgekit-session", hashlib.sha256).hexdigest()
                         if token else None)
        self._assets = {}
        self.analytics = None               # an AnalyticsHook, set by the daemon
        self.analytics_pending = False      # configured, not built yet (the model is loading): 503
        self._describe_metrics()

    # -- Sink -------------------------------------------------------------------------------------
    def submit(self, record, frame=None):
        """Keep only the latest; never blocks (a lock held for a reference swap)."""
        self.latest.put(record, frame)
        self.submitted += 1
        return True

    def stats(self):
        return {"submitted": self.submitted, "streams": self.streams, "connections": self.connections,
                "encodes": self.latest.encodes, "dropped": 0, "last_error": self.last_error}

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def url(self):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d/" % (host, self.port)

    def start(self):
        if self._server is not None:
            return self
        self._assets = load_assets()
        cls = _ThreadingServer6 if ":" in self.host else _ThreadingServer
        try:
            server = cls((self.host, self.requested_port), _Handler)
        except (OSError, socket.error) as exc:
            raise ConfigError("cannot listen on %s:%s: %s" % (self.host, self.requested_port,
                                                              exc.strerror or exc),
                              hint="choose another --http HOST:PORT, or stop what uses that port")
        server.app = self
        self._server = server
        self.port = server.server_address[1]
        self._started = time.time()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="http-server")
        self._thread.daemon = True
        self._thread.start()
        return self

    def close(self, timeout=2.0):
        self.latest.close()                      # wakes streams, which then end
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout)
            self._server = None
        self._drop_connections()
        deadline = time.time() + timeout
        while self.streams and time.time() < deadline:
            time.sleep(0.02)

    # -- connection and stream accounting ---------------------------------------------------------
    def connection_opened(self, sock):
        with self._lock:
            if self.connections >= self.max_connections:
                self.metrics.inc("http_rejected_total", reason="connections")
                return False
            self.connections += 1
            self._sockets.add(sock)
            return True

    def connection_closed(self, sock):
        with self._lock:
            self.connections -= 1
            self._sockets.discard(sock)

    def _drop_connections(self):
        """On close: end keep-alive and stream connections still open."""
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _stream_slot(self):
        with self._lock:
            if self.streams >= self.max_streams:
                return False
            self.streams += 1
            self.metrics.set("http_streams", self.streams)
            return True

    def _stream_done(self):
        with self._lock:
            self.streams -= 1
            self.metrics.set("http_streams", self.streams)

    # -- requests ---------------------------------------------------------------------------------
    def common_headers(self):
        return {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}

    def count(self, handler, status, route="other"):
        self.metrics.inc("http_requests_total", route=route, code=str(status))

    def dispatch(self, handler, head):
        parts = urlsplit(handler.path)
        path = parts.path
        route = path if (path in ROUTES or path in ASSETS) else "other"
        if handler.headers.get("Content-Length", "0").strip() not in ("", "0") or \
                handler.headers.get("Transfer-Encoding"):
            handler.close_connection = True
            return self._reply(handler, route, json_response(413, {"error": "GET and HEAD take no body"}), head)
        if not self._host_allowed(handler.headers.get("Host", "")):
            return self._reply(handler, route, json_response(421, {
                "error": "Host header not served here",
                "hint": "without a token only loopback names are answered (DNS rebinding); "
                        "add the name to allowed_hosts or use a token"}), head)
        auth = self._authorize(handler, path, parts.query)
        if auth is not True:
            return self._reply(handler, route, auth, head)
        name = ROUTES.get(path)
        if name is None and path.startswith("/v1/events/"):
            route = "/v1/events/<id>"
            response = self._call_route("event_file", path)
        elif name == "stream":
            return self._stream(handler, head)
        elif name is not None:
            response = self._call_route(name, parts.query if name == "events" else None)
        elif path in ASSETS:
            response = self._asset(path, parts.query)
        else:
            response = json_response(404, {"error": "not found"})
        self._reply(handler, route, response, head)

    def _call_route(self, name, arg=None):
        """A fault in a route (drawing, encoding, a broken record) is a 500 for that request only."""
        try:
            route = getattr(self, "_route_" + name)
            return route() if arg is None else route(arg)
        except Exception as exc:
            self.last_error = "%s: %s: %s" % (name, type(exc).__name__, exc)
            self.metrics.inc("http_errors_total", route=name)
            return json_response(500, {"error": "internal error in %s" % name})

    def _reply(self, handler, route, response, head):
        self.count(handler, response.status, route)
        handler._send(response, head)

    def _host_allowed(self, header):
        """Without a token, answer only requests addressed to a loopback name (or an allowed one):
        a web page cannot then reach this server through DNS rebinding."""
        host = header.strip().lower()
        if self.token is not None or not host:
            return True
        if host.startswith("["):
            host = host[1:host.find("]")] if "]" in host else host
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        return is_loopback(host) or host in self.allowed_hosts

    def _authorize(self, handler, path, query):
        """True, or a 401 Response. Bearer header, the session cookie, or ?token= on the page."""
        if self.token is None:
            return True
        header = handler.headers.get("Authorization", "")
        if header[:7].lower() == "bearer " and _same(header[7:].strip(), self.token):
            return True
        cookie = _cookie(handler.headers.get("Cookie", ""), COOKIE)
        if cookie is not None and _same(cookie, self._session):
            return True
        if path in ("/", "/index.html"):
            given = parse_qs(query).get("token", [None])[0]
            if given is not None and _same(given, self.token):
                return True
        return json_response(401, {"error": "unauthorized",
                                   "hint": "send 'Authorization: Bearer <token>' (or open /?token=<token>)"},
                             {"WWW-Authenticate": 'Bearer realm="edgekit"'})

    def _asset(self, path, query):
        name, content_type = ASSETS[path]
        headers = {}
        if name == "index.html":
            headers["Content-Security-Policy"] = PAGE_CSP
            if self.token is not None:
                headers["Set-Cookie"] = "%s=%s; Path=/; HttpOnly; SameSite=Strict" % (COOKIE, self._session)
        return Response(200, content_type, self._assets[name], headers)

    def _route_healthz(self):
        return json_response(200, {"status": "ok", "uptime_s": round(time.time() - self._started, 3)})

    def status(self):
        """status_fn() (or a minimal one from what was submitted) plus the server's own figures."""
        if self.status_fn is not None:
            try:
                status = dict(self.status_fn())
            except Exception as exc:            # a status fault is reported, never fatal
                status = {"ready": False, "last_error": "status: %s: %s" % (type(exc).__name__, exc)}
        else:
            age = None if self.latest.ts is None else time.time() - self.latest.ts
            status = {"ready": age is not None and age <= self.stale_after, "frames": self.latest.version}
        status["http"] = {"streams": self.streams, "max_streams": self.max_streams,
                          "connections": self.connections, "submitted": self.submitted}
        figures = procstats.summary(procstats.read())
        if figures:
            status["process"] = figures
        if self.labels:
            status.setdefault("labels", self.labels)
        return status

    def _route_readyz(self):
        status = self.status()
        if status.get("ready"):
            return json_response(200, {"ready": True})
        reason = status.get("reason") or status.get("last_error") or (
            "no frames yet" if not status.get("frames") else "frames stopped flowing")
        return json_response(503, {"ready": False, "reason": reason}, {"Retry-After": "1"})

    def _route_status(self):
        return json_response(200, self.status())

    def _route_metrics(self):
        self.metrics.set("http_streams", self.streams)
        self.metrics.set("http_connections", self.connections)
        text = self.metrics.render_prometheus() + procstats.render_prometheus(procstats.read())
        return Response(200, PROMETHEUS_TYPE, text.encode("utf-8"))

    def _route_latest(self):
        body = self.latest.record_json()
        if body is None:
            return json_response(503, {"error": "no result yet"}, {"Retry-After": "1"})
        return Response(200, JSON_TYPE, body)

    def _route_snapshot(self):
        _, jpeg = self.latest.jpeg()
        if jpeg is None:
            return json_response(503, {"error": "no frame yet"}, {"Retry-After": "1"})
        return Response(200, "image/jpeg", jpeg)

    # -- analytics ----------------------------------------------------------------------------------
    def _no_analytics(self):
        if self.analytics_pending:
            return json_response(503, {"error": "analytics starting (the model is loading)"}, {"Retry-After": "1"})
        return json_response(404, {"error": "no analytics configured",
                                   "hint": "add an analytics section to the serve config (docs/analytics.md)"})

    def _route_events(self, query=""):
        if self.analytics is None:
            return self._no_analytics()
        args = parse_qs(query or "")
        since = args.get("since", [None])[0]
        limit = args.get("limit", ["100"])[0]
        try:
            limit = int(limit)
            if limit < 0:
                raise ValueError
        except ValueError:
            return json_response(400, {"error": "limit must be an integer >= 0, got %r" % limit})
        try:
            events = self.analytics.events(since=since, limit=limit)
        except ValueError as exc:
            return json_response(400, {"error": str(exc)})
        return json_response(200, {"events": events, "total": self.analytics.events_total})

    def _route_event_file(self, path):
        if self.analytics is None:
            return self._no_analytics()
        parts = path.split("/")          # "", "v1", "events", id, file
        if len(parts) != 5 or parts[4] not in ("snapshot.jpg", "crop.jpg"):
            return json_response(404, {"error": "not found", "hint": "/v1/events/<id>/snapshot.jpg or crop.jpg"})
        found = self.analytics.snapshot_file(parts[3], "crop" if parts[4] == "crop.jpg" else "frame")
        if found is None:
            return json_response(404, {"error": "no snapshot for event %r" % parts[3]})
        with open(found, "rb") as handle:
            return Response(200, "image/jpeg", handle.read())

    def _route_counts(self):
        if self.analytics is None:
            return self._no_analytics()
        return json_response(200, {"counts": self.analytics.counts()})

    def _route_tracks(self):
        if self.analytics is None:
            return self._no_analytics()
        return json_response(200, self.analytics.state())

    def _stream(self, handler, head):
        if not self._stream_slot():
            self.metrics.inc("http_rejected_total", reason="streams")
            handler.close_connection = True
            return self._reply(handler, "/v1/stream.mjpg",
                               json_response(503, {"error": "too many streams (max %d)" % self.max_streams},
                                             {"Retry-After": "5"}), head)
        try:
            self.count(handler, 200, "/v1/stream.mjpg")
            handler.close_connection = True
            handler.send_response(200)
            handler.send_header("Content-Type", "multipart/x-mixed-replace; boundary=%s" % BOUNDARY)
            for key, value in self.common_headers().items():
                handler.send_header(key, value)
            handler.send_header("Connection", "close")
            handler.end_headers()
            if not head:
                self._stream_frames(handler.wfile)
        except (OSError, ConnectionError, socket.timeout):
            pass                                  # the client went away
        except Exception as exc:                  # drawing/encoding fault: end this stream only
            self.last_error = "stream: %s: %s" % (type(exc).__name__, exc)
            self.metrics.inc("http_errors_total", route="stream")
        finally:
            self._stream_done()

    def _stream_frames(self, wfile):
        sent = 0
        last = 0.0
        while not self.latest.closed:
            version = self.latest.wait_newer(sent, timeout=1.0)
            if self.latest.closed:
                break
            if version <= sent:
                continue
            wait = self.stream_interval - (time.time() - last)
            if wait > 0:
                time.sleep(wait)
            sent, jpeg = self.latest.jpeg()
            if jpeg is None:
                continue
            wfile.write(("--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                         % (BOUNDARY, len(jpeg))).encode("ascii"))
            wfile.write(jpeg)
            wfile.write(b"\r\n")
            wfile.flush()
            last = time.time()
            self.metrics.inc("http_stream_frames_total")

    # -- rendering --------------------------------------------------------------------------------
    def _render(self, frame, record):
        from edgekit.vision.draw import annotate, encode_jpeg

        result = (record or {}).get("result") if isinstance(record, dict) else None
        caption = "#%s" % record.get("seq") if isinstance(record, dict) and "seq" in record else None
        image = annotate(frame, result, labels=self.labels, caption=caption)
        data = encode_jpeg(image, self.jpeg_quality)
        self.metrics.inc("http_jpeg_encodes_total")
        return data

    def _describe_metrics(self):
        m = self.metrics
        m.describe("http_requests_total", "counter", "HTTP requests by route and status code")
        m.describe("http_streams", "gauge", "MJPEG streams being served")
        m.describe("http_connections", "gauge", "open HTTP connections")
        m.describe("http_rejected_total", "counter", "connections or streams refused by a limit")
        m.describe("http_stream_frames_total", "counter", "frames written to MJPEG streams")
        m.describe("http_jpeg_encodes_total", "counter", "frames annotated and JPEG-encoded")
        m.describe("http_errors_total", "counter", "requests that failed inside the server (500)")


ROUTES = {
    "/healthz": "healthz",
    "/readyz": "readyz",
    "/metrics": "metrics",
    "/v1/latest": "latest",
    "/v1/status": "status",
    "/v1/snapshot.jpg": "snapshot",
    "/v1/stream.mjpg": "stream",
    "/v1/events": "events",
    "/v1/counts": "counts",
    "/v1/tracks": "tracks",
}


def load_assets():
    """The page's files, read once from the package (never from a request path)."""
    assets = {}
    for name, _ in ASSETS.values():
        with open(os.path.join(ASSET_DIR, name), "rb") as handle:
            assets[name] = handle.read()
    return assets


def _same(given, expected):
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _cookie(header, name):
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
