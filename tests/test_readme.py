"""Documentation that runs: every `edgekit ...` command the README shows parses with the real CLI,
and the README's two commands are the Makefile's."""

import os
import re
import shlex

import pytest

from edgekit import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme():
    with open(os.path.join(ROOT, "README.md")) as handle:
        return handle.read()


def command_lines():
    """`edgekit ...` lines from the README's shell blocks (synopses with [ ] or | are left out)."""
    lines = []
    text = readme()
    blocks = re.findall(r"```(?:sh|bash|console|shell)\n(.*?)```", text, re.S)
    # and the examples of the command tour table: `edgekit ...` spans in table rows
    blocks.append("\n".join(re.findall(r"\| `(edgekit [^`]+)` \|[ \t]*$", text, re.M)))
    for block in blocks:
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("&&")[0].strip()
            if line.startswith("$ "):
                line = line[2:]
            if line.startswith("sudo "):
                line = line[5:]
            if not line.startswith("edgekit ") or "[" in line or "|" in line.split("#")[0] or "..." in line:
                continue
            argv = shlex.split(line, comments=True)
            if len(argv) > 1 and argv[1].endswith(":"):       # printed output ("edgekit train: error: ...")
                continue
            lines.append(argv[1:])
    return lines


def test_readme_shows_many_commands():
    names = set(argv[0] for argv in command_lines() if argv)
    missing = set(name for name, _ in cli.COMMANDS) - names
    assert not missing, "README shows no example of: %s" % sorted(missing)


@pytest.mark.parametrize("argv", command_lines(), ids=lambda a: " ".join(a)[:60])
def test_readme_command_parses(argv):
    parser = cli.build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as exc:
        assert exc.code == 0, "README command does not parse: edgekit %s" % " ".join(argv)


def test_two_commands_come_first_and_exist_in_the_makefile():
    text = readme()
    assert text.index("make demo") < text.index("## A tour of every command")
    with open(os.path.join(ROOT, "Makefile")) as handle:
        makefile = handle.read()
    assert "\ndemo:" in makefile and "\ntest:" in makefile
    with open(os.path.join(ROOT, ".ci", "run")) as handle:
        assert "make test" in handle.read()
