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

count_tracks() {
  find "$DIR" -maxdepth 1 -type f \( -name '*.ogg' -o -name '*.mp3' \) 2>/dev/null | wc -l
}

if [ -f "$STAMP" ] && [ "$(count_tracks)" -ge "$EXPECTED_TRACKS" ]; then
  exit 0
fi

die() { echo "fetch-test-music.sh: $*" >&2; exit 1; }
for tool in apt-get dpkg-deb; do
  command -v "$tool" >/dev/null || die "'$tool' not found (this script needs Debian's apt)"
done
mkdir -p "$DIR" || die "cannot create $DIR"

work="$(mktemp -d "${TMPDIR:-/tmp}/trainspotter-music.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# apt-get download runs its fetcher as the unprivileged _apt user when started as root; give that
# user a folder it may write, so apt neither warns nor falls back to an unsandboxed download.
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
  chown _apt "$work"
fi
cd "$work"

download() {
  apt-get download -q "${PACKAGES[@]}" >"$work/apt.log" 2>&1
}
if ! download; then
  # A fresh machine may have no package lists yet.
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
  elif command -v sudo >/dev/null; then
    sudo apt-get update -qq >/dev/null 2>&1 || true
  fi
  download || { cat "$work/apt.log" >&2; die "apt-get download ${PACKAGES[*]} failed"; }
fi

for deb in "$work"/*.deb; do
  dpkg-deb -x "$deb" "$work/root" || die "cannot unpack $deb"
done

n=0
while IFS= read -r -d '' f; do
  cp -f "$f" "$DIR/$(basename "$f")"
  n=$((n + 1))
done < <(find "$work/root" -type f \( -name '*.ogg' -o -name '*.mp3' \) -print0)

have="$(count_tracks)"
[ "$have" -ge "$EXPECTED_TRACKS" ] || die "expected $EXPECTED_TRACKS tracks in $DIR, found $have"
touch "$STAMP"
echo "fetch-test-music.sh: $have tracks in $DIR"
