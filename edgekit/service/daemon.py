"""The service around the pipeline: build it from the config, talk to systemd, handle signals.

    daemon = Daemon(load_config("serve.yaml", overrides), config_path="serve.yaml")
    exit_code = daemon.run()

- systemd ``Type=notify`` without a dependency: datagrams to ``$NOTIFY_SOCKET`` (``@name`` is the
  abstract namespace). ``READY=1`` after the first good inference, ``WATCHDOG=1`` every
  ``WATCHDOG_USEC``/2 while frames flow - or while the source reconnects to a camera that went
  away (see ``healthy``): a hung camera read, a hung inference, or a stream that stays open but
  delivers nothing stops the petting and systemd restarts the service. ``STATUS=`` a line of live
  figures, ``RELOADING=1`` / ``STOPPING=1``.
- SIGTERM / SIGINT: stop taking frames, drain the sinks, write the summary, exit 0, within 2 s.
- SIGHUP: reload the config file and the model while the old model keeps serving; swap between two
  frames. A reload that fails (bad config, missing or corrupt model) keeps everything as it was and
  says so.
The pipeline runs on a worker thread; the main thread only waits, handles the flags the signal
handlers set, and pets the watchdog.
"""

import collections
import contextlib
import os
import signal
import socket
import threading
import time

from edgekit.errors import UserError
from edgekit.progress import say, warn
from edgekit.service import config as config_mod

DRAIN_SECONDS = 2.0        # SIGTERM -> exit
TICK = 0.2
STATUS_SECONDS = 5.0


class Notifier(object):
    """sd_notify(3) in a few lines. Does nothing when $NOTIFY_SOCKET is unset."""

    def __init__(self, environ=None):
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or ""
        if address.startswith("@"):
            address = "\0" + address[1:]
        self.address = address or None
        self.watchdog_interval = None
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        if usec and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1e6 / 2.0
        self.sent = collections.deque(maxlen=100)     # the last messages, for tests and debugging

    @property
    def enabled(self):
        return self.address is not None

    def notify(self, *fields):
        message = "\n".join(fields)
        self.sent.append(message)
        if not self.address:
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.connect(self.address)
            sock.sendall(message.encode("utf-8"))
            return True
        except OSError:
            return False
        finally:
            sock.close()


def load_predictor(cfg):
    """The model's metadata and runner, not activated yet: (predictor, backend, reason)."""
    from edgekit.predictor import Predictor
    from edgekit.runners import choose_backend

    model = cfg["model"]
    path = config_mod.check_model_path(model["path"])
    backend, reason = choose_backend(model["backend"], path)
    if backend != "onnxruntime" and (model["threads"] is not None or model["spinning"] is not None):
        warn("model.threads / model.spinning apply to onnxruntime only; ignored for %s" % backend)
    meta = None
    if model["meta"]:
        from edgekit.meta import load_meta_yaml

        meta = load_meta_yaml(model["meta"], model=path)
    predictor = Predictor.open(path, backend=backend, meta=meta)
    predictor.set_class_agnostic(model["class_agnostic"], tracking=bool(cfg.get("analytics")))
    return predictor, backend, reason


