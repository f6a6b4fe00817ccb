#!/usr/bin/env bash
# Take a stock JetPack 4.6 Jetson Nano (L4T R32.6.1 or R32.7.x, Ubuntu 18.04, Python 3.6) to a working
# edgekit. Run it as root from the edgekit checkout:
#
#     sudo bash jetson/setup.sh                # everything below; safe to run again
#     sudo bash jetson/setup.sh --swap-only    # only the swap file
#     bash jetson/setup.sh --dry-run           # print every step, change nothing
#
# Options: --swap-size 4G  --no-swap  --skip-apt  --onnxruntime WHEEL (Jetson Zoo onnxruntime-gpu wheel
# for JetPack 4.6 / Python 3.6, optional)  --force (run on something that is not a JetPack 4.x board)
#
# Where things go: one virtualenv, /opt/edgekit (owned by root, made with --system-site-packages so that
# JetPack's tensorrt and GStreamer-enabled cv2 are seen), used by the CLI (/usr/local/bin/edgekit links
# to /opt/edgekit/bin/edgekit), by jetson/selftest and by the systemd unit. The service runs as the
# system user edgekit (groups edgekit and video); its state is /var/lib/edgekit, its settings
# /etc/edgekit/serve.yaml and /etc/default/edgekit.
#
# What it never does: pip-install OpenCV (a PyPI opencv would shadow JetPack's GStreamer-enabled cv2),
# or TensorRT (JetPack's python3-libnvinfer is the only build for this board's Python 3.6).
#
# EDGEKIT_ROOT=DIR puts every system path (/etc, /opt, /usr/local, /var) under DIR (the test suite's dry
# run of the board path uses it); PYTHON3 names the interpreter that makes the virtualenv.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="${EDGEKIT_ROOT:-}"
PYTHON3="${PYTHON3:-python3}"
PREFIX="$ROOT/opt/edgekit"
VPY="$PREFIX/bin/python"
SWAP_SIZE=4G
SWAP_FILE="$ROOT/var/swapfile"
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
# The last releases for Python 3.6: pip 21.3.1, setuptools 59.6.0, wheel 0.37.1, numpy 1.19.5.
PIP_PINS=("pip==21.3.1" "setuptools==59.6.0" "wheel==0.37.1")
PYCUDA="pycuda==2021.1"
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
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

CHANGED=(); KEPT=()
run() { echo "+ $*"; if [ "$DRY" = 0 ]; then "$@"; fi; }
step() { echo; echo "== $*"; }
did() { CHANGED+=("$*"); }
kept() { KEPT+=("$*"); echo "already in place: $*"; }

if [ "$DRY" = 0 ] && [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
  echo "setup.sh installs into /opt/edgekit and /etc: run it as root (sudo bash jetson/setup.sh), or --dry-run" >&2
  exit 2
fi

step "board"
RELEASE_FILE="$ROOT/etc/nv_tegra_release"
if [ -f "$RELEASE_FILE" ]; then
  line="$(head -n 1 "$RELEASE_FILE")"
  echo "$line"
  # "# R32 (release), REVISION: 7.1, GCID: ..." -> R32.7.1
  major="$(echo "$line" | sed -n 's/^# R\([0-9]*\) (release).*/\1/p')"
  revision="$(echo "$line" | sed -n 's/.*REVISION: \([0-9.]*\),.*/\1/p')"
  l4t="R${major}.${revision}"
  case "$l4t" in
    R32.6.1) echo "JetPack 4.6 (L4T $l4t): TensorRT 8.0.1, CUDA 10.2. edgekit is written for TensorRT 8.2 (JetPack" \
                  "4.6.1+); 8.0 has the same Python calls but is not what the stand-ins model: upgrading JetPack is better." ;;
    R32.7.*) echo "JetPack 4.6.x (L4T $l4t, 4.6.1 or newer): TensorRT 8.2.1, CUDA 10.2" ;;
    R32.*) echo "L4T $l4t is older than JetPack 4.6 (TensorRT 7 or older): edgekit needs TensorRT 8" >&2
           if [ "$FORCE" = 0 ]; then echo "upgrade to JetPack 4.6.x, or re-run with --force" >&2; exit 2; fi ;;
    *) echo "setup.sh is written for JetPack 4.6 (L4T R32); this board runs $l4t (JetPack 5/6: pip works there" \
            "without this script)." >&2
       if [ "$FORCE" = 0 ]; then echo "Re-run with --force to continue anyway." >&2; exit 2; fi ;;
  esac
elif [ "$DRY" = 0 ] && [ "$FORCE" = 0 ]; then
  echo "not a Jetson (no /etc/nv_tegra_release). Re-run with --force to continue anyway." >&2
  exit 2
else
  echo "not a Jetson (no /etc/nv_tegra_release): continuing (--dry-run/--force)"
