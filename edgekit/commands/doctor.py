"""`edgekit doctor`."""

from edgekit.errors import NotBuiltYet

HELP = "doctor (not built yet)"


def add_arguments(parser):
    parser.add_argument("rest", nargs="*", help="arguments")


def run(args):
    raise NotBuiltYet("`edgekit doctor` is not built yet", hint="see the README for what works today")
