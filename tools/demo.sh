#!/usr/bin/env bash
# trainspotter demo: set up, build, ingest real music as a "training dataset", serve it over
# gRPC, and ask whether a few distorted clips (and a track that is not in it) are members.
#
#   tools/demo.sh            # everything, from a fresh Debian 12 machine (as root)
#
# Uses the real-music fixture (Debian's drascula-music and asc-music, fetched with apt).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1/6 installing Debian packages (tools/setup.sh)"
tools/setup.sh
MUSIC="${TRAINSPOTTER_MUSIC_DIR:-${HOME:-/root}/.cache/trainspotter/music}"
TRAINSPOTTER_MUSIC_DIR="$MUSIC" tools/fetch-test-music.sh

step "2/6 building (build/)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target trainspotter >/dev/null
TS="$ROOT/build/bin/trainspotter"

WORK="$ROOT/build/demo"
rm -rf "$WORK"
mkdir -p "$WORK/dataset" "$WORK/clips"
# The "training dataset": every track but one, which plays the non-member.
mapfile -t TRACKS < <(find "$MUSIC" -maxdepth 1 -type f \( -name '*.ogg' -o -name '*.mp3' \) | sort)
NONMEMBER="$MUSIC/track12.ogg"
[ -f "$NONMEMBER" ] || NONMEMBER="${TRACKS[-1]}"
for t in "${TRACKS[@]}"; do
  [ "$t" = "$NONMEMBER" ] || ln -s "$t" "$WORK/dataset/$(basename "$t")"
done

step "fingerprints of two real tracks (the same as Debian's fpcalc prints; cut to 100 columns)"
"$TS" fingerprint "${TRACKS[0]}" "${TRACKS[1]}" | cut -c1-100

step "3/6 ingesting ${#TRACKS[@]} - 1 real tracks as dataset 'demo-music'"
"$TS" ingest --catalog "$WORK/catalog" --dataset demo-music --version 1 \
  --description "Debian drascula-music + asc-music" "$WORK/dataset"
"$TS" datasets --catalog "$WORK/catalog"

step "4/6 making query clips with ffmpeg"
SRC="$MUSIC/frontiers.mp3"
[ -f "$SRC" ] || SRC="${TRACKS[0]}"
ff() { ffmpeg -nostdin -v error -y "$@"; }
ff -ss 61.3 -t 10 -i "$SRC" -c:a libmp3lame -b:a 64k "$WORK/clips/frontiers_61s_mp3-64k.mp3"
ff -ss 120 -t 8 -i "$SRC" -af "volume=-6dB,aresample=22050" "$WORK/clips/frontiers_120s_quiet_22kHz.wav"
ff -ss 30 -t 12 -i "$SRC" -af "aresample=44100,asetrate=44100*1.02,aresample=44100" -c:a libopus -b:a 32k \
  "$WORK/clips/frontiers_30s_speed+2pc_opus.opus"
ff -t 10 -i "$NONMEMBER" -c:a libmp3lame -b:a 128k "$WORK/clips/not_in_dataset.mp3"
ff -f lavfi -i "anullsrc=r=44100:cl=stereo" -t 10 "$WORK/clips/silence.wav"
ls -1 "$WORK/clips"

step "5/6 querying the catalogue directly (trainspotter query)"
"$TS" query --catalog "$WORK/catalog" "$WORK"/clips/* || true

if "$TS" serve --help >/dev/null 2>&1 && "$TS" scan --help >/dev/null 2>&1; then
  step "6/6 serving on loopback and scanning the clips over gRPC (trainspotter serve / scan)"
  PORTFILE="$WORK/serve.out"
  "$TS" serve --catalog "$WORK/catalog" --listen 127.0.0.1:0 >"$PORTFILE" 2>"$WORK/serve.log" &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true' EXIT
  ADDR=""
  for _ in $(seq 1 100); do
    ADDR="$(grep -o 'listening on [0-9.:]*' "$PORTFILE" 2>/dev/null | awk '{print $3}' || true)"
    [ -n "$ADDR" ] && break
    sleep 0.1
  done
  if [ -z "$ADDR" ]; then
    echo "demo: server did not start:"; cat "$WORK/serve.log"; exit 1
  fi
  echo "server listening on $ADDR"
  "$TS" scan --server "$ADDR" --out "$WORK/report.jsonl" "$WORK/clips"
  kill -TERM "$SERVER"
  wait "$SERVER" || true
  trap - EXIT
fi
step "done"
