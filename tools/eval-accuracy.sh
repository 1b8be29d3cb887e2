#!/usr/bin/env bash
# Accuracy benchmark on real music: hit rate per clip length x distortion, and false positives.
# Sets up, builds build/bin/trainspotter if needed, fetches the real-music fixture, then runs
# tools/eval_accuracy.py (extra arguments go to it: --offsets N, --seed S, --music DIR, ...).
#
#   tools/eval-accuracy.sh                 # ~5 minutes on 2 cores
#   tools/eval-accuracy.sh --offsets 5     # more clips per track and cell
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/fetch-test-music.sh
if [ ! -x build/bin/trainspotter ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build build -j"$(nproc)" --target trainspotter >/dev/null
exec python3 tools/eval_accuracy.py --trainspotter build/bin/trainspotter "$@"
