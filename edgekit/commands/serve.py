"""`edgekit serve`: the camera inference daemon."""

from edgekit.commands import _args

HELP = "run the camera inference daemon (sources -> model -> JSONL / HTTP / MQTT)"
DESCRIPTION = """Run a model on a camera, stream or file, all day: the newest frame is inferred, results go
to a JSON Lines file, an HTTP server (status page, /metrics, MJPEG stream) and MQTT. Settings come from
--config FILE (YAML, see deploy/serve.example.yaml); flags override it. Under systemd (Type=notify)
it reports READY after the first inference and pets the watchdog while frames flow. SIGTERM drains
and exits; SIGHUP reloads the config and the model (a failed reload keeps the old model).

sources: csi://0?width=1280&height=720&fps=30&flip=0 | v4l2:///dev/video0 or 0 | rtsp://... |
gst://PIPELINE ! appsink | video.mp4 | image-folder/ | synthetic://?width=640&height=480&fps=30"""

# The daemon's own stop has closed every output, written the summary and released the source when
# run() returns: the process then ends at once (cli.exit_at_once) instead of tearing the interpreter
# down, which after a long run takes a large part of the 2 s that SIGTERM may take (a 20-minute soak:
# 0.7 s after main returned, against a stop of 0.26 s).
EXIT_AT_ONCE = True

# flag -> dotted config key
FLAG_KEYS = (
    ("model", "model.path"),
    ("backend", "model.backend"),
    ("threads", "model.threads"),
    ("meta", "model.meta"),
    ("source", "source.uri"),
    ("device_id", "device_id"),
    ("jsonl", "outputs.jsonl.path"),
    ("token_file", "outputs.http.token_file"),
    ("frames", "pipeline.max_frames"),
    ("overlap", "pipeline.overlap"),
    ("workers", "pipeline.workers"),
    ("chunk", "pipeline.chunk"),
    ("summary", "summary"),
    ("analytics", "analytics"),
    ("events", "outputs.events.path"),
    ("snapshots", "outputs.snapshots.dir"),
)


def add_arguments(parser):
    parser.add_argument("--model", metavar="M", help="model: .onnx with edgekit metadata, or a TensorRT engine")
    _args.add_backend(parser, default_text="the config's model.backend, else auto")
    parser.add_argument("--source", metavar="SRC", help="camera, stream, file or folder (see above)")
    parser.add_argument("--config", metavar="FILE", help="YAML settings (flags override them)")
    parser.add_argument("--http", metavar="HOST:PORT", nargs="?", const="127.0.0.1:8080",
                        help="serve HTTP (default when given alone: 127.0.0.1:8080; 'off' disables); "
                        "a non-loopback host needs --token-file")
    parser.add_argument("--token-file", metavar="FILE", help="HTTP bearer token (first line of FILE)")
    parser.add_argument("--mqtt", metavar="HOST[:PORT]", help="publish results to this MQTT broker ('off' disables)")
    parser.add_argument("--device-id", metavar="ID", help="device name in records and MQTT topics")
    parser.add_argument("--jsonl", metavar="FILE", help="append results to FILE (JSON Lines, rotated by size)")
    _args.add_frames(parser, help="stop after N processed frames")
    parser.add_argument("--summary", metavar="FILE", help="write a JSON summary at exit (frames, dropped, fps, "
                        "reconnects, latency_ms per stage)")
    parser.add_argument("--analytics", metavar="RULES.yaml", help="track objects and count them on lines and "
                        "zones (the file `edgekit track --config` reads; docs/analytics.md)")
    parser.add_argument("--events", metavar="FILE", help="with analytics: append events to FILE (JSON Lines)")
    parser.add_argument("--snapshots", metavar="DIR", help="with analytics: keep each event's frame and crop "
                        "(JPEG) in DIR")
    parser.add_argument("--loop", action="store_true", default=None, help="start files and folders again at the end")
    parser.add_argument("--fast", action="store_true", help="video files: every frame as fast as possible "
                        "instead of at the file's frame rate")
    parser.add_argument("--threads", type=_args.positive_int, metavar="N", help="ONNX Runtime intra-op threads")
    _args.add_meta(parser)
    parser.add_argument("--overlap", choices=("auto", "on", "off"),
                        help="preprocess the next frame during inference (auto: on when inference runs on a GPU)")
    _args.add_workers(parser, help="frames in flight (default auto: one per core for a file read with --fast or an "
                      "image folder on the CPU; 1 for cameras and streams, for the lowest latency)")
    parser.add_argument("--chunk", type=_args.chunk_value, metavar="N|auto",
                        help="frames each worker takes at a time when the workers read the source themselves "
                        "(default auto: 16, fewer when they would take over 0.1 s or 32 MB - each stage then "
                        "runs over all of them, hot in the cache)")
    _args.add_json(parser, "the summary (at exit)")


def overrides_from_args(args):
    """CLI flags -> {dotted.config.key: value} (None = not given)."""
    from edgekit.service.config import parse_host_port

    out = dict((key, getattr(args, flag, None)) for flag, key in FLAG_KEYS)
    if args.loop:
        out["source.loop"] = True
    if args.fast:
        out["source.realtime"] = False
    if args.http is not None:
        out["outputs.http.listen"] = "" if args.http == "off" else args.http
    if args.mqtt is not None:
        if args.mqtt == "off":
            out["outputs.mqtt.host"] = ""
        else:
            host, port = parse_host_port(args.mqtt, "--mqtt", 1883)
            out["outputs.mqtt.host"], out["outputs.mqtt.port"] = host, port
    return out


def run(args):
    import json
    import sys

    from edgekit.fsutil import atomic_write_json
    from edgekit.progress import say
    from edgekit.service.config import check_output_path, load_config
    from edgekit.service.daemon import Daemon

    overrides = overrides_from_args(args)
    cfg = load_config(args.config, overrides)
    summary_path = cfg["summary"] and check_output_path(cfg["summary"], "summary")
    daemon = Daemon(cfg, config_path=args.config, overrides=overrides)
    summary = daemon.run()
    if summary_path:
        atomic_write_json(summary_path, summary)
    say("served %d frames at %.1f fps (%d dropped, %d reconnects)%s" % (
        summary["frames"], summary["fps"], summary["dropped"], summary["reconnects"],
        "; summary in %s" % summary_path if summary_path else ""))
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    if daemon.failure is not None:
        failure = daemon.failure
        from edgekit.errors import UserError

        if isinstance(failure, UserError):
            raise failure
        say("edgekit serve: stopped by an error: %s: %s" % (type(failure).__name__, failure))
        return 1
    return 0
