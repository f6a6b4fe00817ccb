"""A dry run of the whole board path here: jetson/setup.sh for real under a fake root (EDGEKIT_ROOT) on
CPython 3.6, with STAND-INS for what only a Jetson has or what must not run here (apt-get, nvpmodel,
systemctl, useradd/groupadd/usermod, chown, swap commands, the JetPack release file, pip's network
installs), every command they receive recorded and checked; then jetson/selftest's report from the
installed virtualenv against the TensorRT stand-ins. It exercises the order of the steps, the environment
they get, idempotence and file ownership. It verifies nothing about a real board.
"""

import os
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETUP = os.path.join(ROOT, "jetson", "setup.sh")
SELFTEST = os.path.join(ROOT, "jetson", "selftest")
PY36 = os.environ.get("PY36", "/root/.pyenv/versions/3.6.15/bin/python3.6")
R32_7_1 = "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, DATE: Sat Feb 19 17:05:08 UTC 2022\n"


def jetpack_site():
    """A CPython 3.6 site-packages with numpy 1.19.5, pytest, onnx(runtime), cv2: JetPack's system packages
    (and what the self-test's stand-in run needs), seen by the board's virtualenv (--system-site-packages)."""
    if sys.version_info[:2] == (3, 6):
        python = sys.executable
    else:
        python = os.path.join(ROOT, ".venv-py36", "bin", "python")
        if not os.path.exists(python):
            pytest.skip("no .venv-py36 here (make .venv-py36/.edgekit-installed)")
    return python, subprocess.check_output([python, "-c", "import numpy, os; print(os.path.dirname(os.path.dirname("
                                                          "numpy.__file__)))"], universal_newlines=True).strip()


RECORD = 'printf "%s\\n" "$(basename "$0") $*" >> "$STANDIN_LOG"\n'

STANDINS = {
    "apt-get": RECORD,
    "chown": RECORD,
    "usermod": RECORD,
    "mkswap": RECORD,
    "swapon": RECORD,
    "fallocate": RECORD + 'touch "${@: -1}"\n',
    "nvpmodel": RECORD + 'printf "NV Fan Mode:quiet\\nNV Power Mode: MAXN\\n0\\n"\n',
    "systemctl": 'if [ "$1" = --version ]; then echo "systemd 237"; echo "+PAM +AUDIT"; exit 0; fi\n' + RECORD,
    "groupadd": RECORD + 'echo "edgekit:x:998:" >> "$EDGEKIT_ROOT/etc/group"\n',
    "useradd": RECORD + 'echo "edgekit:x:998:998::/var/lib/edgekit:/usr/sbin/nologin" >> "$EDGEKIT_ROOT/etc/passwd"\n'
                        'echo "video:x:44:edgekit" >> "$EDGEKIT_ROOT/etc/group"\n',
    "getent": 'grep -q "^$2:" "$EDGEKIT_ROOT/etc/$1" 2>/dev/null\n',
    "id": 'if [ "$1" = -nG ]; then grep -q ":$2\\(,\\|$\\)" "$EDGEKIT_ROOT/etc/group" && echo "$2 video" || echo "$2";'
          ' exit 0; fi\nexec /usr/bin/id "$@"\n',
    # the board's python3: makes the virtualenv for real (CPython 3.6, no network: a recording pip stand-in
    # inside it, JetPack's packages through a .pth); anything else runs on the JetPack-like Python
    "python3": 'if [ "$1 $2" = "-m venv" ]; then\n  ' + RECORD +
               '  "$PY36" -m venv --without-pip "${@:3}"\n'
               '  site="${@: -1}/lib/python3.6/site-packages"\n'
               '  mkdir -p "$site/pip"; cp "$PIP_STANDIN" "$site/pip/__main__.py"; : > "$site/pip/__init__.py"\n'
               '  echo "$JETPACK_SITE" > "$site/jetpack-system-packages.pth"\n'
               '  exit 0\nfi\nexec "$JETPACK_PYTHON" "$@"\n',
}

