"""Helpers for bundle tests: a tiny ONNX classifier with edgekit metadata, hand-crafted (possibly
malicious) tarballs, and the CLI in a subprocess."""

import io
import json
import os
import subprocess
import sys
import tarfile

from standins.models import colour_classifier as make_classifier  # noqa: F401  (the bundles' model)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_members(path):
    """{name: bytes} of every regular file in a tarball."""
    with tarfile.open(path, "r:*") as tar:
        return dict((m.name, tar.extractfile(m).read()) for m in tar if m.isfile())


def write_tar(path, entries):
    """entries: list of (TarInfo, bytes or None). Writes a .tar.gz exactly as given."""
    with tarfile.open(str(path), "w:gz") as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return str(path)


def file_info(name, size=0):
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    return info


def rewrite(bundle, out, change):
    """Copy a bundle's files, let ``change(files: dict)`` alter them, write a new tarball."""
    files = read_members(bundle)
    change(files)
    return write_tar(out, [(file_info(name), data) for name, data in files.items()])


def manifest_of(bundle):
    return json.loads(read_members(bundle)["manifest.json"].decode("utf-8"))


def run_cli(*args, env=None, python=None):
    """`python -m edgekit ...` in a subprocess: (returncode, stdout, stderr)."""
    full_env = dict(os.environ, PYTHONPATH=ROOT)
    full_env.update(env or {})
    proc = subprocess.run([python or sys.executable, "-m", "edgekit"] + [str(a) for a in args], cwd=ROOT, env=full_env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr
