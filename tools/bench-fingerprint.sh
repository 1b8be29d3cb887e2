#!/usr/bin/env bash
# Benchmarks `trainspotter fingerprint` against Debian's fpcalc 1.5.1 on the real-music fixture
# (tools/fetch-test-music.sh): the same files, the same -length, CPU time (user + system) as
# reported by bash for the child processes.
#
#   tools/bench-fingerprint.sh [-b BINARY] [-l SECONDS] [-r ROUNDS] [-c COPIES]
#     -b  trainspotter binary (default: build/bin/trainspotter)
#     -l  seconds fingerprinted per file, as fpcalc -length (default 120)
#     -r  rounds; the fastest round of each measurement is reported (default 3)
#     -c  copies of the file list for the bulk (--jobs) measurement (default 2)
#
# Measurements:
#   1. one process per file, as fpcalc must be run (it stops at the first file shorter than
#      -length, and its multi-file output does not say which file a print belongs to):
#      CPU per file for fpcalc and for `trainspotter fingerprint FILE`;
#   2. one `trainspotter fingerprint FILE...` process for all the files (its bulk mode):
#      CPU per file;
#   3. wall time of bulk mode over COPIES x the fixture with --jobs 1 and --jobs 2 (speedup).
# Targets: 2. <= 0.9 x fpcalc's CPU per file; 3. >= 1.8x with two cores (when idle).
# It also checks that every raw fingerprint equals fpcalc's, so the comparison is like for like.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=build/bin/trainspotter
LENGTH=120
ROUNDS=3
COPIES=2
while getopts "b:l:r:c:h" opt; do
  case "$opt" in
    b) BIN="$OPTARG" ;;
    l) LENGTH="$OPTARG" ;;
    r) ROUNDS="$OPTARG" ;;
    c) COPIES="$OPTARG" ;;
    *) sed -n '2,20p' "$0"; exit 2 ;;
  esac
done

die() { echo "bench-fingerprint.sh: $*" >&2; exit 1; }
[ -x "$BIN" ] || die "no binary at $BIN (build first: tools/test.sh, or -b PATH)"
command -v fpcalc >/dev/null || die "fpcalc not found (apt-get install libchromaprint-tools)"
tools/fetch-test-music.sh
MUSIC="${TRAINSPOTTER_MUSIC_DIR:-${HOME:-/root}/.cache/trainspotter/music}"
mapfile -t FILES < <(find "$MUSIC" -maxdepth 1 -type f \( -name '*.ogg' -o -name '*.mp3' \) | sort)
N=${#FILES[@]}
[ "$N" -gt 0 ] || die "no tracks in $MUSIC"

# Prints the CPU seconds (user + sys) and wall seconds the given command's children used.
measure() {
  local TIMEFORMAT='%3U %3S %3R'
  local t
  t=$( { time "$@" >/dev/null 2>&1; } 2>&1 ) || true
  awk '{printf "%.3f %.3f\n", $1 + $2, $3}' <<<"$t"
}
# Fastest of ROUNDS runs: "cpu wall".
best() {
  local best_cpu="" best_wall=""
  for _ in $(seq "$ROUNDS"); do
    read -r cpu wall < <(measure "$@")
    if [ -z "$best_cpu" ] || awk -v a="$cpu" -v b="$best_cpu" 'BEGIN{exit !(a<b)}'; then
      best_cpu=$cpu
    fi
    if [ -z "$best_wall" ] || awk -v a="$wall" -v b="$best_wall" 'BEGIN{exit !(a<b)}'; then
      best_wall=$wall
    fi
  done
  echo "$best_cpu $best_wall"
}

each_fpcalc() { for f in "${FILES[@]}"; do fpcalc -length "$LENGTH" "$f" || true; done; }
each_ours() { for f in "${FILES[@]}"; do "$BIN" fingerprint --length "$LENGTH" "$f"; done; }
bulk_ours() { "$BIN" fingerprint --jobs 1 --length "$LENGTH" "${FILES[@]}"; }

echo "== correctness: raw items vs fpcalc -raw on $N files, -length $LENGTH"
mismatches=0
for f in "${FILES[@]}"; do
  a=$("$BIN" fingerprint --raw --length "$LENGTH" "$f" 2>/dev/null | grep '^FINGERPRINT=' || true)
  b=$(fpcalc -raw -length "$LENGTH" "$f" 2>/dev/null | grep '^FINGERPRINT=' || true)
  if [ -z "$a" ] || [ "$a" != "$b" ]; then
    echo "  DIFFERENT: $f"
    mismatches=$((mismatches + 1))
  fi
done
echo "  $((N - mismatches))/$N identical"

echo "== CPU time, $N files, -length $LENGTH, best of $ROUNDS"
read -r fp_cpu _ < <(best each_fpcalc)
read -r each_cpu _ < <(best each_ours)
read -r bulk_cpu _ < <(best bulk_ours)
awk -v n="$N" -v fp="$fp_cpu" -v each="$each_cpu" -v bulk="$bulk_cpu" 'BEGIN {
  printf "  fpcalc, one process per file:          %6.1f ms/file\n", 1000 * fp / n
  printf "  trainspotter, one process per file:    %6.1f ms/file  (%.2fx fpcalc)\n", 1000 * each / n, each / fp
  printf "  trainspotter, one process (bulk mode): %6.1f ms/file  (%.2fx fpcalc; target <= 0.90x)\n", 1000 * bulk / n, bulk / fp
}'

startup_fp=$(best fpcalc -version | cut -d' ' -f1)
startup_ours=$(best "$BIN" --version | cut -d' ' -f1)
awk -v a="$startup_fp" -v b="$startup_ours" 'BEGIN {
  printf "  process start-up alone: fpcalc %.1f ms, trainspotter %.1f ms\n", 1000 * a, 1000 * b }'

MANY=()
for _ in $(seq "$COPIES"); do MANY+=("${FILES[@]}"); done
echo "== bulk mode wall time, ${#MANY[@]} files, best of $ROUNDS ($(nproc) cores)"
read -r cpu1 wall1 < <(best "$BIN" fingerprint --jobs 1 --length "$LENGTH" "${MANY[@]}")
read -r cpu2 wall2 < <(best "$BIN" fingerprint --jobs 2 --length "$LENGTH" "${MANY[@]}")
awk -v a="$wall1" -v b="$wall2" -v c1="$cpu1" -v c2="$cpu2" 'BEGIN {
  printf "  --jobs 1: %.2f s (%.2f s CPU)   --jobs 2: %.2f s (%.2f s CPU)   speedup %.2fx (target >= 1.8x)\n", a, c1, b, c2, a / b }'
echo "  load average: $(cut -d' ' -f1-3 /proc/loadavg) (other processes on the same cores lower the speedup)"
[ "$mismatches" -eq 0 ] || exit 1
