"""The Sink protocol and a bounded, threaded base.

A sink receives ``submit(record, frame=None)`` from the inference loop. ``submit`` never blocks:
when the queue is full the item is dropped and counted. A worker thread calls ``handle``.

``record`` (a dict, JSON-serialisable) has at least:
  device, seq, source, model, ts_capture, ts_published (unix seconds), result ({task, top|detections}),
  latency_ms ({stage: ms}); ``frame`` is the BGR source frame (numpy) or None.
"""

import threading

import queue


class Sink(object):
    """Minimal protocol: start(), submit(record, frame=None) -> bool, close(timeout), stats()."""

    name = "sink"

    def start(self):
        pass

    def submit(self, record, frame=None):
        raise NotImplementedError

    def close(self, timeout=2.0):
        pass

    def stats(self):
        return {}


class QueuedSink(Sink):
    """Bounded queue + one worker thread. Subclasses implement ``handle(record, frame)`` and may
    override ``on_close`` (called on the worker thread after the queue drains)."""

    wants_frames = False

    def __init__(self, maxsize=256, metrics=None):
        self._queue = queue.Queue(maxsize=maxsize)
        self._thread = None
        self._stop = threading.Event()
        self.metrics = metrics
        self.submitted = 0
        self.dropped = 0
        self.handled = 0
        self.errors = 0
        self.last_error = None

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sink-%s" % self.name)
            self._thread.daemon = True
            self._thread.start()
        return self

    def submit(self, record, frame=None):
        try:
            self._queue.put_nowait((record, frame if self.wants_frames else None))
        except queue.Full:
            self.dropped += 1
            if self.metrics is not None:
                self.metrics.inc("sink_dropped_total", sink=self.name)
            return False
        self.submitted += 1
        return True

    def _run(self):
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    break
                self.on_idle()
                continue
            if item is None:
                break
            try:
                self.handle(*item)
                self.handled += 1
            except Exception as exc:  # a sink fault is counted, never fatal to inference
                self.errors += 1
                self.last_error = "%s: %s" % (type(exc).__name__, exc)
                if self.metrics is not None:
                    self.metrics.inc("sink_errors_total", sink=self.name)
        try:
            self.on_close()
        except Exception as exc:
            self.last_error = "%s: %s" % (type(exc).__name__, exc)

    def handle(self, record, frame):
        raise NotImplementedError

    def on_close(self):
        pass

    def on_idle(self):
        """Called on the worker thread when nothing came for 0.1 s (periodic upkeep)."""

    def close(self, timeout=2.0):
        """Drain what is queued (within ``timeout``), then stop the worker."""
        self._stop.set()
        if self._thread is not None:
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                pass
            self._thread.join(timeout)

    def stats(self):
        return {"submitted": self.submitted, "dropped": self.dropped, "handled": self.handled,
                "errors": self.errors, "queued": self._queue.qsize(), "last_error": self.last_error}
