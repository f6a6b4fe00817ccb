#!/usr/bin/env bash
# Take a stock JetPack 4.6 Jetson Nano (L4T R32.7, Ubuntu 18.04, Python 3.6) to a working edgekit.
# Run it from the edgekit checkout as the user who will run edgekit (it calls sudo where needed):
#
#     bash jetson/setup.sh                 # apt packages, pip 21.3.1, pycuda, edgekit, swap file
#     bash jetson/setup.sh --swap-only     # only the swap file
#     bash jetson/setup.sh --dry-run       # print every step, change nothing
#
# Options: --swap-size 4G  --no-swap  --skip-apt  --onnxruntime WHEEL (Jetson Zoo onnxruntime-gpu wheel
# for JetPack 4.6 / Python 3.6, optional)  --force (run on something that is not a JetPack 4.x board)
#
# What it never does: pip-install OpenCV (a PyPI opencv would shadow JetPack's GStreamer-enabled cv2),
# or TensorRT (JetPack's python3-libnvinfer is the only build for this board's Python 3.6).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SWAP_SIZE=4G
SWAP_FILE=/var/swapfile
DO_APT=1; DO_PIP=1; DO_SWAP=1; DRY=0; FORCE=0; ORT_WHEEL=""

while [ $# -gt 0 ]; do
  case "$1" in
    --swap-size) SWAP_SIZE="$2"; shift 2 ;;
    --swap-only) DO_APT=0; DO_PIP=0; shift ;;
    --no-swap) DO_SWAP=0; shift ;;
    --skip-apt) DO_APT=0; shift ;;
    --onnxruntime) ORT_WHEEL="$2"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --force) FORCE=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
run() { echo "+ $*"; if [ "$DRY" = 0 ]; then "$@"; fi; }
step() { echo; echo "== $*"; }

step "board"
if [ -f /etc/nv_tegra_release ]; then
  head -n 1 /etc/nv_tegra_release
  if ! grep -q "^# R32" /etc/nv_tegra_release && [ "$FORCE" = 0 ]; then
    echo "setup.sh is written for JetPack 4.6 (L4T R32); this board runs another release. Re-run with --force." >&2
    exit 2
  fi
elif [ "$DRY" = 0 ] && [ "$FORCE" = 0 ]; then
  echo "not a Jetson (no /etc/nv_tegra_release). Re-run with --force to continue anyway." >&2
  exit 2
else
  echo "not a Jetson (no /etc/nv_tegra_release): continuing (--dry-run/--force)"
fi

if [ "$DO_APT" = 1 ]; then
  step "apt packages (JetPack's TensorRT bindings, build tools for pycuda)"
  run $SUDO apt-get update
  run $SUDO apt-get install -y python3-pip python3-dev python3-setuptools build-essential \
      python3-libnvinfer python3-libnvinfer-dev
  if ! python3 -c "import cv2" 2>/dev/null; then
    # JetPack's OpenCV 4.1.1 with GStreamer (Python module from libopencv-python)
    run $SUDO apt-get install -y nvidia-opencv
  fi
fi

if [ "$DO_PIP" = 1 ]; then
  PIP="python3 -m pip"
  step "pip 21.3.1 (the last for Python 3.6; Ubuntu 18.04's apt pip is 9.0)"
  run $PIP install --user --upgrade "pip==21.3.1"

  step "pure-Python and wheel dependencies (no opencv-python: JetPack's cv2 stays in charge)"
  run $PIP install --user "numpy>=1.19,<1.20" "PyYAML>=5.1" "paho-mqtt>=1.5,<2" "pytest>=6.2,<7.1"

  step "pycuda, built here against CUDA 10.2 (about 10 minutes)"
  export PATH="/usr/local/cuda/bin:$PATH"
  export CUDA_ROOT=/usr/local/cuda
  export CPATH="/usr/local/cuda/include:${CPATH:-}"
  export LIBRARY_PATH="/usr/local/cuda/lib64:${LIBRARY_PATH:-}"
  if python3 -c "import pycuda" 2>/dev/null; then
    echo "pycuda already installed"
  else
    run $PIP install --user "pycuda==2021.1"
  fi

  if [ -n "$ORT_WHEEL" ]; then
    step "onnxruntime-gpu wheel (optional: the CPU reference of the self-test, and the onnxruntime backend)"
    run $PIP install --user "$ORT_WHEEL"
  fi

  step "edgekit itself, without pulling dependencies"
  run $PIP install --user --no-deps "$REPO"

  step "environment"
  # numpy 1.19.5's aarch64 wheel dies with "Illegal instruction" on the Nano's CPU without this
  for line in 'export OPENBLAS_CORETYPE=ARMV8' 'export PATH="$HOME/.local/bin:/usr/local/cuda/bin:$PATH"'; do
    if ! grep -qxF "$line" "$HOME/.bashrc" 2>/dev/null; then
      echo "+ echo '$line' >> ~/.bashrc"
      if [ "$DRY" = 0 ]; then echo "$line" >> "$HOME/.bashrc"; fi
    fi
  done
  # the systemd unit (deploy/edgekit.service) reads no shell profile: it takes this file
  if ! grep -qxF 'OPENBLAS_CORETYPE=ARMV8' /etc/default/edgekit 2>/dev/null; then
    echo "+ echo 'OPENBLAS_CORETYPE=ARMV8' | sudo tee -a /etc/default/edgekit"
    if [ "$DRY" = 0 ]; then echo 'OPENBLAS_CORETYPE=ARMV8' | $SUDO tee -a /etc/default/edgekit >/dev/null; fi
  fi
fi

if [ "$DO_SWAP" = 1 ]; then
  step "swap file $SWAP_FILE ($SWAP_SIZE): engine builds on a 4 GB board need it"
  if [ -f "$SWAP_FILE" ]; then
    echo "$SWAP_FILE exists"
  else
    run $SUDO fallocate -l "$SWAP_SIZE" "$SWAP_FILE"
    run $SUDO chmod 600 "$SWAP_FILE"
    run $SUDO mkswap "$SWAP_FILE"
    run $SUDO swapon "$SWAP_FILE"
    echo "+ echo '$SWAP_FILE none swap sw 0 0' | sudo tee -a /etc/fstab"
    if [ "$DRY" = 0 ]; then echo "$SWAP_FILE none swap sw 0 0" | $SUDO tee -a /etc/fstab >/dev/null; fi
  fi
fi

step "done"
if [ "$DRY" = 0 ] && [ "$DO_PIP" = 1 ]; then
  OPENBLAS_CORETYPE=ARMV8 python3 -m edgekit doctor || true
fi
echo "next: open a new shell (for PATH and OPENBLAS_CORETYPE), then run: jetson/selftest"
