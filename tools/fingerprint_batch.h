// `trainspotter fingerprint --manifest`: one shard of a batch fingerprinting job, the unit of work
// that Kubernetes Indexed Jobs, Slurm job arrays or Spark tasks run in parallel (docs/batch.md).
//
// Contract:
//   * Input: a manifest as `ingest --manifest` reads it (tools/manifest.h: CSV with a header or
//     JSON Lines; track_id, path, any metadata columns). Every manifest record, good or bad, has
//     a 0-based row index; shard I of N owns the rows with row_index % N == I, so the shards of
//     one manifest partition it exactly, whatever machine runs them.
//   * Output: PART (JSON Lines, manifest order), one record per owned row:
//       {"track_id", "path", "fingerprint" (compressed, whole file), "duration", <metadata...>}
//       {"track_id", "path", "error", "retryable", "line"}   the row could not be fingerprinted
//     PART feeds `trainspotter ingest --manifest PART` directly (failure records are reported
//     by ingest as failed rows and skipped).
//   * Atomicity: records go to a temporary file next to PART (PART.tmp.<host>.<pid>), which is
//     fsync'ed and renamed to PART; then PART.done (a small JSON summary) is written the same
//     way. PART.done exists only if PART is complete. A re-run of a shard whose PART.done exists
//     does nothing (exit 0) unless --force.
//   * Exit status: 0 the shard is done (per-file decode errors are records, not shard failures);
//     3 retryable: re-run the shard (I/O error reading the manifest or writing PART, out of
//     memory or disk, SIGTERM); 4 permanent: re-running cannot help (bad arguments, unreadable or
//     malformed manifest, shard out of range).
#ifndef TRAINSPOTTER_TOOLS_FINGERPRINT_BATCH_H_
#define TRAINSPOTTER_TOOLS_FINGERPRINT_BATCH_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace trainspotter::cli {

inline constexpr int kBatchExitDone = 0;
inline constexpr int kBatchExitRetryable = 3;
inline constexpr int kBatchExitPermanent = 4;

struct ShardSpec {
  int64_t index = 0;  // 0 <= index < count
  int64_t count = 1;
};

// Which shard this process runs. `shard_flag` is --shard ("I/N", "I", or empty); `count_flag`
// is --shard-count (0 = not given). Without --shard the index comes from the environment:
// JOB_COMPLETION_INDEX (Kubernetes Indexed Job), else SLURM_ARRAY_TASK_ID (run the array as
// --array=0-(N-1)). N comes from the I/N form or --shard-count (both given: they must agree).
// INVALID_ARGUMENT naming the problem if the index or count is missing, malformed or out of
// range. `getenv` is injectable for tests (nullptr return = unset).
absl::StatusOr<ShardSpec> ResolveShard(const std::string& shard_flag, int64_t count_flag,
                                       const std::function<const char*(const char*)>& getenv);

// Replaces every "{shard}" in `pattern` by the shard index, zero-padded to the width of
// count - 1 (so part names sort): "parts/part-{shard}.jsonl", 7 of 64 -> "parts/part-07.jsonl".
std::string ExpandShardPattern(const std::string& pattern, const ShardSpec& shard);

// Whether a per-file fingerprinting error may go away on a re-run (I/O errors, deadlines, lack
// of memory or disk) as opposed to a property of the file (not audio, corrupt, missing).
bool IsRetryableFileError(const absl::Status& status);

// Exit status for a shard-level error: kBatchExitPermanent for INVALID_ARGUMENT, NOT_FOUND,
// FAILED_PRECONDITION, PERMISSION_DENIED, OUT_OF_RANGE, ALREADY_EXISTS; else kBatchExitRetryable.
int ExitCodeForShardError(const absl::Status& status);

struct BatchOptions {
  std::string manifest;
  std::string out;  // PART, already expanded
  ShardSpec shard;
  int jobs = 1;
  double max_seconds = 0;  // 0 = whole file (as ingest indexes)
  absl::Duration per_file_timeout = absl::InfiniteDuration();
  int retries = 2;     // extra attempts for a retryable per-file error (not for deadlines)
  bool force = false;  // redo a shard whose marker exists
  bool quiet = false;  // no progress display
  // Polled often; true stops the shard (CANCELLED). May be empty.
  std::function<bool()> interrupted;
};

struct BatchSummary {
  int64_t manifest_rows = 0;  // records in the whole manifest
  int64_t owned = 0;          // rows of this shard
  int64_t fingerprinted = 0;  // success records (fingerprinted or passed through)
  int64_t failed = 0;         // error records
  int64_t retryable_failed = 0;
  int64_t warnings = 0;  // files that decoded with warnings (printed to stderr)
  double audio_seconds = 0;
  bool already_done = false;  // the marker existed; nothing was done
};

// Runs one shard as described above. Shard-level errors come back as a Status (see
// ExitCodeForShardError); CANCELLED if `interrupted` fired (no PART, no marker).
absl::StatusOr<BatchSummary> FingerprintShard(const BatchOptions& options);

// True if argv (after the command name) asks for batch mode, i.e. has --manifest.
bool IsFingerprintBatchInvocation(int argc, char** argv);
// `trainspotter fingerprint --manifest ...`: parses arguments, runs FingerprintShard, and returns
// the exit status above (2 is never returned: usage errors are permanent, 4).
int RunFingerprintBatch(int argc, char** argv);

}  // namespace trainspotter::cli

#endif  // TRAINSPOTTER_TOOLS_FINGERPRINT_BATCH_H_
