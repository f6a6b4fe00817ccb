"""`edgekit fleet`."""

from edgekit.errors import NotBuiltYet

HELP = "fleet (not built yet)"


def add_arguments(parser):
    parser.add_argument("rest", nargs="*", help="arguments")


def run(args):
    raise NotBuiltYet("`edgekit fleet` is not built yet", hint="see the README for what works today")
