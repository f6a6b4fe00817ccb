"""The Ansible rollout, run for real against localhost (local connection) on two "boards" (two
temporary roots): canary first then batches, health checks on /readyz, automatic rollback.

Each board runs a real `edgekit serve` (ONNX Runtime, synthetic camera, HTTP /readyz) on
ROOT/current; the restart command is a small script standing in for `systemctl restart edgekit`
(no systemd here). A model ONNX Runtime cannot load keeps the daemon from ever getting ready. Three playbook runs: a good bundle reaches both boards, canary first; a
bundle whose model cannot load fails the canary's health check, is rolled back there, and never
reaches the second board; rollback.yml takes the whole fleet back one release.
"""

import os
import shutil
import subprocess
import sys
import signal

import numpy as np
import pytest

from edgekit.desktop.bundle_make import make_bundle
from _net import free_port as _free_port
from standins.models import tiny_classifier

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE = os.path.join(ROOT, "deploy", "ansible")
PLAYBOOK = shutil.which("ansible-playbook")

pytestmark = pytest.mark.skipif(PLAYBOOK is None, reason="ansible-playbook is not installed (apt install ansible)")


def _model(path, broken=False):
    """A tiny classifier with edgekit metadata; ``broken``: valid metadata, but a MatMul whose
    weight shape ONNX Runtime rejects at load time (what a bad model looks like to the daemon)."""
    shape = [2, 2] if broken else [3, 3]
    return tiny_classifier(path, labels=["a", "b", "c"], conv=0, head="matmul", weights=np.ones(shape), ir_version=8)


RESTART = """#!/bin/sh
# restart.sh ROOT: stop this board's `edgekit serve` (pid file), start it again on ROOT/current
pidfile="$1/serve.pid"
if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
fi
setsid %s -m edgekit serve --config "$1/serve.yaml" >> "$1/serve.log" 2>&1 < /dev/null &
echo $! > "$pidfile"
"""

SERVE_YAML = """device_id: %s
model:
  path: current/model.onnx
  backend: onnxruntime
  threads: 1
source:
  uri: synthetic://?width=64&height=48&fps=5
outputs:
  jsonl:
    path: null
  http:
    listen: 127.0.0.1:%d
"""



@pytest.fixture
def boards(tmp_path):
    """Two boards: a root each with a daemon config (real `edgekit serve`, ONNX Runtime, synthetic
    camera, HTTP on its own port) and a restart script. Daemons are stopped at the end."""
    script = tmp_path / "restart.sh"
    script.write_text(RESTART % sys.executable)
    roots = {}
    for name in ("board1", "board2"):
        root = tmp_path / name
        root.mkdir()
        port = _free_port()
        (root / "serve.yaml").write_text(SERVE_YAML % (name, port))
        roots[name] = {"root": str(root), "url": "http://127.0.0.1:%d/readyz" % port,
                       "restart": "sh %s %s" % (script, root)}
    yield roots
    for board in roots.values():
        pidfile = os.path.join(board["root"], "serve.pid")
        if os.path.exists(pidfile):
            with open(pidfile) as handle:
                pid = int(handle.read().strip())
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _inventory(tmp_path, boards):
    edgekit = "%s -m edgekit" % sys.executable
    lines = ["[jetsons]"]
    for name, board in boards.items():
        lines.append("%s ansible_connection=local edgekit_root=%s edgekit_health_url=%s edgekit_restart_command='%s'"
                     % (name, board["root"], board["url"], board["restart"]))
    lines += ["", "[jetsons:vars]", "ansible_python_interpreter=%s" % (shutil.which("python3") or sys.executable),
              "edgekit_bin='%s'" % edgekit, "edgekit_target=x86-cpu", "edgekit_keep=3",
              "edgekit_health_retries=5", "edgekit_health_delay=1"]
    path = tmp_path / "inventory.ini"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _playbook(tmp_path, inventory, bundle=None, playbook="rollout.yml"):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCAL_TEMP=str(tmp_path / "at"),
               ANSIBLE_REMOTE_TEMP=str(tmp_path / "rt"), ANSIBLE_ROLES_PATH=os.path.join(ANSIBLE, "roles"),
               PYTHONPATH=ROOT)
    extra = ["-e", "edgekit_bundle=%s" % bundle] if bundle else []
    proc = subprocess.run([PLAYBOOK, "-i", inventory, os.path.join(ANSIBLE, playbook)] + extra, cwd=ANSIBLE, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=240)
    return proc.returncode, proc.stdout


def _current(root):
    return os.path.basename(os.readlink(os.path.join(root, "current")))


def _bundle(tmp_path, name, broken=False):
    out = str(tmp_path / ("%s.tar.gz" % name))
    return out, make_bundle(_model(tmp_path / ("%s.onnx" % name), broken), out, target="x86-cpu")["bundle_id"]


def test_rollout_canary_batches_and_rollback(tmp_path, boards):
    roots = dict((name, board["root"]) for name, board in boards.items())
    first, first_id = _bundle(tmp_path, "first")
    good, good_id = _bundle(tmp_path, "good")
    bad, bad_id = _bundle(tmp_path, "bad", broken=True)
    for root in roots.values():        # the release the boards run before the rollout
        subprocess.check_call([sys.executable, "-m", "edgekit", "bundle", "install", first, "--root", root,
                               "--target", "x86-cpu"], cwd=ROOT, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    inventory = _inventory(tmp_path, boards)

    code, out = _playbook(tmp_path, inventory, good)
    assert code == 0, out
    assert all(_current(root) == good_id for root in roots.values())
    # canary first: the play runs board1 alone, then the next batch with board2
    assert out.index("ok: [board1]") < out.index("ok: [board2]")
    assert out.count("PLAY [Roll out an edgekit bundle]") == 2
    assert "board1                     : ok=" in out and "failed=0" in out

    code, out = _playbook(tmp_path, inventory, bad)
    assert code != 0
    assert "Roll back (only if %s became current)" % bad_id in out
    assert "bundle %s failed on board1" % bad_id in out and "current release: %s" % good_id in out
    with open(os.path.join(roots["board1"], "serve.log")) as handle:
        log = handle.read()
    assert "Incompatible dimensions" in log                           # the daemon could not load the bad model
    assert _current(roots["board1"]) == good_id                      # canary rolled back, restarted, healthy
    assert sorted(os.listdir(os.path.join(roots["board1"], "releases"))) == sorted([first_id, good_id, bad_id])
    assert _current(roots["board2"]) == good_id                      # the failed canary stopped the rollout
    assert bad_id not in os.listdir(os.path.join(roots["board2"], "releases"))
    assert "board2" not in out.split("PLAY RECAP")[1]

    code, out = _playbook(tmp_path, inventory, playbook="rollback.yml")
    assert code == 0, out
    assert all(_current(root) == first_id for root in roots.values())
