"""`edgekit train`."""

from edgekit.errors import NotBuiltYet

HELP = "train (not built yet)"


def add_arguments(parser):
    parser.add_argument("rest", nargs="*", help="arguments")


def run(args):
    raise NotBuiltYet("`edgekit train` is not built yet", hint="see the README for what works today")
