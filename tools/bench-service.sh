#!/usr/bin/env bash
# Service benchmark: the gRPC edge's overhead over a local catalogue query, its throughput, and
# whether a bulk scan is bound by local decoding. Everything runs on this machine, on loopback.
#
#   tools/bench-service.sh [BUILD_DIR]        (default: build)
#   FILES=1000 TRACKS=2000 QUERIES=1000 tools/bench-service.sh build
#
# Prints, for a catalogue that answers at once (the edge alone) and for the real one:
# p50/p90/p99 of Catalog::Match in process vs MatchFingerprint over gRPC, the difference
# (service overhead), MatchStream and concurrent-unary queries/s; then local
# decode+fingerprint files/s vs `trainspotter scan` files/s over FILES synthetic 10 s WAVs.
set -euo pipefail
BUILD=${1:-build}
FILES=${FILES:-1000}
TRACKS=${TRACKS:-2000}
QUERIES=${QUERIES:-1000}
BIN="$BUILD/bin"
for b in trainspotter service_bench; do
  [ -x "$BIN/$b" ] || { echo "bench-service.sh: $BIN/$b not built (cmake --build $BUILD --target $b)" >&2; exit 1; }
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/trainspotter-bench-service.XXXXXX")
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== the gRPC edge alone (a catalogue that answers at once)"
"$BIN/service_bench" --instant --queries "$QUERIES"
echo
echo "== over the real catalogue ($TRACKS tracks)"
"$BIN/service_bench" --tracks "$TRACKS" --queries "$QUERIES"

echo
echo "== bulk scan of $FILES synthetic 10 s files"
"$BIN/service_bench" --write-wavs "$WORK/files" --count "$FILES"
"$BIN/service_bench" --make-catalog "$WORK/catalog" --tracks "$TRACKS"
"$BIN/service_bench" --fingerprint-dir "$WORK/files" --jobs "$(nproc)"

scan() {  # CATALOG LABEL: serve CATALOG on loopback, scan the files against it, stop
  "$BIN/trainspotter" serve --catalog "$1" --listen 127.0.0.1:0 \
    >"$WORK/serve.out" 2>"$WORK/serve.err" &
  SERVER_PID=$!
  for _ in $(seq 100); do grep -q "listening on" "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
  ADDR=$(sed -n 's/^listening on //p' "$WORK/serve.out")
  [ -n "$ADDR" ] || { cat "$WORK/serve.err" >&2; exit 1; }
  rm -f "$WORK/report.jsonl"
  start=$(date +%s.%N)
  "$BIN/trainspotter" scan -q --server "$ADDR" --jobs "$(nproc)" --out "$WORK/report.jsonl" \
    "$WORK/files" >"$WORK/scan.out" || true
  end=$(date +%s.%N)
  lines=$(wc -l <"$WORK/report.jsonl")
  awk -v n="$lines" -v s="$start" -v e="$end" -v label="$2" 'BEGIN {
    printf "trainspotter scan (fingerprints over MatchStream), %s: %d files in %.2f s = %.1f files/s\n",
           label, n, e - s, n / (e - s) }'
  grep -E "^(files scanned|members|unreadable)" "$WORK/scan.out"
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
scan "$WORK/catalog" "$TRACKS-track catalogue"
# The same scan when matching costs next to nothing (a 1-track catalogue): what the client,
# the protocol and the network sustain.
"$BIN/service_bench" --make-catalog "$WORK/tiny" --tracks 1
scan "$WORK/tiny" "1-track catalogue"
# ... against the same files queried locally, with the same variants (decode once, fingerprint
# eight times): the local bound a scan can reach.
start=$(date +%s.%N)
"$BIN/trainspotter" query --catalog "$WORK/tiny" --json --jobs "$(nproc)" "$WORK"/files/* \
  >"$WORK/local.jsonl" 2>/dev/null || true
end=$(date +%s.%N)
awk -v n="$(wc -l <"$WORK/local.jsonl")" -v s="$start" -v e="$end" 'BEGIN {
  printf "trainspotter query, same files, same variants, locally: %d files in %.2f s = %.1f files/s\n",
         n, e - s, n / (e - s) }'
