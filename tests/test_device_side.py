"""The desktop/device line is a rule the tests enforce (docs/design/sides.md).

- every device-side module passes `vermin --target=3.6-` (JetPack 4.6 ships Python 3.6);
- importing every device-side module in a fresh interpreter pulls in neither torch nor onnx;
- `edgekit --help` and `edgekit serve --help` work on Debian's system Python, which has numpy,
  cv2 and PyYAML but no torch or onnx: the same situation as the board.
"""

import os
import pkgutil
import shutil
import subprocess
import sys

import pytest

import edgekit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "edgekit")


def device_modules():
    names = []
    for info in pkgutil.walk_packages([PACKAGE], prefix="edgekit."):
        if info.name.startswith("edgekit.desktop"):
            continue
        names.append(info.name)
    return sorted(names)


def device_files():
    files = []
    for dirpath, dirnames, filenames in os.walk(PACKAGE):
        dirnames[:] = [d for d in dirnames if d not in ("desktop", "__pycache__")]
        files.extend(os.path.join(dirpath, f) for f in filenames if f.endswith(".py"))
    return sorted(files)


def test_device_side_is_python36_compatible():
    vermin = shutil.which("vermin") or os.path.join(os.path.dirname(sys.executable), "vermin")
    files = device_files()
    assert len(files) > 10
    proc = subprocess.run([vermin, "--target=3.6-", "--no-tips", "--violations", "--eval-annotations",
                           "--no-parse-comments"] + files, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    assert proc.returncode == 0, proc.stdout
    # vermin exits 0 when a file's versions "could not be combined": that hides violations, so refuse it
    assert "File with incompatible versions" not in proc.stdout, proc.stdout
    assert "could not be combined" not in proc.stdout, proc.stdout
    assert "Minimum required versions: 3.6" in proc.stdout, proc.stdout


def test_device_side_imports_without_torch_or_onnx():
    modules = device_modules()
    assert "edgekit.cli" in modules and "edgekit.runners.onnxruntime" in modules
    code = (
        "import importlib, sys\n"
        "mods = %r\n"
        "for m in mods:\n"
        "    importlib.import_module(m)\n"
        "heavy = sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'torchvision', 'onnx', 'onnxslim'))\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(1 if heavy else 0)\n" % modules)
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout


def test_cli_help_does_not_import_heavy_modules():
    code = ("import sys\nfrom edgekit.cli import build_parser\nbuild_parser()\n"
            "heavy = sorted(k for k in sys.modules if k.split('.')[0] in "
            "('torch', 'onnx', 'onnxruntime', 'cv2', 'tensorrt', 'matplotlib'))\n"
            "print(heavy)\nsys.exit(1 if heavy else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout


SYSTEM_PYTHON = "/usr/bin/python3"


def _system_python_lacks_torch():
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    proc = subprocess.run([SYSTEM_PYTHON, "-c", "import torch"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc.returncode != 0


@pytest.mark.skipif(not _system_python_lacks_torch(), reason="needs Debian's /usr/bin/python3 without torch")
@pytest.mark.parametrize("argv", [["--help"], ["serve", "--help"], ["profile", "--help"], ["doctor", "--help"]])
def test_help_on_a_python_without_torch(argv):
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([SYSTEM_PYTHON, "-m", "edgekit"] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=env, cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert "usage: edgekit" in proc.stdout


def test_version_is_one_place():
    with open(os.path.join(ROOT, "pyproject.toml")) as handle:
        assert 'version = "%s"' % edgekit.__version__ in handle.read()
