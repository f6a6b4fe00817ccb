"""The ``edgekit`` command line: one program, subcommands.

Each subcommand lives in ``edgekit/commands/<name>.py`` with ``HELP``, ``add_arguments(parser)``
and ``run(args)``. Those modules import only argparse-level things at the top; the heavy work
(torch, onnx, TensorRT) is imported inside ``run`` so ``edgekit --help`` stays fast and works with
the base install alone.
"""

import importlib
import os
import sys

from edgekit import __version__
from edgekit.commands._args import Parser, unknown_arguments
from edgekit.errors import UserError

# name -> module; order is the order of `edgekit --help`
COMMANDS = (
    ("demo", "edgekit.commands.demo"),
    ("train", "edgekit.commands.train"),
    ("export", "edgekit.commands.export"),
    ("inspect", "edgekit.commands.inspect"),
    ("quantize", "edgekit.commands.quantize"),
    ("bundle", "edgekit.commands.bundle"),
    ("build", "edgekit.commands.build"),
    ("doctor", "edgekit.commands.doctor"),
    ("profile", "edgekit.commands.profile"),
    ("serve", "edgekit.commands.serve"),
    ("track", "edgekit.commands.track"),
    ("dataset", "edgekit.commands.dataset"),
    ("fleet", "edgekit.commands.fleet"),
)


def build_parser():
    parser = Parser(prog="edgekit", description="Small vision models from a desktop to a camera on a Jetson: "
                     "train, export, quantize, build, serve, profile.")
    parser.add_argument("--version", action="version", version="edgekit %s" % __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, module_name in COMMANDS:
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP))
        module.add_arguments(p)
        p.set_defaults(_module=module_name, _parser=p)
    return parser


def main(argv=None):
    """Run one command; returns its exit code (argument errors too: 2, after one line on stderr)."""
    parser = build_parser()
    as_program = argv is None
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    try:
        args, extras = parser.parse_known_args(argv)
    except SystemExit as exc:           # --help, --version, or argparse's one-line error
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if not getattr(args, "command", None):
        if extras:
            try:
                parser.error("unrecognized arguments: %s" % " ".join(extras))
            except SystemExit as exc:
                return exc.code
        parser.print_help()
        return 2
    module = importlib.import_module(args._module)
    try:
        if extras:
            raise unknown_arguments(args._parser, extras, argv)
        code = int(module.run(args) or 0)
    except UserError as exc:
        sys.stderr.write("edgekit %s: error: %s\n" % (args.command, exc.one_line()))
        code = exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("edgekit %s: interrupted\n" % args.command)
        code = 130
    if as_program and getattr(module, "EXIT_AT_ONCE", False):
        exit_at_once(code)
    return code


def exit_at_once(code):
    """End the process now, with everything written: flush the logs and stdio, then ``os._exit``,
    skipping the interpreter's teardown (freeing every object and module one by one). Only for a
    command that ran as the program (``argv`` None: the ``edgekit`` script, ``python -m edgekit``)
    and has closed what it opened; a caller of ``main([...])`` gets its code back as usual."""
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


if __name__ == "__main__":
    raise SystemExit(main())
