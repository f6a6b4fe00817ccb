"""The CLI's shared flags (edgekit/commands/_args.py) parse and fail the same in every command that has
them, the deprecated `--json FILE`, and the sub-action spellings old and new. Parse-level only (no model
is run): see tests/test_cli_json.py for --json's output in every command."""

import argparse

import pytest

from edgekit import cli, runners, targets
from edgekit.commands import _args


def walk(parser=None, path=()):
    """(path, parser) for every command and sub-action, recursively (what the CLI reference walks)."""
    parser = parser or cli.build_parser()
    sub = _args._subparsers(parser)
    if path:
        yield path, parser
    if sub is not None:
        for name, child in sub.choices.items():
            for item in walk(child, path + (name,)):
                yield item


def option(parser, flag):
    for action in parser._actions:
        if flag in action.option_strings:
            return action
    return None


def commands_with(flag):
    return sorted(" ".join(path) for path, parser in walk() if option(parser, flag) is not None)


# The minimal arguments each command needs besides the flag under test (so only the flag can fail).
MINIMAL = {
    "build": ["m.onnx"], "bundle make": ["m.onnx", "--out", "b.tar.gz"], "bundle verify": ["b.tar.gz"],
    "bundle install": ["b.tar.gz"], "bundle rollback": [], "bundle list": [], "doctor": [], "export": ["m.pt"],
    "fleet status": ["--broker", "127.0.0.1"], "inspect": ["m.onnx"], "profile run": ["m.onnx"],
    "profile compare": ["a.json", "b.json"], "quantize": ["m.onnx", "--precision", "fp16", "--out", "o.onnx",
                                                          "--target", "x86-cpu"],
    "serve": [], "train": ["shapes-classifier", "--data", "shapes", "--out", "runs/x"], "demo": [],
    "track": ["det.txt", "--out", "tracks.txt"], "dataset merge": ["harvest/nano-01", "--into", "ds"],
}

EXPECTED = {
    "--json": ["build", "bundle install", "bundle list", "bundle make", "bundle rollback", "bundle verify",
               "dataset merge", "doctor", "export", "fleet status", "inspect", "profile compare", "profile run",
               "quantize", "serve", "track", "train"],
    "--report": ["profile run", "quantize"],
    "--target": ["build", "bundle install", "bundle make", "bundle verify", "export", "inspect", "quantize"],
    "--backend": ["profile run", "serve"],
    "--workers": ["profile run", "serve"],
    "--meta": ["bundle make", "export", "profile run", "quantize", "serve"],
    "--precision": ["build", "bundle make", "profile run", "quantize"],
    "--frames": ["profile run", "serve"],
    "--cache-dir": ["build", "bundle install"],
    "--calib-cache": ["build", "bundle make"],
}


def parse(argv):
    return cli.build_parser().parse_args(argv)


def run_main(capsys, argv):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def _argv(path, *flags):
    return path.split() + MINIMAL[path] + list(flags)


@pytest.mark.parametrize("flag", sorted(EXPECTED))
def test_which_commands_have_each_shared_flag(flag):
    assert commands_with(flag) == EXPECTED[flag]


@pytest.mark.parametrize("flag", sorted(EXPECTED))
def test_a_shared_flag_is_the_same_argument_everywhere(flag):
    actions = [option(p, flag) for path, p in walk() if " ".join(path) in EXPECTED[flag]]
    for action in actions:
        first = actions[0]
        assert (type(action), action.type, action.metavar, action.nargs) == \
            (type(first), first.type, first.metavar, first.nargs), flag
        if flag != "--precision":           # quantize offers fp16/int8 only
            assert action.choices == first.choices, flag
        assert action.help and not action.help.endswith("."), flag


# -- --target ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", EXPECTED["--target"])
def test_target_takes_every_preset_and_lists_them(path):
    action = option(dict((" ".join(p), q) for p, q in walk())[path], "--target")
    assert list(action.choices) == targets.names()
    assert all(name in action.help for name in targets.names())
    for name in targets.names():
        assert parse(_argv(path, "--target", name)).target == name
    assert parse(_argv(path, "-t", "x86-cpu")).target == "x86-cpu"