PIP_STANDIN = '''"""STAND-IN for pip inside the board's virtualenv: records what setup.sh asks, installs nothing from a network."""
import os
import sys

args = sys.argv[1:]
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write("pip %s [CUDA_ROOT=%s PATH=%s]\\n" % (" ".join(args), os.environ.get("CUDA_ROOT", ""),
                                                  os.environ.get("PATH", "").split(os.pathsep)[0]))
site = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
prefix = sys.prefix
if "install" in args and any(a.startswith("pycuda==") for a in args):
    os.makedirs(os.path.join(site, "pycuda"))
    with open(os.path.join(site, "pycuda", "__init__.py"), "w") as handle:
        handle.write("VERSION_TEXT = 'stand-in'\\n")
if "install" in args and "--no-deps" in args and os.path.isfile(os.path.join(args[-1], "pyproject.toml")):
    with open(os.path.join(site, "edgekit-checkout.pth"), "w") as handle:     # what a wheel install provides
        handle.write(args[-1] + "\\n")
    script = os.path.join(prefix, "bin", "edgekit")
    with open(script, "w") as handle:
        handle.write("#!%s\\nimport sys\\nfrom edgekit.cli import main\\nsys.exit(main())\\n"
                     % os.path.join(prefix, "bin", "python"))
    os.chmod(script, 0o755)
'''


