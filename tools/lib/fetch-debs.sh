# shellcheck shell=bash
# Sourced by tools/fetch-test-music.sh, tools/fetch-wide-music.sh and tools/fetch-third-music.sh:
# downloads Debian packages with `apt-get download` (Debian's mirror is the only network the
# project uses) and unpacks them with dpkg-deb. The sourcing script defines die() (prints its
# name and the reason, exits 1).
#
#   fetch_debs PACKAGE...    sets WORK, a temporary folder removed on exit, and unpacks every
#                            package under "$WORK/root"
#   fetch_done DIR STAMP COUNT EXT...
#                            true if an earlier run finished: STAMP exists and DIR holds at
#                            least COUNT files ending in one of the EXTs
#   mark_fetch_done DIR STAMP COUNT EXT...
#                            dies unless DIR holds COUNT such files, then writes STAMP and says
#                            how many there are

fetch_debs() {
  local tool deb
  for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null || die "'$tool' not found (this script needs Debian's apt)"
  done
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/trainspotter-debs.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
  # apt-get download runs its fetcher as the unprivileged _apt user when started as root; give
  # that user a folder it may write, so apt neither warns nor falls back to an unsandboxed
  # download.
  if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
    chown _apt "$WORK"
  fi
  if ! _fetch_debs_download "$@"; then
    # A fresh machine may have no package lists yet.
    if [ "$(id -u)" -eq 0 ]; then
      apt-get update -qq >/dev/null 2>&1 || true
    elif command -v sudo >/dev/null; then
      sudo apt-get update -qq >/dev/null 2>&1 || true
    fi
    _fetch_debs_download "$@" || { cat "$WORK/apt.log" >&2; die "apt-get download $* failed"; }
  fi
  for deb in "$WORK"/*.deb; do
    dpkg-deb -x "$deb" "$WORK/root" || die "cannot unpack $deb"
  done
}

_fetch_debs_download() {
  (cd "$WORK" && apt-get download -q "$@") >"$WORK/apt.log" 2>&1
}

_count_tracks() {  # DIR EXT...
  local dir="$1" ext
  shift
  local names=()
  for ext in "$@"; do names+=(${names[@]:+-o} -name "*.$ext"); done
  find "$dir" -maxdepth 1 -type f \( "${names[@]}" \) 2>/dev/null | wc -l
}

fetch_done() {
  [ -f "$2" ] && [ "$(_count_tracks "$1" "${@:4}")" -ge "$3" ]
}

mark_fetch_done() {
  local have
  have="$(_count_tracks "$1" "${@:4}")"
  [ "$have" -ge "$3" ] || die "expected $3 tracks in $1, found $have"
  touch "$2"
  echo "$(basename "$0"): $have tracks in $1"
}
