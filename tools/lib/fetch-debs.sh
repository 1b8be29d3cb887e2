# shellcheck shell=bash
# Sourced by tools/fetch-test-music.sh and tools/fetch-wide-music.sh: downloads Debian packages
# with `apt-get download` (Debian's mirror is the only network the project uses) and unpacks
# them with dpkg-deb. The sourcing script defines die() (prints its name and the reason, exits 1).
#
#   fetch_debs PACKAGE...    sets WORK, a temporary folder removed on exit, and unpacks every
#                            package under "$WORK/root"

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