@pytest.fixture
def board(tmp_path):
    python, site = jetpack_site()
    if not os.path.exists(PY36):
        pytest.skip("no CPython 3.6 at %s" % PY36)
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "nv_tegra_release").write_text(R32_7_1)
    (root / "etc" / "group").write_text("root:x:0:\nvideo:x:44:\n")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, body in STANDINS.items():
        path = bindir / name
        path.write_text("#!/bin/bash\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    pip_standin = tmp_path / "pip_standin.py"
    pip_standin.write_text(PIP_STANDIN)
    log = tmp_path / "commands.log"
    env = dict(os.environ, EDGEKIT_ROOT=str(root), PYTHON3=str(bindir / "python3"), STANDIN_LOG=str(log),
               PATH=str(bindir) + os.pathsep + os.environ["PATH"], PY36=PY36, PIP_STANDIN=str(pip_standin),
               JETPACK_SITE=site, JETPACK_PYTHON=python)
    env.pop("PYTHONPATH", None)
    env.pop("EDGEKIT_PREFIX", None)

    class Board(object):
        def setup(self, *args):
            start = len(log.read_text().splitlines()) if log.exists() else 0
            proc = subprocess.Popen(["bash", SETUP] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    universal_newlines=True, env=env, cwd=str(tmp_path))
            out = proc.communicate(timeout=240)[0]
            return proc.returncode, out, log.read_text().splitlines()[start:] if log.exists() else []

    board = Board()
    board.root, board.env, board.python = root, env, python
    return board


def index(commands, text):
    found = [i for i, c in enumerate(commands) if text in c]
    assert found, "%r not among the commands:\n%s" % (text, "\n".join(commands))
    return found[0]


def test_setup_then_selftest_on_a_fake_jetpack_461_board(board, tmp_path):
    code, out, commands = board.setup()
    assert code == 0, out
    root, prefix = str(board.root), str(board.root) + "/opt/edgekit"
    assert "JetPack 4.6.x (L4T R32.7.1, 4.6.1 or newer): TensorRT 8.2.1" in out
    assert "power mode: MAXN" in out
    # the order of the steps
    steps = [index(commands, t) for t in (
        "apt-get update", "python3-venv python3-dev", "python3 -m venv --system-site-packages %s" % prefix,
        "--no-cache-dir install --upgrade pip==21.3.1 setuptools==59.6.0 wheel==0.37.1",
        "--no-cache-dir install numpy==1.19.5",
        "--no-build-isolation pycuda==2021.1", "install --no-deps --force-reinstall %s" % ROOT,
        "groupadd --system edgekit", "useradd --system --gid edgekit --groups video",
        "chown -R edgekit:edgekit %s/var/lib/edgekit" % root, "systemctl daemon-reload", "fallocate -l 4G",
        "mkswap", "swapon")]
    assert steps == sorted(steps), commands
    pycuda = commands[index(commands, "pycuda==2021.1")]
    assert "CUDA_ROOT=/usr/local/cuda PATH=/usr/local/cuda/bin]" in pycuda     # nvcc found, CUDA 10.2's root
    pips = [c for c in commands if c.startswith("pip ")]
    assert pips and not [c for c in pips if "--user" in c or "opencv-python" in c]
    assert all("--no-cache-dir" in c for c in pips)          # no root-owned cache in the sudo user's home
    assert not [c for c in commands if c.startswith("chown") and "/opt/edgekit" in c]   # code stays root's
    # what is on disk
    assert os.readlink(root + "/usr/local/bin/edgekit") == prefix + "/bin/edgekit"
    assert (board.root / "etc" / "default" / "edgekit").read_text() == "OPENBLAS_CORETYPE=ARMV8\n"
    unit = (board.root / "etc" / "systemd" / "system" / "edgekit.service").read_text()
    assert "ExecStart=/opt/edgekit/bin/edgekit serve --config /etc/edgekit/serve.yaml" in unit
    assert "User=edgekit" in unit and "SupplementaryGroups=video" in unit
    assert "EnvironmentFile=-/etc/default/edgekit" in unit and "ProtectSystem=strict" in unit
    for key in ("ProtectClock=", "ProtectKernelLogs=", "ProtectHostname=", "ProtectProc=", "RestrictSUIDSGID=",
                "PrivateMounts=", "SystemCallFilter="):
        assert "\n" + key not in unit, key                   # systemd 237 does not know them
    assert "systemd 237 here: left out" in out
    assert "edgekit:x:998" in (board.root / "etc" / "passwd").read_text()
    assert "changed (" in out and "made the system user edgekit (groups edgekit, video)" in out

    # again: nothing to redo, and it says so
    code, out, again = board.setup()
    assert code == 0, out
    for text in ("-m venv", "groupadd", "useradd", "pycuda", "daemon-reload", "fallocate"):
        assert not [c for c in again if text in c], (text, again)
    for text in ("already in place: virtualenv", "already in place: user edgekit", "already in place: pycuda",
                 "already in place: OPENBLAS_CORETYPE=ARMV8", "already in place: swap file"):
        assert text in out, text
    assert (board.root / "etc" / "default" / "edgekit").read_text() == "OPENBLAS_CORETYPE=ARMV8\n"

    # the self-test, started with another Python, re-runs itself in the installed virtualenv
    report = tmp_path / "report.md"
    env = dict(board.env, EDGEKIT_SELFTEST_STANDIN="1")
    proc = subprocess.Popen([board.python, SELFTEST, "--out", str(report)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True, env=env, cwd=str(tmp_path))
    out = proc.communicate(timeout=240)[0]
    assert proc.returncode == 0, out[-3000:]
    text = report.read_text()
    assert "- interpreter: %s/bin/python (prefix %s)" % (prefix, prefix) in text
    assert "**STAND-IN run**" in text and " passed, 0 failed" in text
    assert "exit status: 0" in text


@pytest.mark.parametrize("release,expected,code", [
    ("# R32 (release), REVISION: 6.1, GCID: 27863751, BOARD: t210ref, EABI: aarch64\n",
     "JetPack 4.6 (L4T R32.6.1): TensorRT 8.0.1", 0),
    ("# R32 (release), REVISION: 5.1, GCID: 27362550, BOARD: t210ref, EABI: aarch64\n",
     "L4T R32.5.1 is older than JetPack 4.6", 2),
    ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64\n",
     "this board runs R35.4.1", 2),
])
def test_jetpack_release_is_named(board, release, expected, code):
    (board.root / "etc" / "nv_tegra_release").write_text(release)
    got, out, commands = board.setup("--skip-apt", "--no-swap")
    assert got == code and expected in out, out


def test_needs_root_without_a_fake_root(tmp_path):
    if os.getuid() == 0:
        pytest.skip("running as root here")
    env = dict(os.environ)
    env.pop("EDGEKIT_ROOT", None)
    proc = subprocess.Popen(["bash", SETUP], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, env=env)
    out = proc.communicate()[0]
    assert proc.returncode == 2 and "run it as root" in out
