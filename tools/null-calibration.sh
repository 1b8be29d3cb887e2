#!/usr/bin/env bash
# Checks the decision's false-match probability on non-member audio (tools/null_calibration.py):
# sets up, builds trainspotter and null_calibration if needed, fetches the real-music fixture,
# then queries every 5, 10 and 30 s clip of each fixture track against a catalogue of the other
# tracks. Extra arguments go to the script (--stride N, --music DIR, --work DIR).
#
#   tools/null-calibration.sh              # ~1.5 minutes on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/fetch-test-music.sh
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build build -j"$(nproc)" --target trainspotter null_calibration >/dev/null
exec python3 tools/null_calibration.py --bin build/bin "$@"
