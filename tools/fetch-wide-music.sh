#!/usr/bin/env bash
# Fetches a second, larger real-music corpus for checking a change of the matcher or the decision
# on music it was not tuned on: 62 tracks, ~4.4 hours, of other genres than the test fixture
# (tools/fetch-test-music.sh):
#   wesnoth-1.16-music     36 orchestral tracks (Ogg Vorbis; themes recur across tracks)
#   warzone2100-music      16 long electronic/rock tracks of two albums (Opus; some share stems)
#   extremetuxracer-data    7 tracks (Ogg Vorbis)
#   frozen-bubble-data      3 tracks (Ogg Vorbis)
# About 300 MB of .deb files come from Debian's mirror (apt-get download); only files over 300 kB
# are kept, so jingles and sound effects are left out. Not used by tools/test.sh or CI.
#
#   tools/fetch-wide-music.sh       # into $TRAINSPOTTER_WIDE_MUSIC_DIR or ~/.cache/trainspotter/music-wide
#   tools/null-calibration.sh --music ~/.cache/trainspotter/music-wide --work build/null-wide
#   tools/eval-accuracy.sh --music ~/.cache/trainspotter/music-wide --work build/eval-wide
#
# Idempotent: when the folder already holds the corpus it prints nothing and exits 0.
# Exit status: 0 corpus ready, 1 it could not be fetched (the message says why).
set -euo pipefail

EXPECTED_TRACKS=62
DIR="${TRAINSPOTTER_WIDE_MUSIC_DIR:-${HOME:-/root}/.cache/trainspotter/music-wide}"
STAMP="$DIR/.corpus-complete"
# package, folder inside it, prefix given to its files (names repeat across packages)
SOURCES=(
  "wesnoth-1.16-music usr/share/games/wesnoth/1.16/data/core/music wesnoth"
  "warzone2100-music usr/share/games/warzone2100/music/albums/original_soundtrack warzone"
  "warzone2100-music usr/share/games/warzone2100/music/albums/legacy_soundtrack warzone"
  "extremetuxracer-data usr/share/games/etr/music etr"
  "frozen-bubble-data usr/share/games/frozen-bubble/snd frozen-bubble"
)

die() { echo "fetch-wide-music.sh: $*" >&2; exit 1; }
# shellcheck source=tools/lib/fetch-debs.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/fetch-debs.sh"
if fetch_done "$DIR" "$STAMP" "$EXPECTED_TRACKS" ogg opus; then
  exit 0
fi
mkdir -p "$DIR" || die "cannot create $DIR"

packages=()
for s in "${SOURCES[@]}"; do
  read -r pkg _ _ <<<"$s"
  [[ " ${packages[*]} " == *" $pkg "* ]] || packages+=("$pkg")
done
echo "fetch-wide-music.sh: downloading ${packages[*]} (~300 MB) ..." >&2
fetch_debs "${packages[@]}"

for s in "${SOURCES[@]}"; do
  read -r _ folder prefix <<<"$s"
  copy_tracks "$DIR" "$WORK/root/$folder" "$prefix" 1 300k ogg opus
done

mark_fetch_done "$DIR" "$STAMP" "$EXPECTED_TRACKS" ogg opus
