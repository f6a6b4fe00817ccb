import subprocess
import sys

import pytest

from edgekit import cli
from edgekit.errors import ConfigError, ParityError, UserError


def run_cli(*argv):
    return subprocess.run([sys.executable, "-m", "edgekit"] + list(argv), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)


def test_help_lists_every_command():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for name, _ in cli.COMMANDS:
        assert name in proc.stdout


@pytest.mark.parametrize("name", [name for name, _ in cli.COMMANDS])
def test_each_command_has_help(name):
    parser = cli.build_parser()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([name, "--help"])
    assert exc.value.code == 0


def test_unknown_command_is_one_line_and_exit_2():
    proc = run_cli("trian")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("edgekit: error:") and "invalid choice" in lines[-1]
    assert "Traceback" not in proc.stderr


def test_no_command_prints_help_and_exits_2():
    proc = run_cli()
    assert proc.returncode == 2
    assert "usage:" in proc.stdout


def test_user_error_formats_one_line_with_hint():
    err = ConfigError("unknown target 'nano'\n", hint="choose one of: jetson-nano, x86-cpu.")
    assert err.one_line() == "unknown target 'nano'. Choose one of: jetson-nano, x86-cpu."
    assert "\n" not in err.one_line()
    assert err.exit_code == 2


def test_parity_error_keeps_every_failure():
    err = ParityError("2 outputs differ", failures=[{"output": "a"}, {"output": "b"}])
    assert isinstance(err, UserError) and len(err.failures) == 2


def test_main_turns_user_error_into_exit_2(monkeypatch, capsys):
    import types

    module = types.ModuleType("fake_cmd")
    module.HELP = "fake"
    module.add_arguments = lambda p: p.add_argument("--x")

    def run(args):
        raise ConfigError("bad --x value %r" % args.x, hint="use a number")

    module.run = run
    monkeypatch.setitem(sys.modules, "fake_cmd", module)
    monkeypatch.setattr(cli, "COMMANDS", (("fake", "fake_cmd"),))
    assert cli.main(["fake", "--x", "q"]) == 2
    err = capsys.readouterr().err
    assert err == "edgekit fake: error: bad --x value 'q'. Use a number.\n"
