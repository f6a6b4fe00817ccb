#!/usr/bin/env bash
# System packages the test suite needs: a real MQTT broker, a headless browser, Debian's
# GStreamer-enabled OpenCV for the system-Python (board-like) tests, Ansible for the fleet
# playbook, and systemd-analyze for the unit file. Idempotent; run as root (CI is root).
set -euo pipefail
pkgs=(mosquitto chromium python3-opencv python3-numpy python3-yaml python3-paho-mqtt
      gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-tools
      ansible rsync systemd ffmpeg openssl   # openssl: MQTT TLS test certificates; rsync: harvest playbook; plugins-bad: openh264enc (clips)
      python3-gi gir1.2-gst-rtsp-server-1.0)   # an RTSP server for the RTSP source tests
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
