#!/usr/bin/env bash
# Scale benchmark: synthetic catalogues of 10k and 100k tracks (and 1M when the 100k figures
# say it fits), built once into a cache folder by `trainspotter synth`, measured by scale_bench:
# open time with the index, RSS after open (and per indexed hour), bytes on disk, Catalog::Match
# latency (p50/p99, one thread), throughput (2 threads), hit rate and false positives on the
# labelled query set, and how many of the exhaustive scan's hits the approximate index finds
# (on the first E member queries: the scan costs ~4.5 ms of CPU per indexed hour); plus the
# ingest rate of a fingerprint manifest (`ingest --manifest`).
#
#   tools/bench-scale.sh [-b BUILD] [-c CACHE] [-q QUERIES] [-m MAX_QUERIES] [SIZE...]
#     -b  build folder with bin/trainspotter and bin/scale_bench (default: build)
#     -c  cache folder for catalogues and query sets (default: BUILD/scale-cache)
#     -q  member (and as many non-member) queries generated per catalogue (default 200)
#     -m  queries run per catalogue (default: 2 x QUERIES)
#     -e  member queries also answered by the exhaustive scan (default: 2e6 / SIZE, at most 40)
#     SIZE  catalogue sizes in tracks (default: 10000 100000, then 1000000 if it fits:
#           extrapolated RSS < 20 GiB and build + open + queries < 30 min; FORCE_1M=1 to
#           try anyway)
# Results: CACHE/result-SIZE.json (one JSON object each) and a table on stdout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=build
CACHE=""
QUERIES=200
MAX_QUERIES=""
EXHAUSTIVE=""
while getopts "b:c:q:m:e:h" opt; do
  case "$opt" in
    b) BUILD="$OPTARG" ;;
    c) CACHE="$OPTARG" ;;
    q) QUERIES="$OPTARG" ;;
    m) MAX_QUERIES="$OPTARG" ;;
    e) EXHAUSTIVE="$OPTARG" ;;
    *) sed -n '2,20p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
CACHE=${CACHE:-$BUILD/scale-cache}
TS="$BUILD/bin/trainspotter"
BENCH="$BUILD/bin/scale_bench"
for b in "$TS" "$BENCH"; do
  [ -x "$b" ] || { echo "missing $b: cmake --build $BUILD --target trainspotter scale_bench" >&2; exit 2; }
