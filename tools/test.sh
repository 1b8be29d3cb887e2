#!/usr/bin/env bash
# Builds trainspotter and runs every test, as CI does (.ci/run execs this). Works on a fresh
# Debian 12 as root (or with sudo): installs the Debian packages it needs (tools/setup.sh),
# fetches the real-music fixture (tools/fetch-test-music.sh), configures build/ (Ninja,
# warnings as errors), builds on all cores and runs ctest. Quiet when everything is in place:
# tool output is kept in build/*.log and shown only when a step fails.
#
#   tools/test.sh                 # everything
#   tools/test.sh -R fingerprint  # extra arguments go to ctest
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"

tools/setup.sh
tools/fetch-test-music.sh
export TRAINSPOTTER_MUSIC_DIR="${TRAINSPOTTER_MUSIC_DIR:-${HOME:-/root}/.cache/trainspotter/music}"

mkdir -p build
run_logged() {  # run_logged LOG CMD...: quiet unless it fails
  local log="$1"; shift
  if ! "$@" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "tools/test.sh: failed: $* (full log: $log)" >&2
    exit 1
  fi
}

run_logged build/configure.log \
  cmake -S "$root" -B build -G Ninja -DTRAINSPOTTER_WERROR=ON \
    -DTRAINSPOTTER_TEST_MUSIC_DIR="$TRAINSPOTTER_MUSIC_DIR"
run_logged build/build.log cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j2 "$@"
