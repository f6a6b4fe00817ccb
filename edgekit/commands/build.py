"""`edgekit build`: build (or fetch from the cache) a TensorRT engine for this device."""

from edgekit.commands import _args

HELP = "build a TensorRT engine on this device (cached by model, TensorRT, GPU, precision, shapes)"
DESCRIPTION = (
    "Build a TensorRT engine from an ONNX model (or the model of an installed bundle directory) with "
    "TensorRT's Python API, and cache it under a key of everything that makes it valid: ONNX sha256, "
    "TensorRT and CUDA versions, GPU and compute capability, precision, input shapes, calibration cache. "
    "The build runs in a child process so an out-of-memory kill on a 4 GB board becomes advice.")


def add_arguments(parser):
    parser.add_argument("model", nargs="?", help="MODEL.onnx or a bundle directory")
    _args.add_precision(parser, help="engine precision (default: the model's own if fp16/int8, else fp16)")
    parser.add_argument("--workspace", type=int, metavar="MiB",
                        help="builder workspace in MiB (default: capped by board memory, 256 on a 4 GB Nano)")
    _args.add_calib_cache(parser)
    parser.add_argument("--shapes", action="append", metavar="NAME:MIN/OPT/MAX",
                        help="shapes of a dynamic input, e.g. images:1x3x224x224/4x3x224x224/8x3x224x224 "
                        "(repeat per input)")
    parser.add_argument("--timing-cache", metavar="FILE",
                        help="TensorRT timing cache to read and update (default: one per TensorRT+GPU in the cache dir)")
    _args.add_cache_dir(parser)
    parser.add_argument("--force", action="store_true",
                        help="build a precision this GPU cannot run fast (with a warning); --clear rebuilds from scratch")
    parser.add_argument("--print-trtexec", action="store_true",
                        help="print the equivalent trtexec command line and exit (needs no TensorRT)")
    _args.add_target(parser, help="for --print-trtexec without TensorRT here: the device preset whose TensorRT "
                     "to write for", default_text="jetson-nano")
    parser.add_argument("--list", action="store_true", help="list cached engines")
    parser.add_argument("--clear", action="store_true", help="delete every cached engine")
    _args.add_json(parser, "the engine record", note="with --list the cached engines, with --clear what was removed")
    parser.add_argument("--no-isolate", action="store_true",
                        help="build in this process (default: a child process, to report out-of-memory kills)")


def run(args):
    import json

    from edgekit.engine import cache
    from edgekit.errors import ConfigError

    cache_dir = args.cache_dir or cache.default_cache_dir()
    if args.list:
        return _list(cache_dir, args.json)
    if args.clear:
        count = cache.clear(cache_dir)
        print(json.dumps({"removed": count, "cache_dir": cache_dir}) if args.json
              else "removed %d cached engine(s) from %s" % (count, cache_dir))
        return 0
    if not args.model:
        raise ConfigError("no model given", hint="write `edgekit build MODEL.onnx` (or --list, --clear)")
    onnx_path, calib, bundle_precision = resolve_model(args.model, args.calib_cache)
    precision = _precision(args, onnx_path, bundle_precision)
    if args.calib_cache and precision != "int8":
        raise ConfigError("--calib-cache is only used with --precision int8",
                          hint="drop it, or build with --precision int8")
    if args.print_trtexec:
        return _print_trtexec(args, onnx_path, precision, calib)
    from edgekit.engine import trt_api

    trt_api.import_tensorrt()          # fail fast, with the JetPack hint, before a child starts
    if not args.no_isolate:
        return _run_isolated(args, onnx_path, precision, calib)
    return _build(args, onnx_path, precision, calib, cache_dir)


