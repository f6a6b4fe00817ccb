"""`edgekit build` on the command line: --print-trtexec (no TensorRT needed), --list, --clear, --json,
bundle directories, the out-of-memory child, and the error without TensorRT."""

import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from standins import install  # noqa: E402
from standins.models import tiny_classifier  # noqa: E402

from edgekit import cli  # noqa: E402
from edgekit.commands import build as command  # noqa: E402
from edgekit.engine import memory  # noqa: E402
from edgekit.errors import ModelError  # noqa: E402


def edgekit(*argv):
    return subprocess.run([sys.executable, "-m", "edgekit"] + list(argv), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)


@pytest.fixture
def model(tmp_path):
    return tiny_classifier(tmp_path / "tiny.onnx")


def test_print_trtexec_works_without_tensorrt(model):
    proc = edgekit("build", model, "--print-trtexec", "--target", "jetson-nano", "--workspace", "128",
                   "--shapes", "images:1x3x8x8")
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert line.split()[0].endswith("trtexec")
    assert "--onnx=%s" % model in line and "--fp16" in line and "--workspace=128" in line
    assert "--minShapes=images:1x3x8x8" in line and "--saveEngine=tiny.fp16.engine" in line
    proc = edgekit("build", model, "--print-trtexec", "--target", "jetson-orin-nano", "--workspace", "512")
    assert "--memPoolSize=workspace:512" in proc.stdout


def test_without_tensorrt_one_line_and_exit_2(model):
    proc = edgekit("build", model)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("edgekit build: error: TensorRT")
    assert "python3-libnvinfer" in proc.stderr


def test_missing_model_exit_2():
    proc = edgekit("build", "/nonexistent/model.onnx", "--print-trtexec")
    assert proc.returncode == 2 and "model not found" in proc.stderr


def test_build_list_clear_in_process(tmp_path, monkeypatch, model, capsys):
    install(monkeypatch, api="10")
    cache_dir = str(tmp_path / "cache")
    assert cli.main(["build", model, "--no-isolate", "--cache-dir", cache_dir, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["built"] is True and record["key"]["precision"] == "fp16"
    assert cli.main(["build", model, "--no-isolate", "--cache-dir", cache_dir]) == 0
    out = capsys.readouterr().out
    assert "cache" in out and record["key_hash"] in out
    assert cli.main(["build", "--list", "--json", "--cache-dir", cache_dir]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [e["path"] for e in listing["engines"]] == [record["path"]]
    assert cli.main(["build", "--list", "--cache-dir", cache_dir]) == 0
    table = capsys.readouterr().out
    assert "tiny-fp16-" in table and "NVIDIA Tegra X1" in table
    assert cli.main(["build", "--clear", "--cache-dir", cache_dir]) == 0
    assert "removed 1" in capsys.readouterr().out
    assert not os.path.exists(record["path"])


def test_precision_refusal_is_exit_2(tmp_path, monkeypatch, model, capsys):
    install(monkeypatch, api="8.2")
    code = cli.main(["build", model, "--no-isolate", "--precision", "int8", "--cache-dir", str(tmp_path)])
    assert code == 2
    assert "no fast INT8" in capsys.readouterr().err


def test_oom_killed_child_becomes_advice():
    kill = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    with pytest.raises(memory.MemoryShortage) as exc:
        command.run_child(kill)
    assert "swap" in str(exc.value) and "multi-user.target" in str(exc.value)
    assert command.run_child([sys.executable, "-c", "raise SystemExit(3)"]) == 3


def test_child_argv_carries_every_option(model):
    args = cli.build_parser().parse_args(["build", model, "--workspace", "64", "--shapes", "a:1x2",
                                          "--timing-cache", "t", "--cache-dir", "c", "--force", "--json"])
    argv = command.child_argv(args, model, "fp16", None)
    assert argv == ["build", model, "--precision", "fp16", "--no-isolate", "--workspace", "64",
                    "--timing-cache", "t", "--cache-dir", "c", "--shapes", "a:1x2", "--force", "--json"]
    reparsed = cli.build_parser().parse_args(argv)
    assert reparsed.no_isolate and reparsed.shapes == ["a:1x2"]


def test_bundle_directory_resolves_its_model_and_calibration_cache(tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "model").mkdir(parents=True)
    onnx = tiny_classifier(bundle / "model" / "m.onnx")
    (bundle / "model" / "m.calib.cache").write_text("TRT-8201-EntropyCalibration2\n")
    assert command.resolve_model(str(bundle), None) == (onnx, str(bundle / "model" / "m.calib.cache"), None)
    tiny_classifier(bundle / "other.onnx")
    with pytest.raises(ModelError, match="holds 2 ONNX models"):
        command.resolve_model(str(bundle), None)
    (bundle / "manifest.json").write_text(json.dumps({"model": "other.onnx", "calib_cache": None,
                                                      "precision": "int8"}))
    assert command.resolve_model(str(bundle), None) == (str(bundle / "other.onnx"), None, "int8")
    (bundle / "manifest.json").write_text("{broken")
    with pytest.raises(ModelError, match="manifest"):
        command.resolve_model(str(bundle), None)


def test_calib_cache_with_fp16_is_refused_on_the_command_line(model, tmp_path):
    calib = tmp_path / "c.cache"
    calib.write_text("TRT-8201-EntropyCalibration2\n")
    proc = edgekit("build", model, "--precision", "fp16", "--calib-cache", str(calib), "--print-trtexec")
    assert proc.returncode == 2 and "only used with --precision int8" in proc.stderr


def test_print_trtexec_asks_for_shapes_of_a_dynamic_input(tmp_path):
    model = tiny_classifier(tmp_path / "dyn.onnx", dynamic_batch=True)
    proc = edgekit("build", model, "--print-trtexec")
    assert proc.returncode == 2
    assert "input images has dynamic dimensions ['N', 3, 8, 8]" in proc.stderr
    # concrete numbers; a dynamic batch varies over the profile
    assert "--shapes images:MIN/OPT/MAX, e.g. --shapes images:1x3x8x8/4x3x8x8/8x3x8x8" in proc.stderr
    proc = edgekit("build", model, "--print-trtexec", "--shapes", "input:1x3x8x8")
    assert proc.returncode == 2 and "not inputs of the model" in proc.stderr


def _console_examples():
    """The `$ edgekit ...` examples of the first console block of docs/board/build.md, with their
    printed lines."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "docs", "board", "build.md")) as handle:
        text = handle.read()
    block = text.split("```console\n", 1)[1].split("```", 1)[0]
    examples = []
    for line in block.splitlines():
        if line.startswith("$ "):
            examples.append((line[2:], []))
        elif examples:
            examples[-1][1].append(line)
    return root, examples


def test_readme_console_examples_print_what_they_say():
    import shlex

    root, examples = _console_examples()
    assert len(examples) == 3
    for line, expected in examples:
        argv = shlex.split(line)
        assert argv[0] == "edgekit"
        proc = subprocess.run([sys.executable, "-m", "edgekit"] + argv[1:], cwd=root, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True)
        printed = set((proc.stdout + proc.stderr).splitlines())
        assert set(expected) <= printed, (line, expected, printed)
