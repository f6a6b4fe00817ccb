"""deploy/Dockerfile.l4t, checked statically (no arm64 Docker here): the L4T r32.7.1 base, JetPack's
OpenCV instead of PyPI's, edgekit installed without dependencies, and a CMD / health check / cache
variable that match what the code really accepts."""

import os
import shlex

import pytest

from edgekit.cli import build_parser

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCKERFILE = os.path.join(ROOT, "deploy", "Dockerfile.l4t")


def instructions():
    """(INSTRUCTION, argument text) with continuation lines joined and comments dropped."""
    out, current = [], ""
    with open(DOCKERFILE) as handle:
        for line in handle:
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            current += " " + stripped.rstrip("\\").strip()
            if not stripped.endswith("\\"):
                word, _, rest = current.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
                current = ""
    return out


def test_base_image_is_l4t_r32_7_1():
    steps = instructions()
    assert ("ARG", "L4T_BASE=nvcr.io/nvidia/l4t-base:r32.7.1") in steps
    assert [s for s in steps if s[0] == "FROM"] == [("FROM", "${L4T_BASE}")]


def test_opencv_comes_from_jetpack_and_edgekit_brings_no_dependencies():
    runs = " ".join(arg for word, arg in instructions() if word == "RUN")
    assert "libopencv-python" in runs and "opencv-python" not in runs.replace("libopencv-python", "")
    pip_lines = [part for part in runs.split("&&") if "pip install" in part]
    edgekit_installs = [p for p in pip_lines if "/src/edgekit" in p]
    assert edgekit_installs and all("--no-deps" in p for p in edgekit_installs)


def test_copied_sources_exist():
    for word, arg in instructions():
        if word == "COPY":
            for source in shlex.split(arg)[:-1]:
                assert os.path.exists(os.path.join(ROOT, source)), source


def test_cmd_and_healthcheck_match_the_cli_and_the_http_routes(monkeypatch):
    steps = dict((w, a) for w, a in instructions() if w in ("CMD", "HEALTHCHECK", "ENV"))
    import json

    cmd = json.loads(steps["CMD"])
    assert cmd[:2] == ["edgekit", "serve"]
    args = build_parser().parse_args(cmd[1:])          # the daemon accepts these flags
    assert args.command == "serve" and args.config == "/etc/edgekit/serve.yaml"
    assert "http://127.0.0.1:8080/readyz" in steps["HEALTHCHECK"]
    http = os.path.join(ROOT, "edgekit", "service", "sinks", "http.py")
    if not os.path.exists(http):
        pytest.skip("edgekit.service.sinks.http not present")
    with open(http) as handle:
        assert '"/readyz"' in handle.read()
    from edgekit.engine import cache

    assert "EDGEKIT_CACHE_DIR=/var/lib/edgekit/engines" in steps["ENV"]
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", "/var/lib/edgekit/engines")
    assert cache.default_cache_dir() == "/var/lib/edgekit/engines"


def test_pycuda_builds_without_isolation_against_numpy_1_19():
    """pycuda 2021.1's pyproject.toml asks for numpy==1.12.1 on Python 3.6 (no aarch64 wheel, does not
    compile on glibc >= 2.26): the image installs numpy 1.19.5 first and builds pycuda without isolation."""
    runs = " ".join(arg for word, arg in instructions() if word == "RUN")
    steps = [part.strip() for part in runs.split("&&")]
    numpy_step = [i for i, s in enumerate(steps) if '"numpy==1.19.5"' in s]
    pycuda_step = [i for i, s in enumerate(steps) if "pycuda" in s and "pip install" in s]
    assert numpy_step and pycuda_step and numpy_step[0] < pycuda_step[0]
    assert "--no-build-isolation" in steps[pycuda_step[0]] and '"pycuda==2021.1"' in steps[pycuda_step[0]]
    assert '"setuptools==59.6.0"' in runs and '"wheel==0.37.1"' in runs
    env = " ".join(arg for word, arg in instructions() if word == "ENV")
    assert "OPENBLAS_CORETYPE=ARMV8" in env