done
mkdir -p "$CACHE"
SIZES=("$@")
AUTO_1M=0
if [ ${#SIZES[@]} -eq 0 ]; then SIZES=(10000 100000); AUTO_1M=1; fi

build_catalogue() {  # SIZE -> CACHE/cat-SIZE, CACHE/q-SIZE.jsonl, CACHE/synth-SIZE.json
  local n=$1 cat="$CACHE/cat-$1"
  if [ -e "$cat/.synth-done" ]; then return; fi
  echo "building $cat ($n tracks)..." >&2
  local t0=$SECONDS
  "$TS" synth --catalog "$cat" --tracks "$n" --seed 1 --queries-out "$CACHE/q-$n.jsonl" \
    --queries "$QUERIES" --quiet
  local t1=$SECONDS
  # The index snapshot, as an operator writes it after a large ingest.
  "$TS" compact --catalog "$cat" >&2
  echo "{\"synth_seconds\": $((t1 - t0)), \"compact_seconds\": $((SECONDS - t1))}" > "$CACHE/synth-$n.json"
  touch "$cat/.synth-done"
}

measure() {  # SIZE
  local n=$1 max=${MAX_QUERIES:-$((2 * QUERIES))} ex=$EXHAUSTIVE
  if [ -z "$ex" ]; then ex=$((2000000 / n)); [ "$ex" -gt 40 ] && ex=40; fi
  build_catalogue "$n"
  echo "measuring $n tracks ($max queries)..." >&2
  "$BENCH" --catalog "$CACHE/cat-$n" --queries "$CACHE/q-$n.jsonl" --max-queries "$max" \
    --threads 2 --exhaustive-queries "$ex" > "$CACHE/result-$n.json.tmp"
  # Open without the snapshot: every fingerprint read from SQLite and indexed.
  "$BENCH" --catalog "$CACHE/cat-$n" --no-snapshot | jq -c '{open_without_snapshot_seconds: .open_seconds}' \
    > "$CACHE/open-$n.json.tmp"
  jq -c -s '.[0] * .[1] * .[2]' "$CACHE/result-$n.json.tmp" "$CACHE/synth-$n.json" \
    "$CACHE/open-$n.json.tmp" > "$CACHE/result-$n.json"
  rm -f "$CACHE/result-$n.json.tmp" "$CACHE/open-$n.json.tmp"
}

for n in "${SIZES[@]}"; do measure "$n"; done

if [ "$AUTO_1M" = 1 ]; then
  r="$CACHE/result-100000.json"
  # x10 tracks: RSS, open and build time scale linearly (measured 10k -> 100k).
  verdict=$(jq -r '
    (.rss_after_open_mib * 10 / 1024) as $rss | ((.open_seconds + .synth_seconds) * 10 / 60) as $min |
    (.p50_ms * 10 / 1000) as $q | ($q * '"$((2 * QUERIES))"' * 2 / 60) as $qmin |
    "\(if $rss < 20 and $min + $qmin < 30 then "fits" else "skip" end) 1M extrapolated: RSS \($rss * 10 | round / 10) GiB, build + open \($min | round) min, p50 query \($q * 1000 | round) ms (queries: \($qmin | round) min)"' "$r")
  echo "$verdict" >&2
  if [[ "$verdict" == fits* ]] || [ "${FORCE_1M:-0}" = 1 ]; then
    measure 1000000; SIZES+=(1000000)
  fi
fi

# Ingest rate of a fingerprint manifest (no decoding): 5000 synthetic tracks.
if [ ! -e "$CACHE/m-5000.jsonl" ]; then
  "$TS" synth --tracks 5000 --seed 2 --manifest-out "$CACHE/m-5000.jsonl" --quiet
fi
rm -rf "$CACHE/ingest-cat"
t0=$(date +%s.%N)
"$TS" ingest --catalog "$CACHE/ingest-cat" --dataset bench --manifest "$CACHE/m-5000.jsonl" \
  --quiet > /dev/null
t1=$(date +%s.%N)
hours=$(jq -s 'map(.duration) | add / 3600' "$CACHE/m-5000.jsonl")
ingest=$(python3 -c "d=$t1-$t0; print(f'ingest --manifest: 5000 tracks ({$hours:.0f} h) in {d:.1f} s = {5000/d:.0f} tracks/s, {$hours/d:.1f} h of audio/s')")
rm -rf "$CACHE/ingest-cat"

printf '\n%-9s %8s %8s %9s %10s %9s %8s %8s %9s %8s %7s %9s %6s %10s\n' tracks hours "open s*" \
  "RSS MiB" "MiB/hour" "disk GB" "p50 ms" "p99 ms" "p50 CPUms" "q/s(2t)" queries "hit rate" FP \
  "vs exhaus."
for n in "${SIZES[@]}"; do
  jq -r '[.tracks, (.hours|round), "\(.open_seconds*10|round/10)/\(.open_without_snapshot_seconds // 0 | .*10|round/10)", (.rss_after_open_mib|round),
          (.rss_mib_per_hour*1000|round/1000), (.disk_bytes/1e9*100|round/100),
          (.p50_ms*10|round/10), (.p99_ms*10|round/10), (.p50_cpu_ms*10|round/10), (.qps*100|round/100), .queries,
          (.hit_rate*1000|round/1000), "\(.false_positives)/\(.non_members)",
          (if .exhaustive_hits then "\(.exhaustive_hits * .approximate_found_of_exhaustive | round)/\(.exhaustive_hits)" else "-" end)] | @tsv' \
    "$CACHE/result-$n.json" |
    awk -F'\t' '{printf "%-9s %8s %8s %9s %10s %9s %8s %8s %9s %8s %7s %9s %6s %10s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14}'
done
echo "* open: from the index snapshot / indexing every fingerprint (no snapshot)"
echo "$ingest"