fi
if command -v nvpmodel >/dev/null 2>&1; then
  mode="$(nvpmodel -q 2>/dev/null | sed -n 's/^NV Power Mode: *//p' | head -n 1)"
  echo "power mode: ${mode:-unknown} (engine builds and the self-test want MAXN: sudo nvpmodel -m 0)"
fi

if [ "$DO_APT" = 1 ]; then
  step "apt packages (JetPack's TensorRT bindings, python3-venv, build tools for pycuda)"
  run apt-get update
  run apt-get install -y python3-pip python3-venv python3-dev python3-setuptools build-essential \
      python3-libnvinfer python3-libnvinfer-dev
  if ! "$PYTHON3" -c "import cv2" 2>/dev/null; then
    # JetPack's OpenCV 4.1.1 with GStreamer (Python module from libopencv-python)
    run apt-get install -y nvidia-opencv
  fi
fi

if [ "$DO_PIP" = 1 ]; then
  # one place: a virtualenv that sees JetPack's system packages (tensorrt, cv2); pip writes no cache
  # (under sudo, HOME is the calling user's on Ubuntu 18.04: a cache would be root-owned files there)
  PIP=("$VPY" -m pip --disable-pip-version-check --no-cache-dir)
  step "virtualenv $PREFIX (--system-site-packages: JetPack's tensorrt and cv2 stay visible)"
  if [ -x "$VPY" ]; then
    kept "virtualenv $PREFIX"
  else
    run "$PYTHON3" -m venv --system-site-packages "$PREFIX"
    did "made the virtualenv $PREFIX"
  fi
  # Ubuntu 18.04's venv brings pip 9.0 and setuptools 39: too old for pyproject.toml builds
  run "${PIP[@]}" install --upgrade "${PIP_PINS[@]}"

  step "dependencies (no opencv-python: JetPack's cv2 stays in charge)"
  # numpy 1.19.5 (the last for Python 3.6) shadows Ubuntu's 1.13 inside the virtualenv
  run "${PIP[@]}" install "numpy==1.19.5" "PyYAML>=5.1" "paho-mqtt>=1.5,<2" "pytest>=6.2,<7.1"

  step "pycuda, built here against CUDA 10.2 (about 10 minutes)"
  if [ "$DRY" = 0 ] && "$VPY" -c "import pycuda" 2>/dev/null; then
    kept "pycuda"
  else
    # --no-build-isolation: pycuda's pyproject.toml asks pip to build against numpy==1.12.1 on Python 3.6,
    # which has no aarch64 wheel and no longer compiles on glibc >= 2.26 (xlocale.h is gone); building
    # against the virtualenv's numpy 1.19.5 with its setuptools and wheel works.
    run env PATH="$CUDA_HOME/bin:$PATH" CUDA_ROOT="$CUDA_HOME" CPATH="$CUDA_HOME/include${CPATH:+:$CPATH}" \
        LIBRARY_PATH="$CUDA_HOME/lib64${LIBRARY_PATH:+:$LIBRARY_PATH}" \
        "${PIP[@]}" install --no-build-isolation "$PYCUDA"
    did "built and installed $PYCUDA"
  fi

  if [ -n "$ORT_WHEEL" ]; then
    step "onnxruntime-gpu wheel (optional: the CPU reference of the self-test, and the onnxruntime backend)"
    run "${PIP[@]}" install "$ORT_WHEEL"
    did "installed $ORT_WHEEL"
  fi

  step "edgekit itself from $REPO, without pulling dependencies"
  run "${PIP[@]}" install --no-deps --force-reinstall "$REPO"
  did "installed edgekit from $REPO into $PREFIX"

  step "the edgekit command, the service user, its directories and environment"
  link="$ROOT/usr/local/bin/edgekit"
  if [ "$(readlink "$link" 2>/dev/null || true)" = "$PREFIX/bin/edgekit" ]; then
    kept "$link -> $PREFIX/bin/edgekit"
  else
    run mkdir -p "$ROOT/usr/local/bin"
    run ln -sfn "$PREFIX/bin/edgekit" "$link"
    did "linked $link -> $PREFIX/bin/edgekit"
  fi
  if getent group edgekit >/dev/null; then
    kept "group edgekit"
  else
    run groupadd --system edgekit
    did "made the group edgekit"
  fi
  if getent passwd edgekit >/dev/null; then
    kept "user edgekit"
    if ! id -nG edgekit 2>/dev/null | grep -qw video; then
      run usermod -a -G video edgekit
      did "added the user edgekit to the video group"
    fi
  else
    # video: cameras (/dev/video*) and the Jetson's GPU devices (/dev/nvhost-*, /dev/nvmap)
    run useradd --system --gid edgekit --groups video --home-dir /var/lib/edgekit --no-create-home \
        --shell /usr/sbin/nologin edgekit
    did "made the system user edgekit (groups edgekit, video)"
  fi
  run mkdir -p "$ROOT/etc/edgekit" "$ROOT/var/lib/edgekit/engines"
  run chown -R edgekit:edgekit "$ROOT/var/lib/edgekit"
  run chmod 750 "$ROOT/var/lib/edgekit"
  if [ ! -f "$ROOT/etc/edgekit/serve.example.yaml" ] || ! cmp -s "$REPO/deploy/serve.example.yaml" \
      "$ROOT/etc/edgekit/serve.example.yaml"; then
    run install -m 644 "$REPO/deploy/serve.example.yaml" "$ROOT/etc/edgekit/serve.example.yaml"
  fi
  # numpy 1.19.5's aarch64 wheel dies with "Illegal instruction" on the Nano's CPU without this (numpy
  # issues 18131, 18468). edgekit sets it itself on a Tegra board before numpy loads; this file is for
  # the unit (EnvironmentFile) and anything else that reads it.
  if grep -qxF 'OPENBLAS_CORETYPE=ARMV8' "$ROOT/etc/default/edgekit" 2>/dev/null; then
    kept "OPENBLAS_CORETYPE=ARMV8 in $ROOT/etc/default/edgekit"
  else
    echo "+ echo OPENBLAS_CORETYPE=ARMV8 >> $ROOT/etc/default/edgekit"
    if [ "$DRY" = 0 ]; then mkdir -p "$ROOT/etc/default"; echo 'OPENBLAS_CORETYPE=ARMV8' >> "$ROOT/etc/default/edgekit"; fi
    did "wrote OPENBLAS_CORETYPE=ARMV8 to $ROOT/etc/default/edgekit"
  fi

  step "the systemd unit (not enabled: write /etc/edgekit/serve.yaml first)"
  unit="$ROOT/etc/systemd/system/edgekit.service"
  wanted="$(mktemp)"
  cp "$REPO/deploy/edgekit.service" "$wanted"
  # Ubuntu 18.04 has systemd 237, which warns about and ignores keys it does not know: drop those here
  # and say which (PrivateMounts and the @system-service filter group: 239; ProtectHostname,
  # RestrictSUIDSGID: 242; ProtectKernelLogs: 244; ProtectClock: 245; ProtectProc: 247 -- systemd's NEWS).
  sdver="$(systemctl --version 2>/dev/null | sed -n 's/^systemd \([0-9]*\).*/\1/p' | head -n 1)"
  if [ -n "$sdver" ]; then
    dropped=()
    for pair in PrivateMounts:239 SystemCallFilter:239 ProtectHostname:242 RestrictSUIDSGID:242 ProtectKernelLogs:244 ProtectClock:245 ProtectProc:247; do
      key="${pair%%:*}"; since="${pair##*:}"
      if [ "$sdver" -lt "$since" ]; then dropped+=("$key"); sed -i "/^$key=/d" "$wanted"; fi
    done
    if [ ${#dropped[@]} -gt 0 ]; then
      echo "systemd $sdver here: left out ${dropped[*]} (newer than this systemd; the rest of the hardening stays)"
    fi
  fi
  if cmp -s "$wanted" "$unit"; then
    kept "$unit"
  else
    run mkdir -p "$ROOT/etc/systemd/system"
    run install -m 644 "$wanted" "$unit"
    run systemctl daemon-reload
    did "installed $unit"
  fi
  rm -f "$wanted"
fi

if [ "$DO_SWAP" = 1 ]; then
  step "swap file $SWAP_FILE ($SWAP_SIZE): engine builds on a 4 GB board need it (zram alone is not enough)"
  if [ -f "$SWAP_FILE" ]; then
    kept "swap file $SWAP_FILE"
  else
    run fallocate -l "$SWAP_SIZE" "$SWAP_FILE"
    run chmod 600 "$SWAP_FILE"
    run mkswap "$SWAP_FILE"
    run swapon "$SWAP_FILE"
    echo "+ echo '/var/swapfile none swap sw 0 0' >> $ROOT/etc/fstab"
    if [ "$DRY" = 0 ]; then echo "/var/swapfile none swap sw 0 0" >> "$ROOT/etc/fstab"; fi
    did "made and enabled the swap file $SWAP_FILE ($SWAP_SIZE)"
  fi
fi

step "done"
if [ "$DRY" = 1 ]; then
  echo "dry run: nothing was changed"
else
  echo "changed (${#CHANGED[@]}):"
  for item in "${CHANGED[@]+"${CHANGED[@]}"}"; do echo "  - $item"; done
  echo "already in place (${#KEPT[@]}):"
  for item in "${KEPT[@]+"${KEPT[@]}"}"; do echo "  - $item"; done
fi
if [ "$DRY" = 0 ] && [ "$DO_PIP" = 1 ]; then
  "$VPY" -m edgekit doctor || true
fi
echo "next: sudo jetson/selftest   (then: sudo systemctl enable --now edgekit, once /etc/edgekit/serve.yaml exists)"
