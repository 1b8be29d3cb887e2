#!/usr/bin/env bash
# Fetches a third real-music corpus, for checking the matcher and the decision on music neither
# was tuned on (the fixture, tools/fetch-test-music.sh, and the second corpus,
# tools/fetch-wide-music.sh, were both used to choose constants): 93 tracks, ~4.7 hours:
#   nexuiz-music        20 electronic/metal tracks (Ogg Vorbis, packed in a .pk3 zip archive)
#   hedgewars-data      26 tracks of many styles (Ogg Vorbis)
#   supertux-data       44 tracks (Ogg Vorbis; themes recur across tracks, some are remixes)
#   lincity-ng-data      3 tracks (Ogg Vorbis)
# About 440 MB of .deb files come from Debian's mirror (apt-get download); only files over
# 300 kB are kept (all of Nexuiz's, which are all music). Not used by tools/test.sh or CI.
#
#   tools/fetch-third-music.sh      # into $TRAINSPOTTER_THIRD_MUSIC_DIR or ~/.cache/trainspotter/music-third
#   tools/eval-accuracy.sh --music ~/.cache/trainspotter/music-third --work build/eval-third --offsets 4
#   tools/null-calibration.sh --music ~/.cache/trainspotter/music-third --work build/null-third --stride 8
#
# Idempotent: when the folder already holds the corpus it prints nothing and exits 0.
# Exit status: 0 corpus ready, 1 it could not be fetched (the message says why).
set -euo pipefail

EXPECTED_TRACKS=93
DIR="${TRAINSPOTTER_THIRD_MUSIC_DIR:-${HOME:-/root}/.cache/trainspotter/music-third}"
STAMP="$DIR/.corpus-complete"
PACKAGES=(nexuiz-music hedgewars-data supertux-data lincity-ng-data)

die() { echo "fetch-third-music.sh: $*" >&2; exit 1; }
# shellcheck source=tools/lib/fetch-debs.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/fetch-debs.sh"
if fetch_done "$DIR" "$STAMP" "$EXPECTED_TRACKS" ogg; then
  exit 0
fi
command -v python3 >/dev/null || die "python3 not found (it unpacks Nexuiz's .pk3 archive)"
mkdir -p "$DIR" || die "cannot create $DIR"
echo "fetch-third-music.sh: downloading ${PACKAGES[*]} (~440 MB) ..." >&2
fetch_debs "${PACKAGES[@]}"

pk3="$WORK/root/usr/share/games/nexuiz/data/music.pk3"
[ -f "$pk3" ] || die "nexuiz-music has no $pk3 (a different package version?)"
python3 -m zipfile -e "$pk3" "$WORK/nexuiz" || die "cannot unpack $pk3"
# Every file of the archive is a soundtrack piece; one is only 218 kB (48 s).
copy_tracks "$DIR" "$WORK/nexuiz/sound/cdtracks" nexuiz 1 0 ogg
# Only files over 300 kB, as for the second corpus (SuperTux's level-done and power-up cues are
# smaller). SuperTux repeats names across its folders.
copy_tracks "$DIR" "$WORK/root/usr/share/games/hedgewars/Data/Music" hedgewars 1 300k ogg
copy_tracks "$DIR" "$WORK/root/usr/share/games/supertux2/music" supertux 2 300k ogg
copy_tracks "$DIR" "$WORK/root/usr/share/games/lincity-ng/music/default" lincity 1 300k ogg

mark_fetch_done "$DIR" "$STAMP" "$EXPECTED_TRACKS" ogg
