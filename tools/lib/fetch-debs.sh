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
#   copy_tracks DEST FOLDER PREFIX DEPTH MIN_SIZE EXT...
#                            copies every file ending in one of the EXTs and larger than
#                            MIN_SIZE (find's -size: 300k, 0) from FOLDER, at most DEPTH levels
#                            down, into DEST as PREFIX_NAME (spaces made underscores); with a
#                            DEPTH above 1 the file's own folder goes into the name too
#                            (PREFIX_SUBFOLDER_NAME), as names repeat across subfolders; dies
#                            if FOLDER is missing
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

_name_patterns() {  # EXT...: sets _NAMES to find's (-name '*.EXT' -o ...) for them
  local ext
  _NAMES=()
  for ext in "$@"; do _NAMES+=(${_NAMES[@]:+-o} -name "*.$ext"); done
}

_count_tracks() {  # DIR EXT...
  local dir="$1"
  shift
  _name_patterns "$@"
  find "$dir" -maxdepth 1 -type f \( "${_NAMES[@]}" \) 2>/dev/null | wc -l
}

copy_tracks() {
  local dest="$1" folder="$2" prefix="$3" depth="$4" min_size="$5" f name
  shift 5
  [ -d "$folder" ] || die "no folder $folder (a different package version?)"
  _name_patterns "$@"
  while IFS= read -r -d '' f; do
    name="$(basename "$f" | tr ' ' '_')"
    if [ "$depth" -gt 1 ]; then name="$(basename "$(dirname "$f")")_$name"; fi
    cp -f "$f" "$dest/${prefix}_$name"
  done < <(find "$folder" -maxdepth "$depth" -type f \( "${_NAMES[@]}" \) -size +"$min_size" \
    -print0)
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
