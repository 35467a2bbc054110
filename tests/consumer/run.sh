#!/usr/bin/env bash
# Builds and runs the consumer project in this directory both ways a downstream project uses hyvideo:
#   (a) add_subdirectory() of the source tree,
#   (b) find_package(hyvideo CONFIG REQUIRED) after `cmake --install` into a scratch prefix.
# Registered as a CTest test by tests/CMakeLists.txt; also runnable by hand:
#   tests/consumer/run.sh SOURCE_DIR WORK_DIR EXPECT_ONEDNN(0|1) [cmake configure arguments...]
# The configure arguments (generator, compiler, HYVIDEO_USE_ONEDNN) are passed to every configure,
# so that both consumers are built the way the enclosing hyvideo build was.
set -euo pipefail

if [[ $# -lt 3 ]]; then
  sed -n '2,8p' "$0" >&2
  exit 2
fi
src=$(cd "$1" && pwd)
work=$2
expect_onednn=$3
shift 3
cmake_args=("$@")
consumer="$src/tests/consumer"

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)

# Configures, builds and runs the consumer in $1; the remaining arguments select how it finds hyvideo.
build_and_run() {
  local dir=$1
  shift
  # HYVIDEO_USE_ONEDNN means nothing to the find_package consumer (the package fixed it): no warning.
  cmake -S "$consumer" -B "$dir" --no-warn-unused-cli "${cmake_args[@]}" "$@"
  cmake --build "$dir" -j2
  local line
  line=$("$dir/hyvideo_consumer")
  echo "$line"
  # The program checks its numbers itself; the oneDNN flag shows the usage requirements arrived.
  if [[ $line != *"onednn=$expect_onednn OK"* ]]; then
    echo "run.sh: expected 'onednn=$expect_onednn OK' from $dir/hyvideo_consumer" >&2
    return 1
  fi
  # hyvideo::hyvideo brings no FFmpeg; hyvideo::video does.
  if ldd "$dir/hyvideo_consumer" | grep -q 'libav'; then
    echo "run.sh: $dir/hyvideo_consumer links FFmpeg, which only hyvideo::video should bring" >&2
    return 1
  fi
  line=$("$dir/hyvideo_consumer_video" "$dir/frame.png")
  echo "$line"
  if [[ $line != *"video OK"* ]]; then
    echo "run.sh: expected 'video OK' from $dir/hyvideo_consumer_video" >&2
    return 1
  fi
}

echo "== (a) add_subdirectory"
build_and_run "$work/subdirectory" -DHYVIDEO_SOURCE_DIR="$src"

echo "== (b) cmake --install, then find_package"
# A configure of hyvideo alone suffices: the library is header-only, so installing it builds nothing.
cmake -S "$src" -B "$work/hyvideo-build" "${cmake_args[@]}" \
  -DHYVIDEO_BUILD_TESTS=OFF -DHYVIDEO_BUILD_TOOLS=OFF -DHYVIDEO_BUILD_EXAMPLES=OFF -DHYVIDEO_BUILD_BENCH=OFF
cmake --install "$work/hyvideo-build" --prefix "$work/prefix"
build_and_run "$work/installed" -DCMAKE_PREFIX_PATH="$work/prefix"
# Guard against the consumer having found some other hyvideo (a system-wide install, say).
found=$(sed -n 's/^hyvideo_DIR:PATH=//p' "$work/installed/CMakeCache.txt")
if [[ $found != "$work/prefix/"* ]]; then
  echo "run.sh: find_package used $found, not the package installed under $work/prefix" >&2
  exit 1
fi
echo "run.sh: both consumers built and ran"
