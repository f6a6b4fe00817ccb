"""jetson/setup.sh's pycuda steps, run for real on CPython 3.6 here, as far as a build without a GPU goes.

pycuda 2021.1 (the last two releases for Python 3.6 are 2021.1 and 2022.1) lists
``numpy==1.12.1; python_version < '3.7'`` among its build requirements. With pip's default build
isolation, pip 21.3.1 on the board builds numpy 1.12.1 from source (no aarch64 wheel exists), which fails
on glibc >= 2.26: ``numpy/core/src/multiarray/numpyos.c: fatal error: xlocale.h``. setup.sh therefore
builds pycuda with ``--no-build-isolation`` against the virtualenv's numpy 1.19.5, setuptools 59.6.0 and
wheel 0.37.1. This test makes a CPython 3.6 virtualenv, runs the same pip commands (read from setup.sh)
and checks that pip never asks for numpy 1.12.1, that every C++ file of the extension compiles against
numpy 1.19.5 and this machine's CUDA headers, and that what remains is only the link against libcuda
(the driver library, absent without an NVIDIA driver) and libcurand.

This machine's toolkit is CUDA 13, whose cuda.h changed two things pycuda 2021.1 uses (cuCtxCreate took
a params argument, CU_TARGET_COMPUTE_20/21 were removed); CUDA 10.2 on the board has the old forms, so the
test compiles through a header shim that restores exactly those two CUDA 10.2 declarations. It takes
minutes and reaches PyPI for the sources: it runs when EDGEKIT_PYCUDA_BUILD=1 (`make check-pycuda-build`).
"""

import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETUP = os.path.join(ROOT, "jetson", "setup.sh")
PY36 = os.environ.get("PY36", "/root/.pyenv/versions/3.6.15/bin/python3.6")
CUDA_HOME = os.environ.get("CUDA_HOME", "/usr/local/cuda")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]      # the build takes minutes

SHIM = """/* test shim: this machine's cuda.h with the two CUDA 10.2 declarations pycuda 2021.1 uses */
#include "%(real)s"
#if CUDA_VERSION >= 13000
#undef cuCtxCreate
#ifdef __cplusplus
extern "C" {
#endif
CUresult CUDAAPI cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev);
#ifdef __cplusplus
}
#endif
#define cuCtxCreate cuCtxCreate_v2
#define CU_TARGET_COMPUTE_20 ((CUjit_target)20)
#define CU_TARGET_COMPUTE_21 ((CUjit_target)21)
#endif
"""


def setup_sh_steps():
    """The pins and the pycuda command as setup.sh has them (so a change there changes this test)."""
    text = open(SETUP).read()
    pins = re.search(r"^PIP_PINS=\((.*)\)$", text, re.M).group(1).replace('"', "").split()
    pycuda = re.search(r'^PYCUDA="(.*)"$', text, re.M).group(1)
    numpy = re.search(r'"(numpy==[0-9.]+)"', text).group(1)
    pycuda_line = [line for line in text.splitlines() if '"$PYCUDA"' in line and "install" in line]
    flags = [f for f in pycuda_line[0].split() if f.startswith("--")]
    return pins, numpy, pycuda, flags


def curand_headers():
    for pattern in (os.path.join(CUDA_HOME, "include", "curand.h"),
                    os.path.join(os.path.dirname(os.__file__), "site-packages", "nvidia", "*", "include", "curand.h"),
                    os.path.join(sys.prefix, "lib", "python3*", "site-packages", "nvidia", "*", "include", "curand.h")):
        found = glob.glob(pattern)
        if found:
            return os.path.dirname(found[0])
    return None


