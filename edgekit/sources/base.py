"""The Source protocol and the latest-frame grabber every source shares.

A source owns one grabber thread. The thread opens the device, reads frames and keeps only the
newest one: a frame the consumer did not take before the next one arrived is dropped and counted
(``stats()["dropped"]``), so the inference loop always works on the freshest image and latency
never builds up in buffers. Lossless sources (a video file read as fast as possible, an image
folder) instead make the grabber wait for the consumer: every frame is delivered, nothing dropped.

When a read fails the device is closed and reopened with capped exponential backoff
(``backoff_initial`` doubling up to ``backoff_max`` seconds); each successful reopen after a
failure counts as a reconnect. Finite sources (files, image folders) end at their end: ``eof``
becomes True, or with ``loop=True`` they start again.

Pull mode (``start(pull=True)``, lossless sources only): no grabber thread; ``read()`` captures
the next frame on the caller's thread, one reader at a time, with the same reconnects, backoff, loop
and end of stream. The daemon's workers use it for files and folders, so each frame is decoded by
the thread that infers it (``edgekit.service.pipeline.pulls``).

Subclasses implement three methods, all called on the grabber thread or, in pull mode, by one reader
at a time (``_open`` also once from ``start()``): ``_open()`` (raise SourceError when the device
cannot be opened), ``_grab()`` (a BGR uint8 image, or None when the read failed or the stream ended)
and ``_release()``.
"""

import threading
import time

from edgekit.errors import UserError


_END = object()     # _capture(): stopped, or a finite source that ended


class SourceError(UserError):
    """A source that cannot be opened or read as given."""


class Frame(object):
    """One captured image: ``image`` (BGR uint8), ``seq`` (1, 2, ...), ``ts_capture`` (unix
    seconds, time.time()) and ``t_capture`` (time.perf_counter(), for ages and latencies)."""

    __slots__ = ("image", "seq", "ts_capture", "t_capture")

    def __init__(self, image, seq, ts_capture, t_capture):
        self.image = image
        self.seq = seq
        self.ts_capture = ts_capture
        self.t_capture = t_capture

    def __repr__(self):
        return "Frame(seq=%d, shape=%s)" % (self.seq, getattr(self.image, "shape", None))


