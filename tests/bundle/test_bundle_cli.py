"""`edgekit bundle` through the CLI: both forms (make / device actions), and bad input as one
error line with exit 2."""

import json
import os

import pytest

from bundle_helpers import make_classifier, rewrite, run_cli
from edgekit.cli import main


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err):
    lines = [line for line in err.splitlines() if line.startswith("edgekit bundle: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_make_verify_install_rollback_list(tmp_path, capsys):
    model = make_classifier(tmp_path / "shapes.onnx")
    out = tmp_path / "shapes.tar.gz"
    code, stdout, _ = _run(capsys, "bundle", model, "--target", "x86-cpu", "--out", out, "--json")
    assert code == 0 and json.loads(stdout)["target"] == "x86-cpu"
    code, stdout, _ = _run(capsys, "bundle", "verify", out, "--target", "x86-cpu")
    assert code == 0 and stdout.startswith("ok: ") and "every sha256 matches" in stdout
    root = tmp_path / "root"
    code, stdout, err = _run(capsys, "bundle", "install", out, "--root", root, "--target", "x86-cpu", "--json")
    first = json.loads(stdout)
    assert code == 0 and first["engine_status"] == "not-needed" and "current -> releases/" in err
    model2 = make_classifier(tmp_path / "shapes2.onnx", scale=2.0)
    out2 = tmp_path / "shapes2.tar.gz"
    assert _run(capsys, "bundle", model2, "--target", "x86-cpu", "--out", out2)[0] == 0
    code, stdout, _ = _run(capsys, "bundle", "install", out2, "--root", root, "--target", "x86-cpu")
    assert code == 0 and stdout.startswith("installed ")
    code, stdout, _ = _run(capsys, "bundle", "list", "--root", root, "--json")
    assert [r["current"] for r in json.loads(stdout)] == [False, True]
    code, stdout, _ = _run(capsys, "bundle", "rollback", "--root", root)
    assert code == 0 and stdout.startswith("current: %s" % first["bundle_id"])
    code, stdout, _ = _run(capsys, "bundle", "list", "--root", root)
    assert first["bundle_id"] in [line.split()[0] for line in stdout.splitlines() if "*" in line]


def test_bad_inputs_are_one_line_exit_2(tmp_path, capsys, bundle_for):
    root = tmp_path / "root"
    good = bundle_for("x86-cpu", scale=1.0)
    assert _run(capsys, "bundle", "install", good, "--root", root, "--target", "x86-cpu")[0] == 0
    live = os.readlink(str(root / "current"))
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00garbage")
    tampered = rewrite(bundle_for("x86-cpu", scale=2.0), tmp_path / "t.tar.gz",
                       lambda f: f.update({"model.onnx": f["model.onnx"][:-1] + b"\x00"}))
    no_manifest = rewrite(bundle_for("x86-cpu", scale=3.0), tmp_path / "n.tar.gz", lambda f: f.pop("manifest.json"))
    nano = bundle_for("jetson-nano", scale=4.0)
    cases = [
        (["verify", corrupt], "corrupt or truncated tarball"),
        (["install", corrupt, "--root", root], "corrupt or truncated tarball"),
        (["install", tampered, "--root", root], "model.onnx fails its sha256 check"),
        (["install", no_manifest, "--root", root], "has no manifest.json"),
        (["install", nano, "--root", root, "--target", "x86-cpu"], "is for jetson-nano, not for this x86-cpu"),
        (["install", nano, "--root", root, "--target", "jetson-nano"], "engine build failed for bundle"),
        (["verify", tmp_path / "missing.tar.gz"], "bundle not found"),
        (["rollback", "--root", root], "no earlier release to roll back to"),
        (["verify", good, "--keep", "2"], "--keep is not an option of `edgekit bundle verify`"),
        (["install"], "takes one bundle, got 0"),
    ]
    for args, message in cases:
        code, stdout, err = _run(capsys, "bundle", *args)
        assert code == 2, (args, err)
        assert message in _one_error_line(err), (args, err)
        assert os.readlink(str(root / "current")) == live
    assert len(os.listdir(str(root / "releases"))) == 1


def test_no_build_installs_a_tensorrt_bundle_and_says_so(tmp_path, capsys, bundle_for):
    root = tmp_path / "root"
    code, stdout, err = _run(capsys, "bundle", "install", bundle_for("jetson-nano"), "--root", root,
                             "--target", "jetson-nano", "--no-build", "--json")
    assert code == 0 and json.loads(stdout)["engine_status"] == "skipped"
    assert "engine not built (--no-build)" in err


def test_model_named_like_an_action_and_subprocess_entry_point(tmp_path):
    model = make_classifier(tmp_path / "verify")        # a model file literally called "verify"
    os.rename(model, str(tmp_path / "verify.onnx"))
    code, stdout, stderr = run_cli("bundle", str(tmp_path / "verify.onnx"), "--target", "x86-cpu",
                                   "--out", str(tmp_path / "v.tar.gz"))
    assert code == 0 and "wrote " in stdout, stderr
    code, stdout, stderr = run_cli("bundle", "verify", str(tmp_path / "v.tar.gz"))
    assert code == 0 and "(target not checked)" in stdout
    assert "warning: target not checked" in stderr


@pytest.mark.parametrize("args, message", [
    (["bundle", "m.onnx"], "needs --out NAME.tar.gz"),
    (["bundle", "rollback", "extra"], "takes no argument"),
    (["bundle", "list", "--out", "x.tar.gz"], "--out is not an option of `edgekit bundle list`"),
])
def test_usage_errors(capsys, args, message):
    code, _, err = _run(capsys, *args)
    assert code == 2 and message in _one_error_line(err)


@pytest.mark.system_python
def test_device_commands_on_system_python_without_torch_or_onnx(tmp_path, bundle_for):
    """Debian's /usr/bin/python3 has neither torch nor onnx nor onnxruntime: like the board."""
    python = "/usr/bin/python3"
    if not os.path.exists(python):
        pytest.skip("no /usr/bin/python3")
    first, second = bundle_for(scale=1.0), bundle_for(scale=2.0)
    root = str(tmp_path / "root")
    for bundle in (first, second):
        code, out, err = run_cli("bundle", "install", bundle, "--root", root, "--target", "x86-cpu", python=python)
        assert code == 0, err
    code, out, err = run_cli("bundle", "rollback", "--root", root, "--json", python=python)
    assert code == 0 and json.loads(out)["changed"], err
    code, out, err = run_cli("bundle", "verify", tmp_path / "missing.tar.gz", python=python)
    assert code == 2 and err.strip().splitlines()[-1].startswith("edgekit bundle: error: bundle not found")


def test_wheel_in_the_bundle_installs_offline(tmp_path, bundle_for):
    import subprocess
    import sys
    import zipfile

    from bundle_helpers import manifest_of, read_members

    bundle = bundle_for(with_wheel=True)
    name = manifest_of(bundle)["wheel"]
    wheel = tmp_path / name.split("/")[-1]
    wheel.write_bytes(read_members(bundle)[name])
    assert zipfile.is_zipfile(str(wheel))
    target = tmp_path / "site"
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                           "--target", str(target), str(wheel)])
    out = subprocess.check_output([sys.executable, "-c", "import edgekit, edgekit.bundle; print(edgekit.__file__)"],
                                  env=dict(os.environ, PYTHONPATH=str(target)), cwd=str(tmp_path),
                                  universal_newlines=True)
    assert out.strip().startswith(str(target))
