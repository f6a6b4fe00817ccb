"""The camera loop: source -> preprocess -> infer -> postprocess -> sinks, every stage timed.

    with Predictor.open("model.onnx") as predictor, open_source("csi://0") as source:
        summary = Pipeline(source, predictor, sinks=[jsonl]).run(max_frames=1000)

One frame, top to bottom (``_step``): take the newest frame from the source's grabber (stage
``capture``: the wait), ``preprocess``, ``infer``, ``postprocess``, hand the record to each sink
(``output``: never blocks, sinks queue or drop), and note ``end_to_end`` (preprocess start ->
output done) and ``frame_age`` (frame captured -> result published).

Overlap: when the runner computes on a GPU (TensorRT, or ONNX Runtime's CUDA/TensorRT providers),
a small worker reads and preprocesses frame N+1 while frame N is inferred (two buffers), so the
CPU and the GPU work at once. On a CPU-only box the stages share the same cores: overlapping them
adds hand-offs without adding compute, so the loop stays sequential ("The daemon's bound",
docs/design/measurement.md); the source's grabber thread already decodes in parallel. ``overlap="on"`` forces it.

Workers (throughput): with ``workers=N`` (N > 1), N threads each take a frame, preprocess,
infer and postprocess it, so N frames are in flight at once. On a CPU this beats one frame at a
time with N intra-op threads: a single-threaded inference neither waits at the per-layer joins of a
parallel one nor stalls when another thread takes its core, and preprocessing runs beside inference
instead of before it (bench_daemon, 2 cores: 1.1-1.4x the frames/s of one worker). Each frame
takes longer, so this suits sources where every frame counts (a video file read as fast as
possible, an image folder); a live camera keeps one worker for the lowest latency. Only runners
that accept concurrent calls take part (``runner.concurrent``: ONNX Runtime). Results are
published in the order the frames were read.

The pipeline does not start or close sinks (their owner does); it starts the source if needed and
activates the predictor's runner if it is not active yet (deactivating it again at the end).
"""

import array
import collections
import os
import queue
import threading
import time

from edgekit.errors import UserError
from edgekit.profiler.stats import percentile  # nearest rank, one definition (docs/design/measurement.md)

STAGES = ("capture", "preprocess", "infer", "postprocess", "output", "end_to_end", "frame_age")
OVERLAP_MODES = ("auto", "on", "off")
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
MAX_ERRORS_IN_ROW = 100
CHUNK_AUTO = 16                   # pipeline.chunk: auto, when the workers read the source (see pulls)
CHUNK_BYTES = 32 * 1024 * 1024    # decoded frames a worker holds at most in one chunk
CHUNK_SECONDS = 0.1               # a worker's time for one chunk at most (a stop waits for it)


def runs_on_gpu(predictor):
    """True when the runner's describe() says it computes on a GPU."""
    try:
        info = predictor.runner.describe() or {}
    except Exception:
        return False
    if info.get("device") in ("gpu", "cuda"):
        return True
    if info.get("backend") == "tensorrt":
        return True
    providers = info.get("providers") or []
    return bool(providers) and providers[0] in GPU_PROVIDERS


class Samples(object):
    """The newest ``cap`` latencies (ms) of one stage, oldest first: 8 bytes each in an array that
    grows to ``cap`` and is then overwritten in a ring (a deque of floats costs about 40 bytes a
    sample, 11 MB for the daemon's 7 stages x 50 000). One writer (frames publish one at a time)."""

    __slots__ = ("cap", "_data", "_next")

    def __init__(self, cap):
        self.cap = cap
        self._data = array.array("d")
        self._next = 0                   # the oldest sample once full

    def append(self, value):
        if len(self._data) < self.cap:
            self._data.append(value)
        else:
            self._data[self._next] = value
            self._next = (self._next + 1) % self.cap

    def __len__(self):
        return len(self._data)

    def __iter__(self):
        cut = self._next
        return iter(self._data[cut:] + self._data[:cut])


