#!/bin/bash
# Run by Spark's RDD.pipe (spark_fingerprint.py): reads shard indexes, one per line, on stdin;
# fingerprints each shard into $PARTS/part-<i>.jsonl and prints one JSON line per shard:
#   {"shard": 3, "exit": 0, "part": "/data/parts/part-03.jsonl"}
# A retryable failure (exit 3) makes this script fail, so Spark retries the task
# (spark.task.maxFailures); a permanent one (exit 4) is reported and the others go on.
set -uo pipefail
: "${MANIFEST:?}" "${PARTS:?}" "${SHARDS:?}"
TRAINSPOTTER=${TRAINSPOTTER:-trainspotter}
last=$((SHARDS - 1))
width=${#last}   # part names are zero-padded to the width of the last index, as {shard} is
while read -r shard; do
  [ -z "$shard" ] && continue
  "$TRAINSPOTTER" fingerprint --manifest "$MANIFEST" --shard "$shard/$SHARDS" \
    --jobs "${JOBS:-1}" --quiet --out "$PARTS/part-{shard}.jsonl" >&2
  status=$?
  printf '{"shard": %d, "exit": %d, "part": "%s/part-%0*d.jsonl"}\n' \
    "$shard" "$status" "$PARTS" "$width" "$shard"
  [ "$status" -eq 3 ] && exit 3
done
exit 0