class Source(object):
    """Base class: grabber thread, latest-frame slot, reconnects, end of stream.

    Options common to every source: ``loop`` (restart finite sources at their end),
    ``lossless`` (deliver every frame instead of the newest; default: per source),
    ``backoff_initial`` / ``backoff_max`` (seconds), ``read_timeout`` (seconds, passed to
    backends that support it).
    """

    scheme = "base"
    finite = False          # True: the stream has an end (file, folder)
    default_lossless = False

    def __init__(self, uri, loop=False, lossless=None, backoff_initial=0.5, backoff_max=10.0,
                 read_timeout=5.0, **unused):
        if unused:
            raise SourceError("source %s does not take option(s) %s" % (uri, ", ".join(sorted(unused))),
                              hint="see `edgekit serve --help` for each source's options")
        self.uri = str(uri)
        self.loop = bool(loop)
        self.lossless = self.default_lossless if lossless is None else bool(lossless)
        self.backoff_initial = float(backoff_initial)
        self.backoff_max = float(backoff_max)
        self.read_timeout = float(read_timeout)
        self._cond = threading.Condition()
        self._latest = None          # Frame not yet taken by the consumer
        self._stop = threading.Event()
        self._thread = None
        self._seq = 0
        self._eof = False
        self.frames = 0              # frames captured
        self.dropped = 0             # captured but replaced before anyone read them
        self.reconnects = 0          # successful reopens after a failure
        self.failures = 0            # failed reads and failed opens
        self.loops = 0
        self.last_error = None
        self.connected = False
        self.heartbeat = time.monotonic()   # the grabber's last sign of life (for the watchdog)
        self.pulling = False         # start(pull=True): read() captures on the caller's thread
        self._pull_lock = threading.Lock()
        self._opened = True          # capture state, kept by _capture()
        self._failures_in_row = 0
        self._read_since_open = 0
        self._retry_at = None        # monotonic time of the next reopen after a failure

    # -- subclass interface ---------------------------------------------------------------
    def _open(self):
        raise NotImplementedError

    def _grab(self):
        raise NotImplementedError

    def _release(self):
        pass

    def describe(self):
        """A short text for logs and the status page (never a secret: no passwords in URLs)."""
        return _redact(self.uri)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, pull=False):
        """Open the device (SourceError when it cannot be opened) and start the grabber.

        ``pull=True`` (lossless sources only, for several consumers that each take every frame):
        no grabber thread; ``read()`` captures the next frame on the caller's thread, so a frame is
        decoded by the thread that goes on to use it, with no hand-over between threads. Reconnects,
        backoff, loop and end of stream behave as with the grabber. Calling start() again does
        nothing, in either mode."""
        if self.started:
            return self
        if pull and not self.lossless:
            raise ValueError("pull mode is for lossless sources: a live source keeps only its newest frame")
        self.pulling = bool(pull)          # before _open(): a backend may open differently for it
        try:
            self._open()
        except BaseException:
            self.pulling = False
            raise
        self.connected = True
        if pull:
            return self
        self._thread = threading.Thread(target=self._run, name="grab-%s" % self.scheme)
        self._thread.daemon = True
        self._thread.start()
        return self

    def close(self, timeout=2.0):
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():     # stuck in a backend read: it exits when that returns
                return
        if self.pulling:
            if not self._pull_lock.acquire(timeout=timeout):     # a reader inside a backend read
                return
            try:
                self._safe_release()
            finally:
                self._pull_lock.release()
            return
        self._safe_release()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def started(self):
        return self._thread is not None or self.pulling

    @property
    def eof(self):
        """True once a finite source has delivered its last frame and nothing is left to read."""
        with self._cond:
            return self._eof and self._latest is None

    def stats(self):
        return {"frames": self.frames, "dropped": self.dropped, "reconnects": self.reconnects,
                "eof": self.eof, "failures": self.failures, "loops": self.loops,
                "connected": self.connected, "last_error": self.last_error}

    # -- consumer side --------------------------------------------------------------------
    def read(self, timeout=1.0):
        """The newest frame not read yet, waiting up to ``timeout`` seconds; None on timeout or
        at the end of a finite source (then ``eof`` is True)."""
        if self.pulling:
            return self._pull(timeout)
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._latest is None:
                if self._eof or self._stop.is_set():
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            frame, self._latest = self._latest, None
            self._cond.notify_all()      # a lossless grabber waits for the slot to empty
            return frame

    def _pull(self, timeout):
        """Pull mode: capture the next frame here (one reader at a time)."""
        deadline = time.monotonic() + timeout
        with self._pull_lock:
            while not self._eof and not self._stop.is_set():
                self.heartbeat = time.monotonic()
                image = self._capture(deadline - time.monotonic())
                if image is _END:
                    self._finish()
                    break
                if image is not None:
                    return self._new_frame(image)
                if time.monotonic() >= deadline:
                    break
        return None

    # -- grabber thread -------------------------------------------------------------------
    def _new_frame(self, image):
        self._seq += 1
        self.frames += 1
        return Frame(image, self._seq, time.time(), time.perf_counter())

    def _publish(self, image):
        with self._cond:
            if self.lossless:
                while self._latest is not None and not self._stop.is_set():
                    self._cond.wait(0.1)
            elif self._latest is not None:
                self.dropped += 1
            self._latest = self._new_frame(image)
            self._cond.notify_all()

    def _finish(self):
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _run(self):
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            image = self._capture(None)
            if image is _END:
                break
            if image is not None:
                self._publish(image)
        self._finish()

    def _capture(self, wait_limit):
        """One step of capturing: an image; None when there is none yet (a failed read, a reopen,
        a backoff wait that is not over: call again); or _END (stopped, or a finite source that
        ended and does not loop). Waits at most ``wait_limit`` seconds for a backoff (None: all
        of it)."""
        if not self._opened:
            if self._retry_at is not None:
                left = self._retry_at - time.monotonic()
                if left > 0:
                    if self._sleep(left if wait_limit is None else max(0.0, min(left, wait_limit))):
                        return _END
                    if time.monotonic() < self._retry_at:
                        return None
            if self._stop.is_set():
                return _END
            try:
                self._open()
            except Exception as exc:      # a camera that is still gone: try again later
                self._note_failure(exc)
                self._failed_again()
                return None
            self._opened, self._read_since_open = True, 0
            self.connected = True
            if self._failures_in_row:
                self.reconnects += 1
            self._retry_at = None
            return None
        failed = False
        try:
            image = self._grab()
        except Exception as exc:
            self._note_failure(exc)
            image, failed = None, True
        if image is not None:
            self._failures_in_row = 0
            self._read_since_open += 1
            return image
        # the read failed or the stream ended
        self._safe_release()
        self._opened = False
        self.connected = False
        if self.finite:
            if not self.loop:
                return _END
            if self._read_since_open > 0:   # end of a file: start again at once
                self.loops += 1
                return None
        if not failed:
            self._note_failure(None)
        self._failed_again()
        return None

    def _failed_again(self):
        self._failures_in_row += 1
        self._retry_at = time.monotonic() + min(
            self.backoff_max, self.backoff_initial * (2 ** min(self._failures_in_row - 1, 30)))

    def _sleep(self, delay):
        """Wait ``delay`` seconds (True when stopped), keeping the heartbeat fresh."""
        end = time.monotonic() + delay
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return self._stop.is_set()
            if self._stop.wait(min(left, 1.0)):
                return True
            self.heartbeat = time.monotonic()

    def _note_failure(self, exc):
        self.failures += 1
        if exc is not None:
            self.last_error = str(exc) if isinstance(exc, UserError) else "%s: %s" % (type(exc).__name__, exc)
        else:
            self.last_error = "read failed on %s" % self.describe()

    def _safe_release(self):
        try:
            self._release()
        except Exception:
            pass


