#!/usr/bin/env bash
# The GPU check of docs/cuda.md, for a machine with an NVIDIA GPU and the CUDA toolkit: builds the CUDA
# backend and its tests for the card, runs them (the conformance suite and every golden fixture on
# hyvideo::cuda), and prints a summary with the device named. Only the library's own dependencies and
# doctest are needed (no FFmpeg, no xtensor): the command line and the CPU tests are not built.
#
#   tools/device-check.sh [BUILD_DIR]      (default build-cuda; about 5 minutes on 16 cores)
set -uo pipefail
build=${1:-build-cuda}
log=$build/device-check.log
mkdir -p "$build"
summary=()
step() {  # step NAME COMMAND...: runs it, records PASS/FAIL and its time
  local name=$1; shift
  local t0=$SECONDS
  if "$@" >>"$log" 2>&1; then summary+=("PASS  $name ($((SECONDS - t0)) s)"); return 0; fi
  summary+=("FAIL  $name ($((SECONDS - t0)) s; see $log)"); return 1
}
: >"$log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/device: /' | tee -a "$log"
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)
step configure cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHYVIDEO_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${arch:-90}" -DHYVIDEO_BUILD_TESTS=OFF -DHYVIDEO_BUILD_TOOLS=OFF \
  -DHYVIDEO_BUILD_EXAMPLES=OFF -DHYVIDEO_BUILD_BENCH=OFF -DHYVIDEO_INSTALL=OFF &&
  step build cmake --build "$build" --target hyvideo_cuda_tests &&
  step "conformance and golden fixtures on cuda" "$build/bin/hyvideo_cuda_tests"
tail -n 30 "$log"
echo "---- summary"
printf '%s\n' "${summary[@]}"
[[ ${summary[*]} != *FAIL* ]]