def resolve_model(path, calib_cache):
    """(onnx path, calibration cache, precision or None) of a model file or a bundle directory.

    A bundle directory with manifest.json names its model, calibration cache and precision; without
    one, the directory must hold exactly one ONNX (and at most one *.cache)."""
    import glob
    import json
    import os

    from edgekit.errors import ModelError

    if not os.path.isdir(path):
        if not os.path.exists(path):
            raise ModelError("model not found: %s" % path, hint="check the path")
        if not path.endswith(".onnx"):
            raise ModelError("%s is not an ONNX file" % path, hint="build from the .onnx the bundle carries")
        return path, calib_cache, None
    manifest_path = os.path.join(path, "manifest.json")
    if os.path.exists(manifest_path):
        try:
            with open(manifest_path) as handle:
                manifest = json.load(handle)
            model = os.path.join(path, manifest["model"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError("bundle manifest %s is unreadable (%s)" % (manifest_path, exc),
                             hint="check it with `edgekit bundle verify`")
        if calib_cache is None and manifest.get("calib_cache"):
            calib_cache = os.path.join(path, manifest["calib_cache"])
        return model, calib_cache, manifest.get("precision")
    models = sorted(glob.glob(os.path.join(path, "*.onnx")) + glob.glob(os.path.join(path, "*", "*.onnx")))
    if len(models) != 1:
        raise ModelError("bundle directory %s holds %d ONNX models" % (path, len(models)),
                         hint="name the one to build: edgekit build %s" % (models[0] if models else "MODEL.onnx"))
    if calib_cache is None:
        found = sorted(glob.glob(os.path.join(path, "*.cache")) + glob.glob(os.path.join(path, "*", "*.cache")))
        calib_cache = found[0] if len(found) == 1 else None
    return models[0], calib_cache, None


def _precision(args, onnx_path, bundle_precision=None):
    from edgekit.meta import read_meta
    from edgekit.progress import say

    if args.precision:
        return args.precision
    if bundle_precision:
        say("precision: %s (the bundle's)" % bundle_precision)
        return bundle_precision
    try:
        meta = read_meta(onnx_path, required=False)
    except Exception:
        meta = None
    precision = meta.precision if meta is not None and meta.precision in ("fp16", "int8") else "fp16"
    say("precision: %s (%s)" % (precision, "the model's own" if meta is not None and meta.precision == precision
                                 else "default; --precision to change"))
    return precision


def _print_trtexec(args, onnx_path, precision, calib):
    import os
    import shlex

    from edgekit.engine import memory
    from edgekit.engine.build import parse_shapes, series_of, trtexec_command
    from edgekit.targets import DEFAULT_TARGET, get_target

    try:
        import tensorrt
        series = series_of(tensorrt.__version__)
    except ImportError:
        series = get_target(args.target or DEFAULT_TARGET).tensorrt_series() or "10"
    workspace = args.workspace or memory.default_workspace_mib(memory.read_meminfo())
    stem = os.path.splitext(os.path.basename(onnx_path))[0]
    shapes = parse_shapes(args.shapes)
    _check_dynamic_inputs(onnx_path, shapes)
    command = trtexec_command(onnx_path, precision, workspace, shapes,
                              calib if precision == "int8" else None, args.timing_cache,
                              "%s.%s.engine" % (stem, precision), series=series)
    print(" ".join(shlex.quote(a) for a in command))
    return 0


def _check_dynamic_inputs(onnx_path, shapes):
    """Without TensorRT: every dynamic input needs --shapes, and --shapes names must be inputs."""
    from edgekit.errors import ConfigError
    from edgekit.runners.opencv import onnx_io

    inputs, _ = onnx_io(onnx_path)
    names = [i.name for i in inputs]
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise ConfigError("--shapes names %s are not inputs of the model" % ", ".join(unknown),
                          hint="its inputs are: %s" % ", ".join(names))
    for spec in inputs:
        if spec.is_dynamic and spec.name not in shapes:
            from edgekit import inputsize
            from edgekit.meta import read_onnx_metadata_props

            dynamic_hw = inputsize.dynamic_hw(spec.shape)
            chosen = inputsize.size_from_props(read_onnx_metadata_props(onnx_path)) if dynamic_hw else None
            raise ConfigError("input %s has dynamic dimensions %s" % (spec.name, spec.shape),
                              hint="give them with --shapes %s:MIN/OPT/MAX, e.g. --shapes %s%s" % (
                                  spec.name, inputsize.profile_example(spec.name, spec.shape, chosen and chosen[:2]),
                                  " (size from %s)" % chosen[2] if chosen else inputsize.example_note(not dynamic_hw)))


def _build(args, onnx_path, precision, calib, cache_dir):
    import json

    from edgekit.engine.build import build_engine
    from edgekit.table import format_table

    record = build_engine(onnx_path, precision=precision, cache_dir=cache_dir, workspace_mib=args.workspace,
                          calib_cache=calib if precision == "int8" else None, shapes=args.shapes,
                          timing_cache=args.timing_cache, force=args.force)
    if args.json:
        print(json.dumps(record.as_dict(), indent=2, sort_keys=True))
        return 0
    rows = [["engine", record.path], ["from", "built now (%.1f s)" % record.build_seconds if record.built
                                      else "cache"],
            ["precision", record.key["precision"]], ["tensorrt", record.key["tensorrt"]],
            ["gpu", "%s (compute %s)" % (record.key["gpu"], record.key["compute_capability"])],
            ["key", record.key_hash]]
    print(format_table(rows, ["", ""]).split("\n", 2)[2])
    return 0


def child_argv(args, onnx_path, precision, calib):
    """The `edgekit build` command line the isolated child runs."""
    argv = ["build", onnx_path, "--precision", precision, "--no-isolate"]
    for flag, value in (("--workspace", args.workspace), ("--calib-cache", calib), ("--timing-cache", args.timing_cache),
                        ("--cache-dir", args.cache_dir)):
        if value is not None:
            argv += [flag, str(value)]
    for item in args.shapes or []:
        argv += ["--shapes", item]
    argv += [flag for flag, on in (("--force", args.force), ("--json", args.json)) if on]
    return argv


def _run_isolated(args, onnx_path, precision, calib):
    import sys

    return run_child([sys.executable, "-m", "edgekit"] + child_argv(args, onnx_path, precision, calib))


def run_child(command):
    """Run a build child; its output passes through. A SIGKILL (the OOM killer) becomes advice."""
    import subprocess

    from edgekit.engine import memory

    proc = subprocess.Popen(command)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        raise
    if memory.was_oom_killed(code):
        raise memory.killed_error()
    return code


def _list(cache_dir, as_json):
    import json

    from edgekit.engine import cache
    from edgekit.table import format_table

    rows = [e.row() for e in cache.entries(cache_dir)]
    if as_json:
        print(json.dumps({"cache_dir": cache_dir, "engines": rows}, indent=2, sort_keys=True))
        return 0
    if not rows:
        print("no cached engines in %s" % cache_dir)
        return 0
    headers = ["engine", "precision", "tensorrt", "gpu", "compute", "size_mib", "built_at", "status"]
    print(format_table(rows, headers, title="cached engines in %s" % cache_dir))
    return 0