@pytest.mark.parametrize("path", EXPECTED["--target"] + ["profile run --estimate"])
def test_unknown_target_is_one_line_exit_2(path, capsys):
    flag = "--estimate" if path.endswith("--estimate") else "--target"
    path = path.replace(" --estimate", "")
    code, out, err = run_main(capsys, _argv(path, flag, "nope"))
    assert code == 2 and out == "" and len(err) == 1, err
    assert err[0].startswith("edgekit %s: error: argument %s" % (path, flag)) and "unknown target 'nope'" in err[0]
    assert all(name in err[0] for name in targets.names())


def test_quantize_still_requires_a_target(capsys):
    code, _, err = run_main(capsys, ["quantize", "m.onnx", "--precision", "fp16", "--out", "o.onnx"])
    assert code == 2 and len(err) == 1 and "--target" in err[0]


# -- --backend, --workers, --frames, --precision ---------------------------------------------------------
@pytest.mark.parametrize("path", EXPECTED["--backend"])
def test_backend_choices_come_from_the_runner_registry(path, capsys):
    for name in runners.choices():
        assert parse(_argv(path, "--backend", name)).backend == name
    code, _, err = run_main(capsys, _argv(path, "--backend", "tensorflow"))
    assert code == 2 and len(err) == 1 and "invalid choice: 'tensorflow'" in err[0]


@pytest.mark.parametrize("path", EXPECTED["--workers"])
def test_workers_is_typed_once(path, capsys):
    assert parse(_argv(path, "--workers", "auto")).workers == "auto"
    assert parse(_argv(path, "--workers", "3")).workers == 3
    assert parse(_argv(path)).workers is None
    for bad in ("0", "many", "-2"):
        code, _, err = run_main(capsys, _argv(path, "--workers=%s" % bad))
        assert code == 2 and len(err) == 1, err
        assert "argument --workers" in err[0] and "--workers must be auto or an integer >= 1" in err[0]


@pytest.mark.parametrize("path", EXPECTED["--frames"])
def test_frames_is_a_positive_integer_everywhere(path, capsys):
    assert parse(_argv(path, "--frames", "30")).frames == 30
    code, _, err = run_main(capsys, _argv(path, "--frames", "0"))
    assert code == 2 and len(err) == 1 and "argument --frames: must be >= 1" in err[0]


@pytest.mark.parametrize("path", EXPECTED["--precision"])
def test_precision_choices(path, capsys):
    assert parse(_argv(path, "--precision", "int8")).precision == "int8"
    code, _, err = run_main(capsys, _argv(path, "--precision", "fp8"))
    assert code == 2 and len(err) == 1 and "invalid choice: 'fp8'" in err[0]


# -- --json and --report ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", EXPECTED["--json"])
def test_json_is_a_flag_everywhere(path):
    assert parse(_argv(path)).json is False
    assert parse(_argv(path, "--json")).json is True


@pytest.mark.parametrize("path", EXPECTED["--report"])
def test_report_file(path):
    args = parse(_argv(path, "--report", "r.json", "--json"))
    assert args.report == "r.json" and args.json is True


NOTICE = "%s: --json FILE is deprecated, use --report FILE; --json alone prints JSON on stdout"
LEGACY = {"profile run": "edgekit profile", "quantize": "edgekit quantize"}


@pytest.mark.parametrize("path", EXPECTED["--report"])
@pytest.mark.parametrize("old, report, json_flag, notice", [
    (["--json", "out/r.json"], "out/r.json", False, NOTICE),
    (["--json", "R.JSON"], "R.JSON", False, NOTICE),
    (["--json=results.txt"], "results.txt", False, NOTICE),           # with "=" any name is the FILE
    (["--json", "-"], None, True, "%s: --json - is deprecated: --json alone prints JSON on stdout"),
    (["--json"], None, True, None),
    (["--json", "--report", "a.json"], "a.json", True, None),
])
def test_the_old_json_file_spelling_still_works_with_one_deprecation_line(path, old, report, json_flag, notice,
                                                                          capsys):
    args = parse(_argv(path, *old))
    assert (args.report, args.json) == (report, json_flag)
    err = capsys.readouterr().err
    assert err == ("" if notice is None else notice % LEGACY[path] + "\n")


def test_old_spelling_in_the_middle_and_with_the_old_stdout_dash():
    args = parse(["profile", "m.onnx", "--json", "r.json", "--csv", "r.csv"])
    assert args.report == "r.json" and args.csv == "r.csv" and args.model == "m.onnx"
    args = parse(["quantize", "--json", "m.onnx", "--precision", "fp16", "--out", "o.onnx", "--target", "x86-cpu"])
    assert args.json is True and args.model == "m.onnx" and args.report is None     # not a .json: the flag


