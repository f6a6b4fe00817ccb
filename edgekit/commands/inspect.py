"""`edgekit inspect`."""

from edgekit.errors import NotBuiltYet

HELP = "inspect (not built yet)"


def add_arguments(parser):
    parser.add_argument("rest", nargs="*", help="arguments")


def run(args):
    raise NotBuiltYet("`edgekit inspect` is not built yet", hint="see the README for what works today")