def latency_summary(samples):
    out = {}
    for stage in STAGES:
        values = sorted(samples.get(stage) or ())
        if values:
            out[stage] = dict(("p%d" % q, round(percentile(values, q), 3)) for q in (50, 90, 99))
    return out


def model_name(predictor):
    path = getattr(predictor.runner, "model_path", None)
    return os.path.basename(str(path)) if path else "model"


class PipelineError(RuntimeError):
    """Inference failed on every frame for a long run of frames: the daemon gives up (systemd restarts it)."""


class Pipeline(object):
    def __init__(self, source, predictor, sinks=(), metrics=None, device_id="edgekit", overlap="auto",
                 read_timeout=0.5, max_samples=50000, workers=1, chunk=1, analytics=None):
        from edgekit.errors import ConfigError

        if overlap not in OVERLAP_MODES:
            raise ConfigError("pipeline overlap must be one of %s, got %r" % (OVERLAP_MODES, overlap),
                              hint="auto overlaps when inference runs on a GPU")
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ConfigError("pipeline workers must be an integer >= 1, got %r" % (workers,),
                              hint="1 = one frame at a time (lowest latency); N = N frames in flight")
        if workers > 1 and overlap == "on":
            raise ConfigError("pipeline overlap: on and workers: %d do not combine" % workers,
                              hint="overlap is for GPU inference; several workers are for CPU inference")
        if workers > 1:
            check_concurrent(predictor)
        if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
            raise ConfigError("pipeline chunk must be an integer >= 1, got %r" % (chunk,),
                              hint="1 = each worker takes one frame at a time")
        self.workers = workers
        self.chunk = chunk
        self.source = source
        self.predictor = predictor
        self.sinks = list(sinks)
        self.metrics = metrics
        self.analytics = analytics          # edgekit.service.analytics.AnalyticsHook or None
        self.analytics_errors = 0
        self.device_id = device_id
        self.overlap = overlap
        self.read_timeout = read_timeout
        self._samples = dict((s, Samples(max_samples)) for s in STAGES)
        self._recent = collections.deque(maxlen=60)     # publish times, for the live fps
        self._lock = threading.Lock()
        self._pending = None
        self._applied = threading.Event()
        self._running = False
        self._prefetch = None
        self._carry = []                 # frames prepared by a stopped prefetcher, used first
        self._source_base = {"dropped": 0, "reconnects": 0}
        self._seen = {"dropped": 0, "reconnects": 0}
        self.frames = 0
        self.errors = 0
        self._errors_in_row = 0
        self.last_error = None
        self._read_lock = threading.Lock()      # workers: one reader at a time
        self._turns = _Turns()                  # workers: publish in reading order
        self._count_lock = threading.Lock()
        self._claimed = 0                       # workers: frames published or in flight
        self._frame_s = None                    # workers: a frame's preprocess + infer + postprocess, s
        self._worker_error = None
        self.ready = False
        self.last_result = None
        self.t_started = time.monotonic()
        self.t_first = self.t_last = None
        self.last_publish_monotonic = None
        self.frame_size = None          # (width, height) of the last frame
        self.heartbeat = time.monotonic()   # the loop's last iteration (for the watchdog)
        self._describe_metrics()

    # -- public ---------------------------------------------------------------------------
    @property
    def samples(self):
        """{stage: [ms, ...]} (the newest ``max_samples`` per stage)."""
        return dict((stage, list(values)) for stage, values in self._samples.items())

    @property
    def overlapping(self):
        if self.workers > 1:
            return False
        return self.overlap == "on" or (self.overlap == "auto" and runs_on_gpu(self.predictor))

    def describe_mode(self):
        """One line for the daemon's startup log: how frames flow and why (no silent choice)."""
        if self.workers > 1:
            pulling = (getattr(self.source, "pulling", False) if getattr(self.source, "started", False)
                       else pulls(self.source, self.workers))
            reading = ("each worker decodes its own next frame (no grabber thread)" if pulling
                       else "the grabber thread decodes")
            if pulling and self.chunk > 1:
                reading = ("each worker decodes its own next %d frames at a time (no grabber thread; fewer "
                           "when they would take over %g s or %d MB), then runs each stage over all of them "
                           "before the next stage, so each stage runs hot in the cache"
                           % (self.chunk, CHUNK_SECONDS, CHUNK_BYTES // (1024 * 1024)))
            return ("pipeline with %d workers: %d frames in flight, each read, preprocessed, inferred and "
                    "published in reading order; %s (throughput; each frame's latency is that of a %d-way "
                    "share of the CPU)" % (self.workers, self.workers, reading, self.workers))
        if self.overlapping:
            why = "forced by overlap: on" if self.overlap == "on" else "inference runs on the GPU"
            return "pipeline overlapped: frame N+1 read and preprocessed while N is inferred (%s)" % why
        if self.overlap == "off":
            return "pipeline sequential (overlap: off); the grabber thread decodes in parallel"
        return ("pipeline sequential: inference runs on the CPU and uses every core, so preprocessing "
                "in parallel would only take cores from it; the grabber thread decodes in parallel "
                "(overlap: on to change)")

    def run(self, max_frames=None, stop_event=None):
        """Process frames until ``max_frames`` (total), ``stop_event``, or the end of a finite source.
        Returns ``summary()``."""
        stop_event = stop_event or threading.Event()
        start_source(self.source, self.workers)
        activated = False
        if not getattr(self.predictor.runner, "is_active", True):
            self.predictor.__enter__()
            activated = True
        self._running = True
        try:
            if self.workers > 1:
                self._run_workers(max_frames, stop_event)
            while self.workers == 1 and not stop_event.is_set():
                self.heartbeat = time.monotonic()
                self._apply_pending()
                if max_frames and self.frames >= max_frames:
                    break
                item = self._next_item()
                if item is None:
                    if self.source.eof and (self._prefetch is None or self._prefetch.finished()):
                        break
                    if self.metrics is not None:
                        self.metrics.set("inference_fps", round(self.live_fps(), 3))
                    continue
                self._step(item)
        finally:
            self._running = False
            self._stop_prefetch()
            self._apply_pending()
            if activated:
                self.predictor.__exit__(None, None, None)
        return self.summary()

    def replace(self, predictor=None, source=None, sinks=None, timeout=10.0):
        """Swap parts between two frames (SIGHUP reload). Returns the old (predictor, source, sinks)
        for the caller to close once swapped."""
        self._applied.clear()
        with self._lock:
            self._pending = {"predictor": predictor, "source": source, "sinks": sinks}
            old = (self.predictor, self.source, self.sinks)
        if self._running:
            self._applied.wait(timeout)
        else:
            self._apply_pending()
        return old

    def summary(self):
        span = (self.t_last - self.t_first) if self.frames > 1 else 0.0
        stats = self._source_counts()
        return {"frames": self.frames, "dropped": stats["dropped"], "reconnects": stats["reconnects"],
                "fps": round((self.frames - 1) / span, 3) if span > 0 else 0.0,
                "errors": self.errors, "latency_ms": latency_summary(self._samples),
                "overlap": self.overlapping, "workers": self.workers, "chunk": self._chunk(),
                "source": self.source.describe(),
                "model": model_name(self.predictor)}

    def status(self):
        stats = self._source_counts()
        now = time.monotonic()
        since = now - self.last_publish_monotonic if self.last_publish_monotonic else None
        info = {}
        try:
            info = self.predictor.runner.describe() or {}
        except Exception:
            pass
        return {"ready": self.ready, "model": model_name(self.predictor),
                "precision": getattr(self.predictor.meta, "precision", None),
                "backend": info.get("backend"), "frames": self.frames, "fps": round(self.live_fps(), 2),
                "dropped": stats["dropped"], "reconnects": stats["reconnects"],
                "uptime_s": round(now - self.t_started, 1), "source": self.source.describe(),
                "last_error": self.last_error or self.source.last_error, "errors": self.errors,
                "seconds_since_last_frame": round(since, 3) if since is not None else None,
                "source_connected": self.source.connected, "eof": self.source.eof, "workers": self.workers,
                "chunk": self._chunk(),
                "reading": "workers" if getattr(self.source, "pulling", False) else "grabber"}

    def live_fps(self):
        """Frames per second over the last 60 frames; 0 once frames have stopped coming."""
        recent = list(self._recent)
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        period = (recent[-1] - recent[0]) / (len(recent) - 1)
        if time.perf_counter() - recent[-1] > 2.0 + 3 * period:
            return 0.0
        return 1.0 / period

    # -- one frame ------------------------------------------------------------------------
    def _prepare(self):
        """Read the newest frame and preprocess it: (frame, feed, info, capture_ms, t_pre_start, pre_ms)."""
        frame, t0, t1 = self._read()
        return None if frame is None else self._preprocess(frame, t0, t1)

    def _read(self):
        """(the newest frame or None, time the wait began, time it ended)."""
        t0 = time.perf_counter()
        frame = self.source.read(timeout=self.read_timeout)
        return frame, t0, time.perf_counter()

    def _preprocess(self, frame, t0, t1, ticket=None):
        """The prepared item, or None when preprocessing failed (counted, in reading order with workers).
        ``end_to_end`` starts when the frame was read (t1); ``preprocess`` times the preprocessing
        alone (in a chunk, the reads of the chunk's later frames come in between)."""
        t_start = time.perf_counter()
        try:
            feed, info = self.predictor.preprocess(frame.image)
        except Exception as exc:
            self._turns.deliver(ticket, lambda error=exc: self._error(error))
            return None
        return (frame, feed, info, (t1 - t0) * 1000.0, t1, (time.perf_counter() - t_start) * 1000.0)

    def _next_item(self):
        if self._carry:
            return self._carry.pop(0)
        if not self.overlapping:
            return self._prepare()
        if self._prefetch is None:
            self._prefetch = _Prefetcher(self._prepare, self.source)
        return self._prefetch.get(self.read_timeout)

    def _step(self, item, ticket=None):
        """Infer and postprocess one prepared frame, then publish it. With workers, ``ticket`` is
        the frame's place in reading order: a result that overtook an earlier frame waits in the
        reorder buffer, and whichever worker completes the sequence publishes it (nobody blocks)."""
        inferred = self._infer(item, ticket)
        return inferred is not None and self._finish(inferred, ticket)

    def _infer(self, item, ticket=None):
        """(item, outputs, inference ms), or None when inference failed (counted, in reading order)."""
        try:
            t2 = time.perf_counter()
            outputs = self.predictor.infer(item[1])
            return item, outputs, (time.perf_counter() - t2) * 1000.0
        except Exception as exc:
            self._turns.deliver(ticket, lambda error=exc: self._error(error))
            return None

    def _finish(self, inferred, ticket=None):
        """Postprocess an inferred frame and hand it to the reorder buffer; False when that failed."""
        (frame, feed, info, capture_ms, t_pre, pre_ms), outputs, infer_ms = inferred
        try:
            t3 = time.perf_counter()
            result = self.predictor.postprocess(outputs, info)
            t4 = time.perf_counter()
        except Exception as exc:
            self._turns.deliver(ticket, lambda error=exc: self._error(error))
            return False
        ms = {"capture": capture_ms, "preprocess": pre_ms, "infer": infer_ms, "postprocess": (t4 - t3) * 1000.0}
        self._frame_s = (pre_ms + infer_ms) / 1000.0 + (t4 - t3)
        self._turns.deliver(ticket, lambda: self._publish(frame, result, ms, t_pre))
        return True

    def _publish(self, frame, result, ms, t_pre):
        t4 = time.perf_counter()
        ms["frame_age"] = (t4 - frame.t_capture) * 1000.0
        self._errors_in_row = 0
        record = {"device": self.device_id, "seq": frame.seq, "source": self.source.describe(),
                  "model": model_name(self.predictor), "ts_capture": round(frame.ts_capture, 6),
                  "ts_published": round(time.time(), 6), "result": result,
                  "latency_ms": dict((k, round(v, 3)) for k, v in ms.items())}
        self.frame_size = (frame.image.shape[1], frame.image.shape[0])
        if self.analytics is not None:      # here the frames come in reading order: the tracker needs it
            self._analyse(record, frame.image)
        for sink in self.sinks:
            sink.submit(record, frame.image)
        t5 = time.perf_counter()
        ms["output"] = (t5 - t4) * 1000.0
        ms["end_to_end"] = (t5 - t_pre) * 1000.0
        self._account(ms, t5, result)

    def _analyse(self, record, image):
        """Tracks, rules and events for this frame; a fault is counted and the frame still published.
        A rule that does not fit the frame (pixels outside it, known at the first frame) stops the
        daemon: a ConfigError, exit 2."""
        try:
            self.analytics.process(record, image)
        except UserError:
            raise
        except Exception as exc:
            self.analytics_errors += 1
            self.last_error = "analytics: %s: %s" % (type(exc).__name__, exc)
            if self.metrics is not None:
                self.metrics.inc("analytics_errors_total")

    # -- several workers ------------------------------------------------------------------
    def _run_workers(self, max_frames, stop_event):
        """Start the workers; between groups of workers apply a pending swap (SIGHUP)."""
        while not stop_event.is_set():
            group = threading.Event()
            self._worker_error = None
            self._claimed = self.frames
            self._turns.reset()
            threads = [threading.Thread(target=self._worker, args=(group, stop_event, max_frames),
                                        name="infer-%d" % (i + 1)) for i in range(self.workers)]
            for thread in threads:
                thread.daemon = True
                thread.start()
            while any(t.is_alive() for t in threads):
                if stop_event.is_set() or self._pending is not None:
                    group.set()
                for thread in threads:
                    thread.join(0.05)
            if self._worker_error is not None:
                raise self._worker_error
            if self._pending is None:
                return
            self._apply_pending()

    def _chunk(self):
        """Frames each worker takes at a time: ``chunk`` when the workers read the source, else 1."""
        return self.chunk if self.workers > 1 and getattr(self.source, "pulling", False) else 1

    def _worker(self, group, stop_event, max_frames):
        chunk = self._chunk()
        try:
            while not group.is_set() and not stop_event.is_set():
                self.heartbeat = time.monotonic()
                taken = self._take(chunk, max_frames)
                if taken is None:
                    return
                if not taken:
                    if self.metrics is not None:
                        self.metrics.set("inference_fps", round(self.live_fps(), 3))
                    continue
                published = 0
                try:
                    published = self._run_chunk(taken)
                finally:
                    for _, _, _, ticket in taken:
                        self._turns.deliver(ticket, None)  # no-op unless the frame was not delivered
                    if published < len(taken):             # a failed frame does not count towards max_frames
                        with self._count_lock:
                            self._claimed -= len(taken) - published
        except BaseException as exc:           # the first one is raised again by run() on the caller's thread
            if self._worker_error is None:
                self._worker_error = exc
            group.set()

    def _take(self, chunk, max_frames):
        """Up to ``chunk`` frames in reading order, each with its ticket: [(frame, t0, t1, ticket)];
        [] when no frame came within the read timeout, None when the worker is done (end of a finite
        source, or ``max_frames`` claimed)."""
        taken = []
        with self._read_lock:
            while len(taken) < chunk:
                if max_frames and self._claimed >= max_frames:
                    break
                frame, t0, t1 = self._read()
                if frame is None:
                    break
                if not taken:
                    chunk = self._chunk_limit(chunk, frame.image.nbytes)
                taken.append((frame, t0, t1, self._turns.take()))
                with self._count_lock:
                    self._claimed += 1
            if not taken and (self.source.eof or (max_frames and self._claimed >= max_frames)):
                return None
        return taken

    def _chunk_limit(self, chunk, frame_bytes):
        """``chunk`` cut to what fits in CHUNK_BYTES of decoded frames and in CHUNK_SECONDS of a
        worker's time (preprocess + infer + postprocess of the last frame; one frame until the first
        is timed), so a stop or a swap, which let each worker finish its chunk, wait that long at most."""
        if self._frame_s is None:
            return 1
        by_time = int(CHUNK_SECONDS / max(self._frame_s, 1e-6))
        return max(1, min(chunk, CHUNK_BYTES // max(1, frame_bytes), by_time))

    def _run_chunk(self, taken):
        """Each stage over every frame of the chunk before the next stage, so each runs hot in the
        cache; returns how many frames were published."""
        items = [(self._preprocess(frame, t0, t1, ticket), ticket) for frame, t0, t1, ticket in taken]
        inferred = [(self._infer(item, ticket), ticket) for item, ticket in items if item is not None]
        return sum(1 for done, ticket in inferred if done is not None and self._finish(done, ticket))

    def _account(self, ms, now, result):
        for stage, value in ms.items():
            self._samples[stage].append(value)
        self.frames += 1
        self.ready = True
        self.last_result = result
        self.t_first = self.t_first or now
        self.t_last = now
        self.last_publish_monotonic = time.monotonic()
        self._recent.append(now)
        m = self.metrics
        if m is None:
            return
        m.inc("frames_total")
        for stage, value in ms.items():
            m.observe("stage_seconds", value / 1000.0, stage=stage)
        stats = self._source_counts()
        for key, name in (("dropped", "frames_dropped_total"), ("reconnects", "source_reconnects_total")):
            if stats[key] > self._seen[key]:
                m.inc(name, stats[key] - self._seen[key])
                self._seen[key] = stats[key]
        m.set("inference_fps", round(self.live_fps(), 3))

    def _error(self, exc):
        self.errors += 1
        self._errors_in_row += 1
        self.last_error = "%s: %s" % (type(exc).__name__, exc)
        if self.metrics is not None:
            self.metrics.inc("errors_total")
        if self._errors_in_row >= MAX_ERRORS_IN_ROW:
            raise PipelineError("%d frames in a row failed; last: %s" % (self._errors_in_row, self.last_error))

    # -- bookkeeping ----------------------------------------------------------------------
    def _source_counts(self):
        stats = self.source.stats()
        return {"dropped": self._source_base["dropped"] + stats.get("dropped", 0),
                "reconnects": self._source_base["reconnects"] + stats.get("reconnects", 0)}

    def _apply_pending(self):
        with self._lock:
            pending, self._pending = self._pending, None
        if not pending:
            return
        self._stop_prefetch(keep=False)
        self._carry = []
        if pending["predictor"] is not None:
            self.predictor = pending["predictor"]
        if pending["source"] is not None:
            old = self.source.stats()
            for key in self._source_base:
                self._source_base[key] += old.get(key, 0)
            self.source = pending["source"]
            start_source(self.source, self.workers)
        if pending["sinks"] is not None:
            self.sinks = list(pending["sinks"])
        self._applied.set()

    def _stop_prefetch(self, keep=True):
        if self._prefetch is not None:
            left = self._prefetch.close()
            if keep:
                self._carry.extend(left)
            self._prefetch = None

    def _describe_metrics(self):
        m = self.metrics
        if m is None:
            return
        m.describe("frames_total", "counter", "Frames processed (inferred and published).")
        m.describe("frames_dropped_total", "counter", "Frames captured but replaced by a newer one before use.")
        m.describe("source_reconnects_total", "counter", "Times the source came back after a failure.")
        m.describe("stage_seconds", "histogram", "Time per pipeline stage (frame_age: capture to publication).")
        m.describe("inference_fps", "gauge", "Frames per second over the last 60 frames.")
        m.describe("errors_total", "counter", "Frames whose preprocessing or inference failed.")
        m.inc("frames_total", 0)
        m.inc("frames_dropped_total", 0)
        m.inc("source_reconnects_total", 0)
        m.set("inference_fps", 0.0)


def pulls(source, workers):
    """Whether the workers capture frames themselves (``source.start(pull=True)``): with several
    workers on a lossless source, each worker decodes the frame it goes on to infer, under the read
    lock, instead of a grabber thread decoding it and handing it over. Every frame counts either way;
    the hand-over cost a grabber thread, a wake-up and a colder frame per frame (mobilenet_v2 on 2
    cores, side by side in one process: 1.047x the frames/s without it). A live source keeps its
    grabber, which keeps only the newest frame."""
    return workers > 1 and bool(getattr(source, "lossless", False))


def start_source(source, workers):
    """Start ``source`` (nothing if it runs already), in pull mode when ``pulls``."""
    if pulls(source, workers):
        return source.start(pull=True)
    return source.start()


def check_concurrent(predictor):
    """Several workers need a runner that accepts calls from several threads at once."""
    if not getattr(predictor.runner, "concurrent", False):
        from edgekit.errors import ConfigError

        raise ConfigError("the %s runner infers one frame at a time; pipeline workers must be 1"
                          % getattr(predictor.runner, "name", "model's"),
                          hint="use workers: 1 (or auto), or the onnxruntime backend")


class _Turns(object):
    """A reorder buffer: tickets in reading order; ``deliver(ticket, publish)`` runs ``publish`` once
    every earlier ticket is published, on whichever thread completes the sequence, one at a time.
    ``deliver(None, publish)`` publishes at once (one worker); ``deliver(ticket, None)`` only marks
    a ticket done if it was never delivered (a worker that failed in between)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self._next_ticket = self._next_turn = 0
            self._ready = {}                 # delivered, waiting for an earlier ticket
            self._publishing = False

    def take(self):
        with self._lock:
            ticket, self._next_ticket = self._next_ticket, self._next_ticket + 1
            return ticket

    def deliver(self, ticket, publish):
        if ticket is None:
            publish()
            return
        with self._lock:
            if ticket in self._ready or ticket < self._next_turn:      # settled already
                return
            self._ready[ticket] = publish
            if self._publishing:             # that thread publishes this one too, in order
                return
            self._publishing = True
        while True:
            with self._lock:
                if self._next_turn not in self._ready:
                    self._publishing = False
                    return
                publish = self._ready.pop(self._next_turn)
                self._next_turn += 1
            if publish is not None:
                try:
                    publish()
                except BaseException:
                    with self._lock:
                        self._publishing = False
                    raise


_DONE = object()


class _Prefetcher(object):
    """Two buffers: while the loop infers frame N, this worker reads and preprocesses frame N+1.
    It starts on N+1 only when the loop has taken N (the slot), so a prepared frame never waits
    behind another and frame age stays one inference at most."""

    def __init__(self, prepare, source):
        self._prepare = prepare
        self._source = source
        self._slot = threading.Semaphore(1)
        self._items = queue.Queue()
        self._stop = threading.Event()
        self.done = False
        self.error = None
        self._thread = threading.Thread(target=self._run, name="prefetch")
        self._thread.daemon = True
        self._thread.start()

    def _run(self):
        try:
            while not self._stop.is_set():
                if not self._slot.acquire(timeout=0.1):
                    continue
                item = None
                while item is None and not self._stop.is_set() and not self._source.eof:
                    item = self._prepare()
                if item is None:
                    break
                self._items.put(item)
        except Exception as exc:      # handed to the loop's thread by get()
            self.error = exc
        self.done = True
        self._items.put(_DONE)

    def finished(self):
        return self.done and self._items.qsize() <= 1      # nothing left but the end marker

    def get(self, timeout):
        if self.error is not None:
            raise self.error
        try:
            item = self._items.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _DONE:
            self._items.put(_DONE)
            return None
        self._slot.release()
        return item

    def close(self):
        """Stop the worker; returns the frames it had prepared and nobody took."""
        self._stop.set()
        self._thread.join(2.0)
        left = []
        while True:
            try:
                item = self._items.get_nowait()
            except queue.Empty:
                return left
            if item is not _DONE:
                left.append(item)
