#!/usr/bin/env bash
# Fetches the real-music test fixture: the soundtracks of two free games packaged by Debian
# (drascula-music: 31 Ogg Vorbis tracks, asc-music: 3 MP3 tracks), 34 in all. Downloads the .deb files
# with `apt-get download` (Debian's mirror is the only network the project uses), unpacks them with
# dpkg-deb and leaves the audio files flat in one folder.
#
#   tools/fetch-test-music.sh            # into $TRAINSPOTTER_MUSIC_DIR or ~/.cache/trainspotter/music
#   TRAINSPOTTER_MUSIC_DIR=/data/music tools/fetch-test-music.sh
#
# Idempotent and quiet: when the folder already holds the fixture it prints nothing and exits 0.
# Exit status: 0 fixture ready, 1 it could not be fetched (the message says why).
set -euo pipefail

PACKAGES=(drascula-music asc-music)
EXPECTED_TRACKS=34
DIR="${TRAINSPOTTER_MUSIC_DIR:-${HOME:-/root}/.cache/trainspotter/music}"
STAMP="$DIR/.fixture-complete"

die() { echo "fetch-test-music.sh: $*" >&2; exit 1; }
# shellcheck source=tools/lib/fetch-debs.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/fetch-debs.sh"
if fetch_done "$DIR" "$STAMP" "$EXPECTED_TRACKS" ogg mp3; then
  exit 0
fi
mkdir -p "$DIR" || die "cannot create $DIR"
fetch_debs "${PACKAGES[@]}"

while IFS= read -r -d '' f; do
  cp -f "$f" "$DIR/$(basename "$f")"
done < <(find "$WORK/root" -type f \( -name '*.ogg' -o -name '*.mp3' \) -print0)

mark_fetch_done "$DIR" "$STAMP" "$EXPECTED_TRACKS" ogg mp3