def cuda_root(tmp_path):
    """CUDA_HOME itself, or a shim root (bin and lib64 linked, include = CUDA_HOME's + curand + cuda.h shim)."""
    real = os.path.join(CUDA_HOME, "include", "cuda.h")
    version = int(re.search(r"#define CUDA_VERSION (\d+)", open(real).read()).group(1))
    curand = curand_headers()
    if version < 13000 and curand == os.path.join(CUDA_HOME, "include"):
        return CUDA_HOME, version
    root = tmp_path / "cuda"
    include = root / "include"
    include.mkdir(parents=True)
    for directory in [os.path.join(CUDA_HOME, "include")] + ([curand] if curand else []):
        for entry in os.listdir(directory):
            if entry != "cuda.h" and not (include / entry).exists():
                os.symlink(os.path.join(directory, entry), str(include / entry))
    (include / "cuda.h").write_text(SHIM % {"real": real})
    for name in ("bin", "lib64"):
        os.symlink(os.path.join(CUDA_HOME, name), str(root / name))
    return str(root), version


def pip(venv, args, env=None, log=None):
    proc = subprocess.Popen([os.path.join(venv, "bin", "python"), "-m", "pip", "--disable-pip-version-check"] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, env=env)
    out = proc.communicate()[0]
    if log:
        with open(log, "w") as handle:
            handle.write(out)
    return proc.returncode, out


@pytest.mark.skipif(os.environ.get("EDGEKIT_PYCUDA_BUILD") != "1",
                    reason="builds pycuda from PyPI's sources for minutes: EDGEKIT_PYCUDA_BUILD=1 "
                           "(make check-pycuda-build)")
def test_setup_sh_pycuda_steps_build_on_cpython36(tmp_path):
    if not os.path.exists(PY36):
        pytest.skip("no CPython 3.6 at %s" % PY36)
    if not os.path.exists(os.path.join(CUDA_HOME, "include", "cuda.h")):
        pytest.skip("no CUDA toolkit headers at %s" % CUDA_HOME)
    if curand_headers() is None:
        pytest.skip("no curand.h here (pycuda compiles its curand wrapper)")
    if shutil.which("g++") is None:
        pytest.skip("no C++ compiler")
    pins, numpy, pycuda, flags = setup_sh_steps()
    assert flags == ["--no-build-isolation"] and pycuda == "pycuda==2021.1"
    venv = str(tmp_path / "venv")
    subprocess.check_call([PY36, "-m", "venv", venv])
    code, out = pip(venv, ["install", "--upgrade"] + pins)
    assert code == 0, out[-2000:]
    code, out = pip(venv, ["install", numpy])
    assert code == 0, out[-2000:]

    root, version = cuda_root(tmp_path)
    env = dict(os.environ, PATH=os.path.join(root, "bin") + os.pathsep + os.environ["PATH"], CUDA_ROOT=root,
               CPATH=os.path.join(root, "include"), LIBRARY_PATH=os.path.join(root, "lib64"))
    log = os.environ.get("EDGEKIT_PYCUDA_BUILD_LOG", str(tmp_path / "pycuda-build.log"))
    code, out = pip(venv, ["install", "-v"] + flags + [pycuda], env=env, log=log)

    assert "numpy==1.12.1" not in out and "Collecting numpy" not in out      # no isolated numpy 1.12.1 build
    numpy_include = os.path.join(venv, "lib", "python3.6", "site-packages", "numpy", "core", "include")
    compiles = [line for line in out.splitlines() if re.match(r"\s*(gcc|g\+\+|cc|c\+\+) .* -c ", line)]
    assert compiles and all("-I" + numpy_include in line for line in compiles), compiles[:1]
    errors = [line.strip() for line in out.splitlines() if re.search(r"(^|\s)error:|fatal error", line)]
    print("pycuda build (CUDA headers %d, root %s): pip exit %d, %d compile steps; log %s"
          % (version, root, code, len(compiles), log))
    if code == 0:
        return                                   # linked too (a libcuda is present here)
    link = [e for e in errors if "ld returned" in e or "command 'g++' failed" in e or "command 'gcc' failed" in e]
    missing = re.findall(r"cannot find -l(\w+)", out)
    print("stopped at the link step: cannot find %s" % ", ".join("-l" + m for m in missing))
    assert "cuda" in missing and set(missing) <= {"cuda", "curand", "cudart"}, missing
    compile_errors = [e for e in errors if e not in link and "Failed building wheel" not in e
                      and not e.startswith("ERROR:")]
    assert not compile_errors, compile_errors[:5]
