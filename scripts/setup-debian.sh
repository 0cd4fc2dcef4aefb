#!/bin/sh
# Installs every Debian 12 package ddps needs to build and test (python3-torch and
# python3-torchvision: the PyTorch references that test_train_data_python and
# test_train_run_reference compare ddps with).
# Run as root or with sudo available. Safe to run again.
set -e
PKGS="build-essential cmake pkg-config git libdnnl-dev libjansson-dev libsqlite3-dev
      ocl-icd-opencl-dev libpng-dev libjpeg62-turbo-dev libwebp-dev libtiff-dev
      python3 python3-pil python3-numpy python3-venv python3-setuptools python3-wheel libopenmpi-dev openmpi-bin chromium
      clang libclang-rt-14-dev libomp-14-dev
      python3-torch python3-torchvision"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends $missing