class Pacer(object):
    """Sleeps so frames come out at ``fps`` (0: as fast as possible); restarts after a stall."""

    def __init__(self, fps, stop_event):
        self.period = 1.0 / fps if fps and fps > 0 else 0.0
        self.stop_event = stop_event
        self.next_t = None

    def wait(self):
        if not self.period:
            return
        now = time.monotonic()
        if self.next_t is None or now - self.next_t > 1.0:
            self.next_t = now
        delay = self.next_t - now
        if delay > 0:
            self.stop_event.wait(delay)
        self.next_t += self.period


def _redact(uri):
    """rtsp://user:secret@host/... -> rtsp://user:***@host/..."""
    if "://" in uri and "@" in uri.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = uri.split("://", 1)
        auth, host = rest.split("@", 1)
        user = auth.split(":", 1)[0]
        return "%s://%s:***@%s" % (scheme, user, host)
    return uri


def parse_query(uri):
    """'scheme://path?a=1&b=x' -> ('path', {'a': '1', 'b': 'x'})."""
    rest = uri.split("://", 1)[1] if "://" in uri else uri
    if "?" not in rest:
        return rest, {}
    path, query = rest.split("?", 1)
    params = {}
    for item in query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        params[key.strip()] = value.strip()
    return path, params


def take_int(params, key, default, uri, minimum=0):
    """Pop an integer query parameter with a clear error."""
    if key not in params:
        return default
    text = params.pop(key)
    try:
        value = int(text)
    except ValueError:
        raise SourceError("%s: %s=%r is not an integer" % (uri, key, text), hint="e.g. %s=%s" % (key, default))
    if value < minimum:
        raise SourceError("%s: %s must be >= %d, got %d" % (uri, key, minimum, value), hint="fix the URI")
    return value


def no_more_params(params, uri, allowed):
    if params:
        raise SourceError("%s: unknown parameter(s) %s" % (uri, ", ".join(sorted(params))),
                          hint="this source takes: %s" % ", ".join(allowed))
