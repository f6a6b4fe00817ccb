"""OPENBLAS_CORETYPE=ARMV8 is set by edgekit itself on an aarch64 Tegra board before numpy loads (numpy
1.19.5's aarch64 OpenBLAS dies with SIGILL on the Nano without it: numpy issues 18131, 18468), and only there."""

import os
import subprocess
import sys

from edgekit import board_environment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_set_on_an_aarch64_tegra_only(tmp_path):
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64\n")
    env = {}
    assert board_environment(env, machine="aarch64", release_file=str(release))
    assert env == {"OPENBLAS_CORETYPE": "ARMV8"}
    for machine, path in (("x86_64", str(release)), ("aarch64", str(tmp_path / "absent"))):
        env = {}
        assert not board_environment(env, machine=machine, release_file=path) and env == {}


def test_a_value_the_user_chose_is_kept(tmp_path):
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R32 (release), REVISION: 7.1\n")
    env = {"OPENBLAS_CORETYPE": "CORTEXA57"}
    assert not board_environment(env, machine="aarch64", release_file=str(release))
    assert env["OPENBLAS_CORETYPE"] == "CORTEXA57"


def test_importing_edgekit_does_not_import_numpy():
    """So the variable is in place before anything that follows loads numpy."""
    code = "import sys, edgekit, edgekit.cli; print('numpy' in sys.modules)"
    out = subprocess.check_output([sys.executable, "-c", code], cwd=ROOT, universal_newlines=True,
                                  env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.strip() == "False"
