"""The on-device suite (jetson/) as seen from here: collected and skipped with the reason, runnable
against the STAND-INS to test the suite's own code, Python 3.6 clean, and setup.sh a valid script.
None of this verifies anything on hardware."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JETSON = os.path.join(ROOT, "jetson")


def selftest(tmp_path, **env):
    out = str(tmp_path / "report.md")
    proc = subprocess.run([sys.executable, os.path.join(JETSON, "selftest"), "--out", out], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          env=dict(os.environ, **env))
    with open(out) as handle:
        return proc, handle.read()


def test_suite_is_collected_and_skipped_here_with_the_reason(tmp_path, monkeypatch):
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("EDGEKIT_SELFTEST"))
    monkeypatch.setattr(os, "environ", env)
    proc, report = selftest(tmp_path)
    assert proc.returncode == 3, proc.stdout            # nothing ran
    assert "0 passed, 0 failed, 13 skipped" in report
    assert "no TensorRT Python bindings here (python3-libnvinfer); run jetson/selftest on a Jetson" in report
    assert "Nothing ran" in report and "### doctor" in report


@pytest.mark.parametrize("api", ["8.2", "10"])
def test_suite_code_runs_against_the_standins(tmp_path, api):
    proc, report = selftest(tmp_path, EDGEKIT_SELFTEST_STANDIN="1", EDGEKIT_SELFTEST_STANDIN_API=api)
    assert proc.returncode == 0, proc.stdout
    assert "**STAND-IN run**" in report and "nothing here was measured on hardware" in report
    assert "8 passed, 0 failed, 5 skipped" in report
    assert "**trtexec not checked**" in report and "**real-sized model not checked**" in report
    assert '"zero_copy"' in report and '"compute_ms"' in report
    assert '"samples"' not in report and '"Conv_0"' in report          # per-layer times via IProfiler


def test_runner_vs_trtexec_is_reported_with_both_figures(tmp_path):
    """The comparison's own code, with a trtexec stand-in printing TensorRT 8.2's summary line
    (samples/common/sampleReporting.cpp: "GPU Compute Time: min = ... ms, max = ..., mean = ..., median = ...")."""
    trtexec = tmp_path / "trtexec"
    trtexec.write_text("#!/bin/sh\necho '[I] GPU Compute Time: min = 1.5 ms, max = 2.5 ms, mean = 2.0 ms, "
                       "median = 2.0 ms, percentile(99%) = 2.4 ms'\n")
    trtexec.chmod(0o755)
    proc, report = selftest(tmp_path, EDGEKIT_SELFTEST_STANDIN="1", EDGEKIT_TRTEXEC=str(trtexec),
                            PYTEST_ADDOPTS="-k trtexec")
    assert proc.returncode == 0, proc.stdout
    assert "### runner vs trtexec (same engine, tiny.onnx)" in report
    assert "trtexec GPU compute mean 2.000 ms, edgekit runner compute mean 2.000 ms: ratio 1.000" in report
    assert "goal within 5%: met" in report


def test_parity_not_checked_is_said_and_is_not_green():
    import importlib.util
    from importlib.machinery import SourceFileLoader

    loader = SourceFileLoader("selftest_script", os.path.join(JETSON, "selftest"))
    selftest_module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(selftest_module)
    rows = [("test_tensorrt_matches_the_cpu_reference[copies]", "skipped", "parity not checked: no CPU reference")]
    rows.append(("test_build_engine_then_serve_it_from_the_cache", "passed", ""))
    figures = {"not_checked": {"parity": "no CPU reference for tiny.onnx: no onnxruntime"}}
    assert selftest_module.exit_code(0, rows, figures) == 4
    assert selftest_module.exit_code(0, rows, {}) == 0
    assert selftest_module.exit_code(0, rows[:1], {}) == 3
    text = selftest_module.markdown(rows, figures, 4)
    assert "- **parity not checked**: no CPU reference for tiny.onnx" in text and "exit status: 4" in text


def test_jetson_python_files_are_python36():
    vermin = shutil.which("vermin") or os.path.join(os.path.dirname(sys.executable), "vermin")
    files = [os.path.join(JETSON, "selftest"), os.path.join(JETSON, "camera_check.py"),
             os.path.join(JETSON, "tests", "conftest.py"), os.path.join(JETSON, "tests", "test_on_device.py")]
    proc = subprocess.run([vermin, "--target=3.6-", "--no-tips", "--violations", "--eval-annotations",
                           "--no-parse-comments"] + files, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    assert proc.returncode == 0, proc.stdout


def test_setup_script_dry_run():
    script = os.path.join(JETSON, "setup.sh")
    assert subprocess.run(["bash", "-n", script]).returncode == 0
    proc = subprocess.run(["bash", script, "--dry-run"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    assert proc.returncode == 0, proc.stdout
    out = proc.stdout
    for expected in ("python3-libnvinfer", "pip==21.3.1", "pycuda==2021.1", "--no-build-isolation", "--no-deps",
                     "fallocate -l 4G", "-m venv --system-site-packages /opt/edgekit",
                     "OPENBLAS_CORETYPE=ARMV8 >> /etc/default/edgekit"):      # the unit's EnvironmentFile
        assert expected in out
    assert "--user" not in out and "dry run: nothing was changed" in out
    commands = [line for line in out.splitlines() if line.startswith("+ ")]
    assert not [c for c in commands if "opencv-python" in c]        # never shadow JetPack's cv2
    refused = subprocess.run(["bash", script, "--bogus"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
    assert refused.returncode == 2 and "unknown option --bogus" in refused.stderr


def test_camera_check_lists_csi_and_usb(tmp_path):
    sys.path.insert(0, JETSON)
    try:
        import camera_check
    finally:
        sys.path.remove(JETSON)
    for node, name in (("video0", "vi-output, imx219 6-0010"), ("video1", "HD Pro Webcam C920")):
        (tmp_path / "dev").mkdir(exist_ok=True)
        (tmp_path / "dev" / node).write_text("")
        (tmp_path / "sys" / "class" / "video4linux" / node).mkdir(parents=True)
        (tmp_path / "sys" / "class" / "video4linux" / node / "name").write_text(name + "\n")
    cams = camera_check.list_cameras(str(tmp_path))
    assert [(c["device"], c["kind"], c["sensor"]) for c in cams] == [("/dev/video0", "csi", 0),
                                                                     ("/dev/video1", "v4l2", None)]
    pipeline = camera_check.CSI_PIPELINE.format(sensor=0, width=1280, height=720, fps=30)
    assert "appsink drop=true max-buffers=1 sync=false" in pipeline