def test_a_word_after_json_that_is_not_a_report_says_to_use_report(capsys):
    code, _, err = run_main(capsys, ["quantize", "m.onnx", "--json", "out.txt", "--precision", "fp16", "--out",
                                     "o.onnx", "--target", "x86-cpu"])
    assert code == 2 and len(err) == 1
    assert "unexpected argument(s) out.txt" in err[0] and "--report out.txt" in err[0]


def test_rewrite_stops_at_double_dash():
    assert _args.rewrite_legacy_json(["--", "--json", "a.json"], "x") == ["--", "--json", "a.json"]


# -- sub-actions --------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, action, fields", [
    (["bundle", "m.onnx", "--out", "b.tar.gz"], "make", {"model": "m.onnx", "out": "b.tar.gz"}),
    (["bundle", "make", "m.onnx", "--out", "b.tar.gz"], "make", {"model": "m.onnx"}),
    (["bundle", "--target", "x86-cpu", "m.onnx", "--out", "b.tar.gz"], "make", {"model": "m.onnx",
                                                                                 "target": "x86-cpu"}),
    (["bundle", "./verify", "--out", "b.tar.gz"], "make", {"model": "./verify"}),
    (["bundle", "verify", "b.tar.gz", "--target", "jetson-nano"], "verify", {"bundle": "b.tar.gz"}),
    (["bundle", "install", "b.tar.gz", "--root", "r", "--keep", "2"], "install", {"root": "r", "keep": 2}),
    (["bundle", "rollback", "--root", "r", "--if-current", "abc"], "rollback", {"if_current": "abc"}),
    (["bundle", "list", "--root", "r", "--json"], "list", {"json": True}),
    (["profile", "m.onnx", "--batch", "1,2"], "run", {"model": "m.onnx", "batch": "1,2"}),
    (["profile", "run", "m.onnx"], "run", {"model": "m.onnx"}),
    (["profile", "./compare"], "run", {"model": "./compare"}),
    (["profile", "compare", "a.json", "b.json", "--fail-over", "5"], "compare", {"files": ["a.json", "b.json"],
                                                                                 "fail_over": 5.0}),
    (["fleet", "status", "--broker", "h"], "status", {"broker": "h"}),
])
def test_sub_action_spellings_old_and_new(argv, action, fields):
    args = parse(argv)
    assert args.action == action
    for key, value in fields.items():
        assert getattr(args, key) == value, key


@pytest.mark.parametrize("argv, message", [
    (["bundle", "list", "--keep", "2"], "--keep is not an option of `edgekit bundle list`: it belongs to "
                                        "`edgekit bundle install`"),
    (["profile", "m.onnx", "--metric", "p90"], "--metric is not an option of `edgekit profile run`: it belongs "
                                               "to `edgekit profile compare`"),
    (["profile", "compare", "a.json", "b.json", "--batch", "2"], "--batch is not an option of `edgekit profile "
                                                                 "compare`: it belongs to `edgekit profile run`"),
    (["export", "m.pt", "--bogus"], "--bogus is not an option of `edgekit export`"),
    (["bundle", "rollback", "extra"], "unexpected argument(s) extra: `edgekit bundle rollback` takes no argument"),
    (["inspect", "a.onnx", "b.onnx"], "unexpected argument(s) b.onnx: `edgekit inspect` takes only MODEL.onnx"),
])
def test_what_a_sub_action_does_not_take_is_one_line_exit_2(argv, message, capsys):
    code, out, err = run_main(capsys, argv)
    assert code == 2 and out == "" and len(err) == 1, err
    assert err[0].startswith("edgekit %s: error: " % argv[0]) and message in err[0], err


def test_help_of_every_command_and_action(capsys):
    for path, parser in walk():
        with pytest.raises(SystemExit) as exc:
            parse(list(path) + ["--help"])
        assert exc.value.code == 0
        assert "usage:" in capsys.readouterr().out
        for action in parser._actions:
            if action.option_strings and action.help is not argparse.SUPPRESS:
                assert action.help, (path, action.option_strings)


def test_a_bare_command_with_actions_says_what_it_needs(capsys):
    for argv, message in ((["bundle"], "needs a model or an action"), (["fleet"], "needs an action"), (["dataset"], "needs an action"),
                          (["profile"], "needs a model")):
        code, _, err = run_main(capsys, argv)
        assert code == 2 and len(err) == 1 and message in err[0], err
