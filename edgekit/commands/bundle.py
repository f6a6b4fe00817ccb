"""`edgekit bundle`: make a bundle (desktop), or verify / install / roll back / list (device).

    edgekit bundle MODEL.onnx --out NAME.tar.gz [--precision P] [--calib-cache F] [--config Y] [--target T]
                              [--with-wheel] [--force] [--meta M.yaml]
    edgekit bundle verify BUNDLE [--target T]
    edgekit bundle install BUNDLE [--root DIR] [--keep N] [--no-build] [--target T]
    edgekit bundle rollback [--root DIR] [--if-current ID]
    edgekit bundle list [--root DIR]

Each form is a subcommand (make, verify, install, rollback, list). A first word that is none of
them is the model to bundle: `edgekit bundle MODEL.onnx ...` is `edgekit bundle make MODEL.onnx ...`
(write ./verify for a model file really called that). Every form takes --json.
"""

import argparse
import json
import os
import sys

from edgekit.commands import _args

HELP = "make a verified model bundle; verify, install, roll back or list bundles on a device"
DESCRIPTION = __doc__.split("\n\n", 1)[0] + """

  edgekit bundle [make] MODEL.onnx --out NAME.tar.gz  make a bundle (desktop)
  edgekit bundle verify BUNDLE [--target T]         check every sha256, the archive's safety and the target
  edgekit bundle install BUNDLE --root DIR          verify, unpack to DIR/releases/<id>, build the engine,
                                                    switch DIR/current atomically, keep the last --keep
  edgekit bundle rollback --root DIR                make the previous release current again
  edgekit bundle list --root DIR                    installed releases
"""

DEFAULT_ROOT = os.environ.get("EDGEKIT_ROOT", "/var/lib/edgekit")


def add_arguments(parser):
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.usage = ("\n  edgekit bundle [make] MODEL.onnx --out NAME.tar.gz [making options]\n"
                    "  edgekit bundle {verify,install} BUNDLE [device options]\n"
                    "  edgekit bundle {rollback,list} [--root DIR]")
    sub = _args.add_actions(parser, default="make")
    make = _args.add_action(sub, parser, "make", help="make a bundle of MODEL.onnx for a target (desktop; the "
                            "default action: `edgekit bundle MODEL.onnx ...` is `edgekit bundle make MODEL.onnx ...`)")
    make.add_argument("model", nargs="?", metavar="MODEL.onnx", help="the ONNX model to bundle")
    make.add_argument("--out", metavar="NAME.tar.gz", help="bundle to write (atomically)")
    _args.add_precision(make, help="precision the board builds (default: fp16 for TensorRT targets, int8 for a QDQ "
                        "model or with --calib-cache; the model's own for ONNX Runtime targets)")
    _args.add_calib_cache(make)
    make.add_argument("--config", metavar="SERVE.yaml", help="daemon config to ship (see deploy/serve.example.yaml)")
    make.add_argument("--with-wheel", action="store_true", help="add the edgekit wheel for an offline install")
    _args.add_meta(make, help="metadata for an ONNX file without an edgekit block")
    make.add_argument("--force", action="store_true", help="bundle a precision the target runs slowly")
    _args.add_target(make, help="device preset the bundle is for", default="jetson-nano")
    _args.add_json(make, "the report")

    verify = _args.add_action(sub, parser, "verify", help="check every sha256, the archive's safety and the target")
    verify.add_argument("bundle", nargs="?", metavar="BUNDLE", help="bundle file (.tar.gz)")
    _add_device_target(verify)
    _args.add_json(verify, "the summary")

    install = _args.add_action(sub, parser, "install", help="verify, unpack to DIR/releases/<id>, build the engine, "
                               "switch DIR/current atomically, keep the last --keep")
    install.add_argument("bundle", nargs="?", metavar="BUNDLE", help="bundle file (.tar.gz)")
    _add_root(install)
    install.add_argument("--keep", type=int, metavar="N", help="releases to keep after install (default 3)")
    install.add_argument("--no-build", action="store_true",
                         help="install a TensorRT bundle without building its engine (build later with `edgekit build`)")
    _add_device_target(install)
    _args.add_cache_dir(install, help="engine cache (default $EDGEKIT_CACHE_DIR or ~/.cache/edgekit/engines: use "
                        "the daemon's)")
    _args.add_json(install, "the report")

    rollback = _args.add_action(sub, parser, "rollback", help="make the previous release current again")
    _add_root(rollback)
    rollback.add_argument("--if-current", metavar="ID", help="rollback only when ID is the live release")
    _args.add_json(rollback, "the result")

    listing = _args.add_action(sub, parser, "list", help="installed releases, the live one marked")
    _add_root(listing)
    _args.add_json(listing, "the releases")


def _add_root(parser):
    parser.add_argument("--root", metavar="DIR", help="install root (default $EDGEKIT_ROOT or /var/lib/edgekit)")


def _add_device_target(parser):
    _args.add_target(parser, help="the bundle must be for this device preset", default_text="detected from the board")


def _check_usage(args):
    from edgekit.errors import ConfigError

    if args.action is None:
        raise ConfigError("`edgekit bundle` needs a model or an action",
                          hint="write `edgekit bundle MODEL.onnx --out NAME.tar.gz`, or verify, install, rollback, "
                          "list; see `edgekit bundle --help`")
    wants = {"make": "model", "verify": "bundle", "install": "bundle"}.get(args.action)
    if wants and getattr(args, wants) is None:
        label = "edgekit bundle" if args.action == "make" else "edgekit bundle " + args.action
        raise ConfigError("`%s` takes one %s, got 0 (none)" % (label, wants), hint="see `edgekit bundle --help`")
    if args.action == "make" and not args.out:
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


def _make(args):
    from edgekit.desktop.bundle_make import make_bundle

    report = make_bundle(args.model, args.out, precision=args.precision, calib_cache=args.calib_cache,
                         config=args.config, target=args.target, with_wheel=args.with_wheel,
                         force=args.force, meta_yaml=args.meta)
    _emit(args, report, "wrote %s (%d bytes): bundle %s for %s, %s, files: %s" % (
        report["out"], report["bytes"], report["bundle_id"], report["target"], report["precision"],
        ", ".join(report["files"])))


def _verify(args):
    from edgekit.bundle import verify_bundle

    path = args.bundle
    summary = verify_bundle(path, target=_device_target(args)).summary()
    _emit(args, summary, "ok: %s is bundle %s for %s (%s), %d files, every sha256 matches%s" % (
        path, summary["bundle_id"], summary["target"], summary["precision"], summary["files"],
        "" if summary["target_checked"] else " (target not checked)"))


def _install(args):
    from edgekit.bundle import install

    path = args.bundle
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


HANDLERS = {"make": _make, "verify": _verify, "install": _install, "rollback": _rollback, "list": _list}


def run(args):
    _check_usage(args)
    HANDLERS[args.action](args)
    return 0
