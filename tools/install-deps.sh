#!/usr/bin/env bash
# Installs the Debian 12 packages hyvideo needs to build and run its tests, and nothing else
# (--no-install-recommends). Packages already installed are skipped, and when all are there apt is
# not touched at all, so this is instant on a prepared machine. Needs root or sudo only when
# something is missing. Used by the README's quick start and by CI (.ci/run).
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config
  # libraries (docs/building.md says what each is for)
  libdnnl-dev libeigen3-dev libxtensor-dev libfmt-dev doctest-dev nlohmann-json3-dev libcli11-dev
  # Thrust for the thrust-omp backend (the CUDA backend's shared kernels on the CPU)
  libthrust-dev
  # libdnnl-dev's CMake package (dnnl-config.cmake) calls find_package(OpenCL) and fails without
  # these, though Debian lists them only as recommended
  ocl-icd-opencl-dev opencl-headers
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
  # ffprobe, which the video tests use to check what was written
  ffmpeg
)

missing=()
for p in "${packages[@]}"; do
  if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) != installed ]]; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
as_root=()
if ((EUID != 0)); then
  if ! command -v sudo >/dev/null; then
    echo "install-deps: run as root (or install sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  as_root=(sudo)
fi
# env rather than export: sudo does not pass the caller's environment on.
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