def ort_options(model, workers=1, cores=None):
    """The daemon's ONNX Runtime settings. Threads: the user's, else one per core shared by the
    workers (one worker: ONNX Runtime's default, one per physical core). Spinning: on while an
    inference runs and stopped as it returns (``session.force_spinning_stop``), so the threads
    do not sleep and wake at every layer, nor burn the cores the grabber and the outputs need
    between frames (bench_daemon measures it against spinning off)."""
    cores = cores or os.cpu_count() or 1
    options = {}
    if model["threads"] is not None:
        options["threads"] = model["threads"]
    elif workers > 1:
        options["threads"] = max(1, cores // workers)
    spinning = True if model["spinning"] is None else model["spinning"]
    options["spinning"] = spinning
    if spinning:
        options["session_config"] = {"session.force_spinning_stop": "1"}
    return options


def resolve_workers(setting, backend, source, cores=None):
    """(frames in flight, why) for pipeline.workers: a number, or auto - one per core (at most 4)
    when every frame of the source counts and the runner takes concurrent calls on the CPU, else 1."""
    if setting != "auto":
        return int(setting), "pipeline.workers: %d" % int(setting)
    cores = cores or os.cpu_count() or 1
    if backend != "onnxruntime":
        return 1, "auto: the %s runner takes one frame at a time" % backend
    if not source.lossless:
        return 1, "auto: a live source, whose newest frame is wanted soonest"
    if cores < 2:
        return 1, "auto: one core"
    return min(cores, 4), "auto: every frame of the source counts and inference runs on the CPU"


def resolve_chunk(setting, workers, source):
    """Frames each worker takes at a time for pipeline.chunk: a number, or auto - CHUNK_AUTO when the
    workers decode their own frames (``pipeline.pulls``), else 1. A number above 1 needs them to."""
    from edgekit.service.pipeline import CHUNK_AUTO, pulls

    reads = pulls(source, workers)
    if setting == "auto":
        return CHUNK_AUTO if reads else 1
    if int(setting) > 1 and not reads:
        raise config_mod.ConfigError(
            "pipeline.chunk: %d needs several workers that read a lossless source themselves" % int(setting),
            hint="use it with a file read with --fast or an image folder and workers >= 2, or set chunk: auto")
    return int(setting)


def configure_runner(predictor, backend, model, workers):
    """Before the model loads: refuse ``workers`` > 1 with a runner that infers one frame at a time,
    and give ONNX Runtime the daemon's threads and spinning for ``workers`` (``model``: the config's
    model section, or at least its threads and spinning)."""
    if workers > 1:
        from edgekit.service.pipeline import check_concurrent

        check_concurrent(predictor)
    if backend == "onnxruntime":
        predictor.runner.options.update(ort_options(model, workers))


def activate_predictor(predictor, cfg, backend, reason, workers=1, log=say):
    """Set the runner's options for ``workers``, load the model, log what runs how. A runner that
    takes one frame at a time is refused before the model loads when ``workers`` > 1."""
    configure_runner(predictor, backend, cfg["model"], workers)
    predictor.__enter__()
    try:
        text = describe_model(predictor, predictor.runner.model_path, backend, reason)
        if backend == "onnxruntime":
            options = predictor.runner.options
            threads = options.get("threads")
            text += ", intra-op threads %s, spinning %s" % (
                threads or "default (ONNX Runtime: one per physical core)",
                "during inference" if options["spinning"] else "off")
        log(text)
    except Exception:
        predictor.__exit__(None, None, None)
        raise
    return predictor


def open_predictor(cfg, log=say, workers=1):
    """Load and activate the model; logs the backend chosen and what changes (precision, shape)."""
    predictor, backend, reason = load_predictor(cfg)
    return activate_predictor(predictor, cfg, backend, reason, workers, log)


def describe_tls(tls):
    if tls is None:
        return " (plain TCP)"
    parts = ["CA %s" % tls["ca_certs"] if tls.get("ca_certs") else "system CAs"]
    if tls.get("certfile"):
        parts.append("client certificate %s" % tls["certfile"])
    if tls.get("insecure"):
        parts.append("host name NOT checked")
    return " over TLS (%s)" % ", ".join(parts)


def describe_model(predictor, path, backend, reason):
    meta = predictor.meta
    info = predictor.runner.describe() or {}
    spec = predictor.runner.input_specs()[0]
    text = "model %s: %s, %d labels, input %s %s, %s; backend %s (%s)" % (
        os.path.basename(path), meta.task, len(meta.labels), spec.name,
        "x".join(str(d) for d in meta.input["shape"]), meta.precision, backend, reason)
    if info.get("providers"):
        text += ", providers %s" % ",".join(info["providers"])
    runs_as = info.get("precision")
    if runs_as and runs_as != meta.precision:
        text += "; precision changes: the model is %s, %s runs it as %s" % (meta.precision, backend, runs_as)
    if spec.is_dynamic:
        text += "; the model's input is dynamic (%s): frames are fed as %s" % (
            spec.shape, "x".join(str(d) for d in meta.input["shape"]))
    if meta.source.get("recognised"):
        text += "; no edgekit metadata: decoder %s recognised from %s" % (meta.decoder["type"], meta.source["recognised"])
    if getattr(predictor, "class_agnostic", False):
        text += "; one box per object across classes (model.class_agnostic)"
    return text


def _flat(times, prefix=""):
    """{"outputs": {"mqtt": 0.3}} -> {"outputs.mqtt": 0.3}"""
    out = {}
    for key, value in times.items():
        if isinstance(value, dict):
            out.update(_flat(value, prefix + key + "."))
        else:
            out[prefix + key] = value
    return out


def _rounded(times):
    return dict((k, _rounded(v) if isinstance(v, dict) else round(v, 3)) for k, v in times.items())


class Daemon(object):
    def __init__(self, cfg, config_path=None, overrides=None, notifier=None, log=say):
        self.cfg = cfg
        self.config_path = config_path
        self.overrides = overrides or {}
        self.notifier = notifier or Notifier()
        self.log = log
        self.metrics = None
        self.pipeline = None
        self.http = None
        self.mqtt = None
        self.jsonl = None
        self.events_jsonl = None
        self.snapshots = None
        self.analytics = None
        self.stop_event = threading.Event()
        self._hup = threading.Event()
        self._thread = None
        self._failure = None
        self._announced_ready = False
        self._said_shape = False
        self.reloads = 0
        self.reload_failures = 0
        self.last_reload_error = None
        self.t_start = time.monotonic()

    # -- building ---------------------------------------------------------------------------
    def build(self):
        """Outputs first (a bad HTTP bind or path fails before the model loads), then model, source."""
        from edgekit.service.metrics import Metrics
        from edgekit.service.pipeline import Pipeline

        cfg = self.cfg
        self.metrics = Metrics()
        sinks = self._build_sinks(cfg)
        source = None
        try:
            predictor, backend, reason = load_predictor(cfg)
            self.analytics = self._build_analytics(cfg, predictor)
            source = self._build_source(cfg, predictor)
            workers, why = resolve_workers(cfg["pipeline"]["workers"], backend, source)
            chunk = resolve_chunk(cfg["pipeline"]["chunk"], workers, source)
            activate_predictor(predictor, cfg, backend, reason, workers, self.log)
            try:
                self._start_source(source, workers)
                self.pipeline = Pipeline(source, predictor, sinks=sinks, metrics=self.metrics,
                                         device_id=cfg["device_id"], overlap=cfg["pipeline"]["overlap"],
                                         read_timeout=0.5, workers=workers, chunk=chunk, analytics=self.analytics)
            except BaseException:
                predictor.__exit__(None, None, None)
                raise
        except BaseException:
            if source is not None:
                source.close(timeout=0.5)
            self._close_sinks(sinks, 0.5)
            raise
        self.log("%s (%s)" % (self.pipeline.describe_mode(), why))
        self._label_http(predictor)
        self.metrics.describe("reloads_total", "counter", "SIGHUP reloads, by result.")
        return self

    def _build_analytics(self, cfg, predictor):
        """The analytics hook (tracker, rules, event outputs) once the model's labels are known; None
        without an ``analytics`` section. A bad rule is a ConfigError naming its key."""
        from edgekit.service.analytics import AnalyticsHook, build_config

        config = build_config(config_mod.load_analytics(cfg), predictor.meta.labels, predictor.meta.task)
        if self.http is not None:
            self.http.analytics_pending = False
        if config is None:
            if self.events_jsonl is not None or self.snapshots is not None:
                warn("outputs.events / outputs.snapshots are set but there is no analytics section: no events")
            return None
        sinks = [self.events_jsonl] if self.events_jsonl is not None else []
        hook = AnalyticsHook(config, camera=cfg["device_id"], labels=predictor.meta.labels, metrics=self.metrics,
                             event_sinks=sinks, mqtt=self.mqtt, snapshots=self.snapshots)
        if self.mqtt is not None and cfg["outputs"]["mqtt"]["discovery"]:
            from edgekit import __version__

            self.mqtt.set_discovery(hook.discovery(), device_name="edgekit %s" % cfg["device_id"],
                                    model=os.path.basename(cfg["model"]["path"]), version=__version__)
        if self.http is not None:
            self.http.analytics = hook
        self.log("analytics: %s tracker, %d lines, %d zones%s" % (
            config.tracker, len(config.lines), len(config.zones),
            "; Home Assistant discovery under %s/" % self.mqtt.discovery_prefix
            if self.mqtt is not None and cfg["outputs"]["mqtt"]["discovery"] else ""))
        return hook

    def _build_source(self, cfg, predictor):
        """The configured source, not started yet (``_start_source`` starts it once the worker count is known)."""
        from edgekit.sources import open_source

        src = cfg["source"]
        source = open_source(src["uri"], loop=src["loop"], realtime=src["realtime"], fps=src["fps"],
                             decoder=src["decoder"], read_timeout=src["read_timeout_s"],
                             backoff_initial=src["reconnect_initial_s"], backoff_max=src["reconnect_max_s"],
                             model_hw=tuple(predictor.meta.input_hw))
        return source

    def _start_source(self, source, workers):
        from edgekit.service.pipeline import start_source

        start_source(source, workers)
        self.log("source %s%s" % (source.describe(), " (read by the workers)" if source.pulling else ""))

    def _build_jsonl(self, cfg):
        from edgekit.service.sinks.jsonl import JsonlSink

        out = cfg["outputs"]["jsonl"]
        if not out["path"]:
            return None
        path = config_mod.check_output_path(out["path"], "outputs.jsonl.path")
        sink = JsonlSink(path, max_bytes=out["max_bytes"], backups=out["backups"], queue=out["queue"],
                         metrics=self.metrics).start()
        if sink.repaired_bytes:
            warn("%s ended in a partial line (%d bytes, from a power cut?): cut off" % (path, sink.repaired_bytes))
        self.log("results -> %s (rotating at %d bytes, %d backups)" % (path, out["max_bytes"], out["backups"]))
        return sink

    def _build_events(self, cfg):
        """The events JSON Lines file and the snapshot writer (outputs of the analytics)."""
        from edgekit.service.analytics import SnapshotWriter
        from edgekit.service.sinks.jsonl import JsonlSink

        out = cfg["outputs"]["events"]
        if out["path"]:
            path = config_mod.check_output_path(out["path"], "outputs.events.path")
            sink = JsonlSink(path, max_bytes=out["max_bytes"], backups=out["backups"], queue=out["queue"],
                             metrics=self.metrics)
            sink.name = "events"
            self.events_jsonl = sink.start()
            self.log("events -> %s (rotating at %d bytes, %d backups)" % (path, out["max_bytes"], out["backups"]))
        snap = cfg["outputs"]["snapshots"]
        if snap["dir"]:
            self.snapshots = SnapshotWriter(snap["dir"], max_mb=snap["max_mb"], max_age_s=snap["max_age_s"],
                                            queue_size=snap["queue"], jpeg_quality=snap["jpeg_quality"],
                                            metrics=self.metrics).start()
            self.log("snapshots -> %s (at most %g MB, %g s old)" % (self.snapshots.directory, snap["max_mb"],
                                                                   snap["max_age_s"]))

    def _build_sinks(self, cfg):
        sinks = []
        try:
            self.jsonl = self._build_jsonl(cfg)
            if self.jsonl is not None:
                sinks.append(self.jsonl)
            self._build_events(cfg)
            for extra in (self.events_jsonl, self.snapshots):
                if extra is not None:
                    sinks.append(_Extra(extra))
            http = cfg["outputs"]["http"]
            if http["listen"]:
                self.http = self._build_http(http)
                self.http.analytics_pending = cfg["analytics"] is not None
                sinks.append(self.http)
            mqtt = cfg["outputs"]["mqtt"]
            if mqtt["host"]:
                self.mqtt = self._build_mqtt(cfg, mqtt)
                sinks.append(self.mqtt)
        except BaseException:
            self._close_sinks(sinks, 0.5)
            raise
        if not sinks:
            warn("no outputs: results are only counted (add --jsonl FILE, --http or --mqtt HOST)")
        return sinks

    def _build_http(self, http):
        from edgekit.service.sinks.http import HttpServer

        host, port = config_mod.parse_host_port(http["listen"], "outputs.http.listen", 8080)
        token = None
        if http["token_file"]:
            token, world = config_mod.read_secret(http["token_file"], "outputs.http.token_file")
            if world:
                warn("token file %s is readable by every user: chmod 600 it" % http["token_file"])
        server = HttpServer(host=host, port=port, token=token, metrics=self.metrics, status_fn=self.status,
                            labels=None, max_streams=http["max_streams"],
                            max_request_bytes=http["max_request_bytes"], allowed_hosts=http["allowed_hosts"])
        server.start()
        extra = " (token required)" if token else ""
        if http["allowed_hosts"] and not token:
            extra = " (Host names answered besides loopback: %s)" % ", ".join(http["allowed_hosts"])
        self.log("HTTP on %s%s" % (server.url, extra))
        return server

    def _build_mqtt(self, cfg, mqtt):
        from edgekit.service.sinks.mqtt import MqttSink

        password = None
        if mqtt["password_file"]:
            password, _ = config_mod.read_secret(mqtt["password_file"], "outputs.mqtt.password_file")
        tls = config_mod.check_mqtt_tls(cfg)
        sink = MqttSink(mqtt["host"], port=mqtt["port"], device_id=cfg["device_id"],
                        topic_prefix=mqtt["topic_prefix"], qos=mqtt["qos"], buffer=mqtt["buffer"],
                        metrics=self.metrics, status_fn=self.status,
                        telemetry_interval=mqtt["telemetry_interval_s"], username=mqtt["username"],
                        password=password, tls=tls)
        sink.discovery_prefix = mqtt["discovery_prefix"]
        sink.start()
        self.log("MQTT to %s:%d%s, topics %s/%s/..." % (mqtt["host"], mqtt["port"], describe_tls(tls),
                                                       mqtt["topic_prefix"], cfg["device_id"]))
        return sink

    def _label_http(self, predictor):
        if self.http is not None:
            self.http.labels = list(predictor.meta.labels)

    # -- status -----------------------------------------------------------------------------
    def status(self):
        """The C6 status dict (HTTP /readyz, status page, MQTT telemetry)."""
        if self.pipeline is None:
            return {"ready": False, "last_error": "starting"}
        status = self.pipeline.status()
        status["uptime_s"] = round(time.monotonic() - self.t_start, 1)
        status["device"] = self.cfg["device_id"]
        status["reloads"] = self.reloads
        if self.last_reload_error:
            status["last_reload_error"] = self.last_reload_error
        status["ready"] = bool(status["ready"] and self.flowing())
        return status

    def flowing(self, window=None):
        """Frames flow: the loop published recently and the source's grabber is alive."""
        window = window or max(5.0, 2 * (self.notifier.watchdog_interval or 0))
        if self.pipeline is None:
            return False
        now = time.monotonic()
        last = self.pipeline.last_publish_monotonic
        return last is not None and now - last < window and now - self.pipeline.source.heartbeat < window

    def healthy(self, window):
        """What the watchdog is petted for: frames flow, or the source is reconnecting to a camera that
        went away (its grabber retrying, the loop waiting) - the daemon then survives the outage
        instead of being restarted. A hung read (stale grabber) or a hung inference (stale loop), or
        a source that stays connected but delivers nothing, is not healthy."""
        now = time.monotonic()
        source = self.pipeline.source
        alive = now - self.pipeline.heartbeat < window and now - source.heartbeat < window
        return alive and (self.flowing(window) or not source.connected)

    def status_line(self):
        s = self.pipeline.status()
        if not s["ready"]:
            return "waiting for the first frame (%s)" % (s["last_error"] or s["source"])
        text = "%.1f fps, %d frames, %d dropped, %d reconnects" % (s["fps"], s["frames"], s["dropped"],
                                                                  s["reconnects"])
        if not self.flowing():
            state = "reconnecting" if not s["source_connected"] else "source stalled"
            text = "no frames for %.0f s, %s (%s); %s" % (s["seconds_since_last_frame"] or 0, state,
                                                          s["last_error"] or s["source"], text)
        return text

    # -- running ----------------------------------------------------------------------------
    def run(self, max_frames=None):
        """Serve until SIGTERM/SIGINT, ``max_frames`` or the end of a finite source. Returns the summary."""
        self._install_signals()            # before the model loads: SIGHUP's default would kill us
        if self.pipeline is None:
            with self._keepalive():
                self.build()
        max_frames = max_frames or self.cfg["pipeline"]["max_frames"]
        self._thread = threading.Thread(target=self._work, args=(max_frames,), name="pipeline")
        self._thread.daemon = True
        self._thread.start()
        self.notifier.notify("STATUS=starting: %s" % self.pipeline.source.describe())
        next_pet = next_status = 0.0
        was_flowing = False
        while self._thread.is_alive() and not self.stop_event.is_set():
            self._thread.join(TICK)
            now = time.monotonic()
            if self._hup.is_set():
                self._hup.clear()
                with self._keepalive():        # the old model keeps serving while the new one loads
                    self.reload()
            if self.pipeline.ready and not self._announced_ready:
                self._announce_ready()
            if self.notifier.watchdog_interval and now >= next_pet:
                if not self._announced_ready or self.healthy(window=2 * self.notifier.watchdog_interval):
                    self.notifier.notify("WATCHDOG=1")
                next_pet = now + self.notifier.watchdog_interval
            flowing = self.flowing()
            if now >= next_status or flowing != was_flowing:     # every 5 s, and at once on a change
                self.notifier.notify("STATUS=" + self.status_line())
                next_status, was_flowing = now + STATUS_SECONDS, flowing
        return self.shutdown()

    @contextlib.contextmanager
    def _keepalive(self):
        """Pet the watchdog from a helper thread while the main thread loads a model."""
        interval = self.notifier.watchdog_interval
        if not interval:
            yield
            return
        done = threading.Event()

        def pet():
            while not done.wait(interval):
                self.notifier.notify("WATCHDOG=1")

        thread = threading.Thread(target=pet, name="watchdog-keepalive")
        thread.daemon = True
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(1.0)

    def _work(self, max_frames):
        try:
            self.pipeline.run(max_frames=max_frames, stop_event=self.stop_event)
        except BaseException as exc:     # handed to the main thread
            self._failure = exc

    def _announce_ready(self):
        self._announced_ready = True
        status = self.pipeline.status()
        self.notifier.notify("READY=1", "STATUS=serving: first inference done")
        meta = self.pipeline.predictor.meta
        h, w = meta.input_hw
        size = self.pipeline.frame_size
        change = ""
        if size and tuple(size) != (w, h):
            change = "; frames %dx%d are resized (%s) to %dx%d" % (size[0], size[1], meta.preprocess["resize"], w, h)
        self.log("ready: first inference done (%s)%s" % (status["source"], change))

    def shutdown(self):
        """Stop the loop, drain the sinks, close everything; all within DRAIN_SECONDS."""
        start = time.monotonic()
        deadline = start + DRAIN_SECONDS - 0.2
        self.notifier.notify("STOPPING=1", "STATUS=stopping")
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(max(0.1, deadline - time.monotonic() - 0.6))
        stop_s = {"pipeline": time.monotonic() - start}
        sinks = list(self.pipeline.sinks)
        stop_s["outputs"] = self._close_sinks(sinks, max(0.1, deadline - time.monotonic() - 0.1))
        t = time.monotonic()
        self.pipeline.source.close(timeout=0.1)
        stop_s["source"] = time.monotonic() - t
        if self._thread is None or not self._thread.is_alive():
            try:
                self.pipeline.predictor.__exit__(None, None, None)
            except Exception:
                pass
        summary = self.pipeline.summary()
        stop_s["total"] = time.monotonic() - start
        summary["stop_s"] = _rounded(stop_s)
        if stop_s["total"] > DRAIN_SECONDS / 2:     # what a slow stop waited for, where systemd's log shows it
            self.log("stopping took %.2f s: %s" % (stop_s["total"], ", ".join(
                "%s %.2f s" % (k, v) for k, v in sorted(_flat(stop_s).items()) if k != "total")))
        summary["reloads"] = self.reloads
        summary["sinks"] = dict((getattr(s, "name", type(s).__name__), _safe_stats(s)) for s in sinks)
        if self._failure is not None:
            summary["error"] = "%s: %s" % (type(self._failure).__name__, self._failure)
        return summary

    def _close_sinks(self, sinks, budget):
        """Close each output within its share of ``budget``; {name: seconds it took}."""
        end = time.monotonic() + budget
        took = {}
        for sink in sinks:
            t = time.monotonic()
            name = getattr(sink, "name", type(sink).__name__)
            try:
                sink.close(timeout=max(0.05, (end - time.monotonic()) / max(1, len(sinks))))
            except Exception as exc:
                warn("closing %s: %s" % (name, exc))
            took[name] = time.monotonic() - t
        return took

    @property
    def failure(self):
        return self._failure

    # -- signals and reload -----------------------------------------------------------------
    def _install_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop(self, signum, frame):
        self.stop_event.set()

    def _on_hup(self, signum, frame):
        self._hup.set()

    def _reload_analytics(self, config):
        """New rules between two frames; counts and track ids kept (CameraAnalytics.reload)."""
        if self.analytics is None:
            if config is not None:
                warn("analytics added: restart the service to start it (a reload changes rules, not outputs)")
            return
        if config is None:
            warn("analytics removed: restart the service to stop it (kept as it was)")
            return
        self.analytics.reload(config)
        if self.mqtt is not None and self.cfg["outputs"]["mqtt"]["discovery"]:
            self.mqtt.set_discovery(self.analytics.discovery())
        self.log("analytics reloaded: %d lines, %d zones (counts and track ids kept)" % (
            len(config.lines), len(config.zones)))

    def request_reload(self):
        self._hup.set()

    def reload(self):
        """Re-read the config file and the model; swap them in between two frames, or keep the old."""
        self.notifier.notify("RELOADING=1", "STATUS=reloading")
        self.log("reload: reading %s" % (self.config_path or "the command-line settings"))
        new_source = None
        try:
            cfg = config_mod.load_config(self.config_path, self.overrides)
            workers = self.pipeline.workers
            for key, kept in (("workers", workers), ("chunk", self.pipeline.chunk)):
                if cfg["pipeline"][key] != self.cfg["pipeline"][key]:
                    warn("pipeline.%s changed: restart the service to apply it (kept at %d)" % (key, kept))
            analytics = None
            predictor = open_predictor(cfg, self.log, workers)
            try:
                if self.analytics is not None or cfg["analytics"] is not None:
                    from edgekit.service.analytics import build_config

                    analytics = build_config(config_mod.load_analytics(cfg), predictor.meta.labels,
                                             predictor.meta.task)
                if cfg["source"] != self.cfg["source"]:
                    new_source = self._build_source(cfg, predictor)
                    resolve_chunk(self.cfg["pipeline"]["chunk"], workers, new_source)
                    self._start_source(new_source, workers)
            except BaseException:
                predictor.__exit__(None, None, None)
                if new_source is not None:
                    new_source.close(timeout=0.5)
                raise
        except (UserError, OSError) as exc:
            self.reload_failures += 1
            self.last_reload_error = exc.one_line() if isinstance(exc, UserError) else str(exc)
            self.metrics.inc("reloads_total", result="failed")
            warn("reload failed, keeping the old model and settings: %s" % self.last_reload_error)
            self.notifier.notify("READY=1", "STATUS=reload failed, old model kept: %s" % self.last_reload_error)
            return False
        self._reload_analytics(analytics)
        for key in ("http", "mqtt", "jsonl", "events", "snapshots"):
            if cfg["outputs"][key] != self.cfg["outputs"][key]:
                warn("outputs.%s changed: restart the service to apply it (kept as it was)" % key)
        old_predictor, old_source, _ = self.pipeline.replace(predictor=predictor, source=new_source)
        self._label_http(predictor)
        _exit_quietly(old_predictor)
        if new_source is not None:
            old_source.close(timeout=0.5)
        self.cfg = dict(cfg, outputs=self.cfg["outputs"])
        self.reloads += 1
        self.last_reload_error = None
        self.metrics.inc("reloads_total", result="ok")
        self.log("reload done")
        self.notifier.notify("READY=1", "STATUS=reloaded")
        return True


class _Extra(object):
    """An analytics output (events file, snapshot writer) among the pipeline's sinks only to be
    closed and reported with them: it takes its items from the analytics, not frames."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name

    def submit(self, record, frame=None):
        return True

    def close(self, timeout=2.0):
        self.inner.close(timeout)

    def stats(self):
        return self.inner.stats()


def _exit_quietly(predictor):
    try:
        predictor.__exit__(None, None, None)
    except Exception:
        pass


def _safe_stats(sink):
    try:
        return sink.stats()
    except Exception as exc:
        return {"error": str(exc)}

