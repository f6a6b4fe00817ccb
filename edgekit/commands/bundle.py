"""`edgekit bundle`: make a bundle (desktop), or verify / install / roll back / list (device).

    edgekit bundle MODEL.onnx --out NAME.tar.gz [--precision P] [--calib-cache F] [--config Y] [--target T]
                              [--with-wheel] [--force] [--meta M.yaml]
    edgekit bundle verify BUNDLE [--target T]
    edgekit bundle install BUNDLE [--root DIR] [--keep N] [--no-build] [--target T]
    edgekit bundle rollback [--root DIR] [--if-current ID]
    edgekit bundle list [--root DIR]

The first word picks the form: one of verify/install/rollback/list is a device action, anything
else is the model to bundle (write ./verify for a model file really called that).
"""

import argparse
import json
import os
import sys

HELP = "make a verified model bundle; verify, install, roll back or list bundles on a device"
DESCRIPTION = __doc__.split("\n\n", 1)[0] + """

  edgekit bundle MODEL.onnx --out NAME.tar.gz      make a bundle (desktop)
  edgekit bundle verify BUNDLE [--target T]         check every sha256, the archive's safety and the target
  edgekit bundle install BUNDLE --root DIR          verify, unpack to DIR/releases/<id>, build the engine,
                                                    switch DIR/current atomically, keep the last --keep
  edgekit bundle rollback --root DIR                make the previous release current again
  edgekit bundle list --root DIR                    installed releases
"""

DEFAULT_ROOT = os.environ.get("EDGEKIT_ROOT", "/var/lib/edgekit")

# action -> (number of positional arguments after the action word, options it accepts)
ACTIONS = {
    "make": (1, ("precision", "calib_cache", "config", "target", "with_wheel", "out", "force", "meta", "json")),
    "verify": (1, ("target", "json")),
    "install": (1, ("root", "keep", "no_build", "target", "cache_dir", "json")),
    "rollback": (0, ("root", "if_current", "json")),
    "list": (0, ("root", "json")),
}
DEFAULTS = {"precision": None, "calib_cache": None, "config": None, "target": None, "with_wheel": False,
            "out": None, "force": False, "meta": None, "json": False, "root": None, "keep": None,
            "no_build": False, "if_current": None, "cache_dir": None}


def add_arguments(parser):
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.usage = ("\n  edgekit bundle MODEL.onnx --out NAME.tar.gz [making options]\n"
                    "  edgekit bundle {verify,install} BUNDLE [device options]\n"
                    "  edgekit bundle {rollback,list} [--root DIR]")
    parser.add_argument("words", nargs="+", metavar="WORDS",
                        help="MODEL.onnx, or verify BUNDLE | install BUNDLE | rollback | list")
    make = parser.add_argument_group("making a bundle (desktop)")
    make.add_argument("--out", metavar="NAME.tar.gz", help="bundle to write (atomically)")
    make.add_argument("--precision", choices=("fp32", "fp16", "int8"),
                      help="precision the board builds (default: fp16 for TensorRT targets, int8 for a QDQ model "
                      "or with --calib-cache; the model's own for ONNX Runtime targets)")
    make.add_argument("--calib-cache", metavar="FILE", help="INT8 calibration cache from `edgekit quantize`")
    make.add_argument("--config", metavar="SERVE.yaml", help="daemon config to ship (see deploy/serve.example.yaml)")
    make.add_argument("--with-wheel", action="store_true", help="add the edgekit wheel for an offline install")
    make.add_argument("--meta", metavar="FILE.yaml", help="metadata for an ONNX file without an edgekit block")
    make.add_argument("--force", action="store_true", help="bundle a precision the target runs slowly")
    make.add_argument("--target", help="device preset (making: default jetson-nano; on a device: the bundle "
                      "must be for this target, default detected from the board)")
    device = parser.add_argument_group("on the device")
    device.add_argument("--root", metavar="DIR", help="install root (default $EDGEKIT_ROOT or /var/lib/edgekit)")
    device.add_argument("--keep", type=int, metavar="N", help="releases to keep after install (default 3)")
    device.add_argument("--no-build", action="store_true",
                        help="install a TensorRT bundle without building its engine (build later with `edgekit build`)")
    device.add_argument("--cache-dir", metavar="DIR", help="engine cache (default $EDGEKIT_CACHE_DIR or "
                        "~/.cache/edgekit/engines: use the daemon's)")
    device.add_argument("--if-current", metavar="ID", help="rollback only when ID is the live release")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def _split(words):
    if words[0] in ACTIONS and words[0] != "make":
        return words[0], words[1:]
    return "make", words


