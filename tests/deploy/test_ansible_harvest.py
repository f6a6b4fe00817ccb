"""deploy/ansible/harvest.yml, run for real against two local "boards" (local connection): each
board's harvest (written by the real Harvester) comes home as harvest/<board>/, by rsync
(ansible.posix.synchronize) and by fetch; a board without a harvest is said and skipped; with
edgekit_harvest_clear the board's copied files go and its data.yaml stays."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edgekit.fsutil import sha256_file
from edgekit.recordings.harvest import Harvester

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE = os.path.join(ROOT, "deploy", "ansible")
PLAYBOOK = shutil.which("ansible-playbook")

pytestmark = pytest.mark.skipif(PLAYBOOK is None, reason="ansible-playbook is not installed (apt install ansible)")


def _harvest(folder, n):
    h = Harvester(folder, ["person", "car"], "det-v1", every_s=0, log=lambda s: None)
    for i in range(n):
        frame = np.full((48, 64, 3), 20 * i, np.uint8)
        h.offer(frame, {"detections": [{"index": i % 2, "score": 0.4, "box": [5, 5, 30, 40]}]}, t=100.0 + i,
                camera="cam")
    assert h.flush()
    h.close()


@pytest.fixture
def boards(tmp_path):
    roots = {}
    for name, n in (("board1", 3), ("board2", 2), ("board3", 0)):
        root = tmp_path / name
        root.mkdir()
        if n:
            _harvest(str(root / "harvest"), n)
        roots[name] = str(root)
    return roots


def _run(tmp_path, boards, **extra):
    lines = ["[jetsons]"]
    for name, root in boards.items():
        lines.append("%s ansible_connection=local edgekit_root=%s" % (name, root))
    lines += ["", "[jetsons:vars]", "ansible_python_interpreter=%s" % (shutil.which("python3") or sys.executable)]
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("\n".join(lines) + "\n")
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCAL_TEMP=str(tmp_path / "at"),
               ANSIBLE_REMOTE_TEMP=str(tmp_path / "rt"))
    argv = [PLAYBOOK, "-i", str(inventory), os.path.join(ANSIBLE, "harvest.yml"),
            "-e", "edgekit_harvest_dest=%s" % (tmp_path / "home")]
    for key, value in extra.items():
        argv += ["-e", "edgekit_harvest_%s=%s" % (key, value)]
    proc = subprocess.run(argv, cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=240)
    return proc.returncode, proc.stdout


def _files(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            path = os.path.join(root, f)
            out[os.path.relpath(path, folder)] = sha256_file(path)
    return out


@pytest.mark.parametrize("method", ["synchronize", "fetch"])
def test_harvests_come_home_per_board(tmp_path, boards, method):
    if method == "synchronize" and shutil.which("rsync") is None:
        pytest.skip("rsync is not installed (synchronize needs it on both ends)")
    code, out = _run(tmp_path, boards, method=method)
    assert code == 0, out
    home = tmp_path / "home"
    assert sorted(os.listdir(str(home))) == ["board1", "board2"]
    for name in ("board1", "board2"):
        assert _files(str(home / name)) == _files(os.path.join(boards[name], "harvest"))
    assert len(os.listdir(str(home / "board1" / "images"))) == 3
    assert "board3 has no harvest" in out and "board1: 3 image(s)" in out
    # and the merge takes them as they came
    from edgekit import cli

    assert cli.main(["dataset", "merge", str(home / "board1"), str(home / "board2"), "--into",
                     str(tmp_path / "ds")]) == 0


def test_clear_frees_the_board_after_the_copy(tmp_path, boards):
    code, out = _run(tmp_path, boards, method="fetch", clear="true")
    assert code == 0, out
    left = _files(os.path.join(boards["board1"], "harvest"))
    assert list(left) == ["data.yaml"]
    assert len(os.listdir(str(tmp_path / "home" / "board1" / "images"))) == 3


def test_unknown_method_is_refused(tmp_path, boards):
    code, out = _run(tmp_path, boards, method="scp")
    assert code != 0 and "must be synchronize or fetch" in out
