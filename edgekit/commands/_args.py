"""Flags several commands share, defined once: the same spelling, type, choices and help everywhere.

    add_json(parser, "the report")    --json: JSON on stdout (always; a file is --report FILE)
    add_report(parser, "the report")  --report FILE: the same JSON written to FILE (atomically)
    add_target(parser, ...)           --target/-t T: a preset of edgekit.targets (choices from there)
    add_backend(parser, ...)          --backend: auto or a backend of edgekit.runners
    add_workers(parser, ...)          --workers N|auto (serve, profile)
    add_meta, add_precision, add_frames, add_cache_dir, add_calib_cache

Commands with sub-actions use ``add_actions`` (argparse subparsers); a command whose first
argument is usually a file (``edgekit bundle MODEL``, ``edgekit profile MODEL``) names a default
action that is taken when the first word is not an action: ``edgekit bundle model.onnx`` is
``edgekit bundle make model.onnx``, ``edgekit profile m.onnx`` is ``edgekit profile run m.onnx``
(a file really called like an action: write ./verify).

Everything here is argparse-level (no heavy imports): the CLI reference page is generated from
the parser these functions build, so every help text is written for a reader.
"""

import argparse
import sys

from edgekit import runners, targets
from edgekit.errors import ConfigError
from edgekit.meta import PRECISIONS

HELP_FLAGS = ("-h", "--help")


class Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line (argparse already uses 2) and a pointer to --help, takes a
    default sub-action (``add_actions(default=...)``) and the deprecated ``--json FILE``
    (``keep_json_file_spelling``)."""

    default_action = None       # set by add_actions
    legacy_json = None          # the command's name, set by keep_json_file_spelling

    def error(self, message):
        sys.stderr.write("%s: error: %s. See `%s --help`.\n" % (self.prog, message, self.prog))
        raise SystemExit(2)

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        if self.default_action and args and args[0] not in HELP_FLAGS and args[0] not in actions_of(self):
            args.insert(0, self.default_action)
        if self.legacy_json:
            args = rewrite_legacy_json(args, self.legacy_json)
        return super(Parser, self).parse_known_args(args, namespace)


# -- sub-actions ------------------------------------------------------------------------------------
def add_actions(parser, dest="action", default=None, title="actions"):
    """Subparsers for a command's sub-actions; ``default``: the action a first word that is none of
    them (a file) belongs to. Returns the subparsers object (``.add_parser(name, help=...)``)."""
    sub = parser.add_subparsers(dest=dest, metavar="ACTION", title=title, parser_class=Parser)
    parser.default_action = default
    return sub


def add_action(sub, parent, name, help, description=None, **kwargs):
    """One sub-action parser; it remembers its parent (for "it belongs to ..." in errors)."""
    kwargs.setdefault("prog", "%s %s" % (parent.prog, name))        # not derived from a custom usage
    child = sub.add_parser(name, help=help, description=description or help[:1].upper() + help[1:] + ".", **kwargs)
    child.set_defaults(_parser=child)
    child.parent_parser = parent
    return child


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def actions_of(parser):
    action = _subparsers(parser)
    return action.choices if action is not None else {}


def _options(parser):
    return set(s for a in parser._actions for s in a.option_strings)


def unknown_arguments(parser, extras, argv=()):
    """The ConfigError for what ``parser`` (the innermost command) did not take: an option of a
    sibling action says where it belongs; a stray word says what the command takes."""
    prog = parser.prog
    flags = [e.split("=", 1)[0] for e in extras if e.startswith("-") and len(e) > 1]
    if flags:
        flag = flags[0]
        parent = getattr(parser, "parent_parser", None)
        owners = [p.prog for name, p in sorted(actions_of(parent).items()) if flag in _options(p)] if parent else []
        message = "%s is not an option of `%s`" % (flag, prog)
        if owners:
            message += ": it belongs to `%s`" % "`, `".join(owners)
        return ConfigError(message, hint="see `%s --help`" % prog)
    positionals = [a for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]
    takes = "only " + " ".join(a.metavar or a.dest.upper() for a in positionals) if positionals else "no argument"
    hint = "see `%s --help`" % prog
    argv = list(argv)
    for i, word in enumerate(argv[1:], 1):
        if word == extras[0] and argv[i - 1] == "--json":
            hint = "--json takes no FILE (it prints JSON on stdout): to write a file use --report %s" % word
    return ConfigError("unexpected argument(s) %s: `%s` takes %s" % (" ".join(extras), prog, takes), hint=hint)


# -- --json and --report ----------------------------------------------------------------------------
def add_json(parser, what="the result", note=None):
    text = "print %s as JSON on stdout" % what
    parser.add_argument("--json", action="store_true", help=text + ("; " + note if note else ""))


def add_report(parser, what="the result"):
    parser.add_argument("--report", metavar="FILE", help="write %s as JSON to FILE" % what)


def keep_json_file_spelling(parser, command):
    """``command`` took ``--json FILE`` before --report existed: that spelling keeps working for a
    release (see rewrite_legacy_json), with a deprecation line on stderr."""
    parser.legacy_json = command


def _looks_like_report(value):
    return value == "-" or (value.lower().endswith(".json") and not value.startswith("-"))


def rewrite_legacy_json(args, command):
    """The deprecated ``--json FILE`` -> ``--report FILE`` and ``--json -`` -> ``--json``, each with one
    line on stderr. A word after ``--json`` is taken as that FILE only when it is ``-`` or ends in
    ``.json`` (``--json=FILE``: any name); otherwise ``--json`` is the flag and the word stays."""
    out = []
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            out.extend(args[i:])
            break
        value = None
        if word.startswith("--json="):
            value = word[len("--json="):]
        elif word == "--json" and i + 1 < len(args) and _looks_like_report(args[i + 1]):
            value = args[i + 1]
            i += 1
        if value is None:
            out.append(word)
        elif value == "-":
            sys.stderr.write("%s: --json - is deprecated: --json alone prints JSON on stdout\n" % command)
            out.append("--json")
        else:
            sys.stderr.write("%s: --json FILE is deprecated, use --report FILE; --json alone prints JSON on "
                             "stdout\n" % command)
            out.extend(["--report", value])
        i += 1
    return out


# -- typed values -----------------------------------------------------------------------------------
def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an integer" % text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1, got %d" % value)
    return value


def auto_or_count(flag):
    """The type of ``flag`` (``--workers``, ``--chunk``): ``auto`` or an integer >= 1."""
    def parse(text):
        if text == "auto":
            return text
        try:
            return positive_int(text)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError("%s (%s must be auto or an integer >= 1)" % (exc, flag))

    return parse


workers_value = auto_or_count("--workers")
chunk_value = auto_or_count("--chunk")


def target_name(text):
    if text not in targets.TARGETS:
        raise argparse.ArgumentTypeError("unknown target %r (choose one of: %s)" % (text, ", ".join(targets.names())))
    return text


# -- the shared flags -------------------------------------------------------------------------------
def add_target(parser, help="device preset", default=None, default_text=None, required=False,
               flags=("--target", "-t")):
    """A device preset from edgekit.targets; the help lists them and says the default."""
    text = "%s, one of: %s" % (help, ", ".join(targets.names()))
    if default_text or default is not None:
        text += " (default: %s)" % (default_text or default)
    parser.add_argument(*flags, type=target_name, choices=targets.names(), metavar="T", default=default,
                        required=required, help=text)


def add_backend(parser, default=None, default_text=None):
    """--backend: ``auto`` or a backend of the runner registry (its order is auto's)."""
    text = "inference backend: auto (the first installed of %s) or one of them" % ", ".join(runners.names())
    if default_text or default is not None:
        text += " (default: %s)" % (default_text or default)
    parser.add_argument("--backend", choices=runners.choices(), default=default, help=text)


def add_workers(parser, help):
    parser.add_argument("--workers", type=workers_value, metavar="N|auto", help=help)


def add_meta(parser, help="metadata YAML for a model that carries no edgekit block (task, labels, input, "
                          "preprocess, decoder), or only the fields to change (labels, decoder...) over the "
                          "model's own or recognised metadata"):
    parser.add_argument("--meta", metavar="FILE.yaml", help=help)


def add_precision(parser, help, choices=PRECISIONS, required=False):
    parser.add_argument("--precision", choices=tuple(choices), required=required, help=help)


def add_frames(parser, help):
    parser.add_argument("--frames", type=positive_int, metavar="N", help=help)


def add_cache_dir(parser, help="engine cache (default: $EDGEKIT_CACHE_DIR or ~/.cache/edgekit/engines)"):
    parser.add_argument("--cache-dir", metavar="DIR", help=help)


def add_calib_cache(parser):
    parser.add_argument("--calib-cache", metavar="FILE", help="INT8 calibration cache from `edgekit quantize`")
