"""The device side on a real CPython 3.6 (JetPack 4.6's Python), not only vermin's reading of it.

`make test-py36` (see the Makefile) builds .venv-py36 once with pip 21.3.1: `pip install .`
through the flit_core build backend, the base dependencies resolved to their last 3.6 releases
(numpy 1.19.5, paho-mqtt 1.6.1, PyYAML 6.0.1, opencv-python-headless 4.6.0.66), runs the
installed `edgekit --help` and `edgekit serve --help`, then the device-side test files under
pytest 7.0.1 with onnxruntime 1.10.0. This test runs that target so that `make test` covers it,
and checks that 3.6 really ran and that pip picked the 3.6 releases.
"""

import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY36 = os.environ.get("EDGEKIT_PY36", "/root/.pyenv/versions/3.6.15/bin/python3.6")
VENV = os.path.join(ROOT, ".venv-py36")
# the releases pip must pick on 3.6 from the open ranges in pyproject.toml
EXPECTED = {"numpy": "1.19.5", "paho-mqtt": "1.6.1", "PyYAML": "6.0.1", "opencv-python-headless": "4.6.0.66"}


def _clean_env():
    """The outer pytest's variables (xdist worker, addopts, current test) must not leak into the 3.6 run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONPATH", "MAKEFLAGS", "MFLAGS"))}
    env.pop("VIRTUAL_ENV", None)
    return env


def _tail(text, lines=60):
    return "\n".join(text.splitlines()[-lines:])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_device_side_installs_and_passes_on_python36():
    if not os.path.exists(PY36):
        pytest.skip("no CPython 3.6 at %s (set EDGEKIT_PY36)" % PY36)
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    proc = subprocess.run([make, "--no-print-directory", "test-py36", "PY36=" + PY36], cwd=ROOT, env=_clean_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=840)
    assert proc.returncode == 0, "make test-py36 failed:\n" + _tail(proc.stdout)
    summary = proc.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) > 300 and "failed" not in summary and "error" not in summary, \
        _tail(proc.stdout)

    python = os.path.join(VENV, "bin", "python")
    version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout.strip()
    assert version == "3.6"
    listing = subprocess.run([python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
                             stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    installed = dict(line.split("==", 1) for line in listing.split() if "==" in line)
    for name, want in EXPECTED.items():
        assert installed.get(name) == want, (name, installed.get(name))
    assert installed.get("pip") == "21.3.1" and installed.get("edgekit"), installed
