"""`edgekit quantize`."""

from edgekit.errors import NotBuiltYet

HELP = "quantize (not built yet)"


def add_arguments(parser):
    parser.add_argument("rest", nargs="*", help="arguments")


def run(args):
    raise NotBuiltYet("`edgekit quantize` is not built yet", hint="see the README for what works today")
