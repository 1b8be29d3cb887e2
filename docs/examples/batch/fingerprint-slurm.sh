#!/bin/bash
# Slurm job array: one task per shard. Submit with as many tasks as shards:
#   sbatch --array=0-63 docs/examples/batch/fingerprint-slurm.sh
# and re-submit only the failed indexes later (--array=5,17): finished shards are skipped.
#SBATCH --job-name=trainspotter-fingerprint
#SBATCH --cpus-per-task=8
#SBATCH --mem=4G
#SBATCH --time=02:00:00
#SBATCH --requeue
#SBATCH --output=logs/fingerprint-%A_%a.log
set -euo pipefail

MANIFEST=${MANIFEST:-/data/manifests/fma.csv}
PARTS=${PARTS:-/data/parts}
SHARDS=${SHARDS:-64}                 # = the number of array tasks (0..SHARDS-1)
TRAINSPOTTER=${TRAINSPOTTER:-trainspotter}

set +e
"$TRAINSPOTTER" fingerprint --manifest "$MANIFEST" --shard-count "$SHARDS" \
  --jobs "${SLURM_CPUS_PER_TASK:-1}" --timeout 600 --quiet --out "$PARTS/part-{shard}.jsonl"
status=$?
set -e
if [ "$status" -eq 3 ] && [ -n "${SLURM_JOB_ID:-}" ] && [ "${SLURM_RESTART_COUNT:-0}" -lt 3 ]; then
  # Retryable (I/O error, out of memory, preempted): put this task back in the queue.
  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
fi
exit "$status"