def _check_usage(action, positional, args):
    from edgekit.errors import ConfigError

    count, allowed = ACTIONS[action]
    label = "edgekit bundle" + ("" if action == "make" else " " + action)
    if len(positional) != count:
        want = {0: "no argument", 1: "one %s" % ("model" if action == "make" else "bundle")}[count]
        raise ConfigError("`%s` takes %s, got %d (%s)" % (label, want, len(positional), " ".join(positional) or "none"),
                          hint="see `edgekit bundle --help`")
    for dest, default in sorted(DEFAULTS.items()):
        if getattr(args, dest) != default and dest not in allowed:
            raise ConfigError("--%s is not an option of `%s`" % (dest.replace("_", "-"), label),
                              hint="see `edgekit bundle --help`")
    if action == "make" and not args.out:
        raise ConfigError("`edgekit bundle MODEL.onnx` needs --out NAME.tar.gz", hint="e.g. --out model.tar.gz")


def _device_target(args):
    from edgekit.progress import warn
    from edgekit.targets import detect_target

    if args.target:
        return args.target
    detected = detect_target()
    if detected is None:
        warn("target not checked: this machine is not a known Jetson board (pass --target)")
    return detected


def _emit(args, result, text):
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    elif text:
        sys.stdout.write(text.rstrip("\n") + "\n")


def _make(args, model):
    from edgekit.desktop.bundle_make import make_bundle

    report = make_bundle(model, args.out, precision=args.precision, calib_cache=args.calib_cache,
                         config=args.config, target=args.target or "jetson-nano", with_wheel=args.with_wheel,
                         force=args.force, meta_yaml=args.meta)
    _emit(args, report, "wrote %s (%d bytes): bundle %s for %s, %s, files: %s" % (
        report["out"], report["bytes"], report["bundle_id"], report["target"], report["precision"],
        ", ".join(report["files"])))


def _verify(args, path):
    from edgekit.bundle import verify_bundle

    summary = verify_bundle(path, target=_device_target(args)).summary()
    _emit(args, summary, "ok: %s is bundle %s for %s (%s), %d files, every sha256 matches%s" % (
        path, summary["bundle_id"], summary["target"], summary["precision"], summary["files"],
        "" if summary["target_checked"] else " (target not checked)"))


def _install(args, path):
    from edgekit.bundle import install

    report = install(path, args.root or DEFAULT_ROOT, keep=3 if args.keep is None else args.keep,
                     build=not args.no_build, target=_device_target(args), cache_dir=args.cache_dir)
    _emit(args, report, "installed %s: current -> %s (engine: %s%s)" % (
        report["bundle_id"], report["release"], report["engine_status"],
        "; removed " + ", ".join(report["removed"]) if report["removed"] else ""))


def _rollback(args):
    from edgekit.bundle import rollback

    result = rollback(args.root or DEFAULT_ROOT, if_current=args.if_current)
    _emit(args, result, "current: %s (was %s)" % (result["current"], result["previous"]) if result["changed"]
          else "unchanged: current is %s" % result["current"])


def _list(args):
    from edgekit.bundle import list_releases
    from edgekit.table import format_table

    rows = list_releases(args.root or DEFAULT_ROOT)
    headers = ["bundle_id", "current", "target", "precision", "created_at", "installed_at", "engine"]
    table = format_table([dict(r, current="*" if r["current"] else "") for r in rows], headers) if rows \
        else "no releases under %s" % (args.root or DEFAULT_ROOT)
    _emit(args, rows, table)


def run(args):
    action, positional = _split(args.words)
    _check_usage(action, positional, args)
    handlers = {"make": _make, "verify": _verify, "install": _install, "rollback": _rollback, "list": _list}
    handler = handlers[action]
    handler(args, *positional)
    return 0
