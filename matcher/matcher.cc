// Search: every window of 16 consecutive query items looks up its nearest reference windows
// (Hamming distance over 512 bits); hits vote for (reference, offset). The best-voted
// alignments are verified item by item: a small offset search, the longest segment whose bit
// error rate stays low (maximum-sum subarray), and the chance-agreement test of decision.h.
#include "matcher/matcher.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/file_util.h"
#include "common/fingerprint_types.h"
#include "common/status_macros.h"
#include "matcher/decision.h"
#include "matcher/hamming.h"
#include "matcher/imi_index.h"
#include "matcher/window_index.h"

namespace trainspotter {
namespace {

// Nearest neighbours looked up per query window.
constexpr int kNeighbours = 24;
// A window whose kNeighbours nearest all lie within kSaturationSpread bits of its nearest, and
// within kSaturationDistance of it, has more close matches than it looked up: the same audio in
// more references than kNeighbours (one upload scraped into several datasets). It is looked up
// again for kWideNeighbours, so that every copy gets its votes. 128 bits (25% of 512) is far
// nearer than unrelated audio comes (rarely under 150).
constexpr int kSaturationSpread = 32;
constexpr int kSaturationDistance = 128;
constexpr int kWideNeighbours = 256;
// Each verified alignment that is a member allows one more verification (copies of the same
// audio are all members), up to this many per pass.
constexpr int kMaxVerifiedPerPass = 1024;
// Windows further than this (of 512 bits; a 39% bit error rate) are no evidence.
constexpr int kMaxWindowDistance = 200;
// Alignments verified per query pass: this many, plus one per kItemsPerExtraCandidate query
// items, so that a whole track whose parts recur in several references (an album built from
// shared stems) gets them all verified; a short clip's pass stays at kMaxCandidates.
constexpr int kMaxCandidates = 16;
constexpr int64_t kItemsPerExtraCandidate = 256;  // ~32 s
// Of those, at most this many per reference. A reference whose material repeats (a loop, a
// reprise) votes for every alignment of each repetition with the query; without a cap a query of
// that track took every verification and hid other tracks that share part of its audio
// (a whole track of one soundtrack whose last 75 s open another: only itself was listed).
constexpr int kMaxCandidatesPerReference = 4;
// Offsets (items) around a voted alignment that verification tries.
constexpr int kRefineRadius = 2;
// The look-alike screen's refinement (RefineMatch): relative speed steps around the
// speed that matched, nearest first (the cascade's speeds are 1% apart: +-0.5% reaches halfway
// to the next), tried at phase 0; then the sub-item phases (kQueryPhaseOffsets) at the best of
// them; then half a step either side of the best.
constexpr double kRefineSpeedSteps[] = {0.00125, -0.00125, 0.0025, -0.0025,
                                        0.00375, -0.00375, 0.005,  -0.005};
constexpr double kRefineFinestStep = 0.000625;
// Per-item bit errors at which the segment finder breaks even: items agreeing better extend a
// segment, items agreeing worse shorten it. 12 of 32 bits (37.5%) sits between matched audio
// after heavy distortion (up to ~30%) and unrelated audio (~45-50%).
constexpr int kSegmentBreakEven = 12;
// Shortest segment reported: 12 items (~1.5 s of item positions; a 5 s clip yields ~19 items).
constexpr int64_t kMinSegmentItems = 12;

// Snapshot file (native byte order): header, one SnapshotSlot per reference in item order, the
// items, the approximate index if built (ImiIndex::Write), the end marker.
constexpr char kSnapshotEnd[8] = {'T', 'S', 'S', 'N', 'A', 'P', 'N', 'D'};
constexpr int32_t kSnapshotVersion = 2;  // 2: the index records its stride

struct SnapshotHeader {
  char magic[8] = {'T', 'S', 'S', 'N', 'A', 'P', '0', '1'};
  int32_t version = kSnapshotVersion;
  int32_t window_items = kWindowItems;
  int64_t slots = 0;
  int64_t items = 0;
  int64_t has_index = 0;
};

struct SnapshotSlot {
  int64_t key;
  int64_t stamp;
  int64_t length;
  int64_t twin;
};

// One reference: its items are index positions [start, start + length).
struct Slot {
  int64_t key = 0;
  int64_t start = 0;
  int64_t length = 0;
  bool alive = false;
  bool twin = false;  // a narrowband twin: not counted as a track
};

struct Candidate {
  int32_t slot;
  int32_t offset;  // reference item = query item + offset
  float votes;
};

// What the look-alike screen's refinement found for a match: the lowest bit error rate at which
// its reference agrees with a version of the query, and that version's speed.
struct Refined {
  double bit_error_rate;
  double speed;
};

// Best segment of one alignment after verification.
struct Verified {
  int32_t slot = -1;
  int32_t offset = 0;
  int64_t q_begin = 0, q_end = 0;  // query items [q_begin, q_end)
  SegmentEvidence evidence;
  double log_chance = 0;
};

// The noise-reduced version among a query's phase variants: by MatchQuery's contract the one
// at start 0, with the query's timing (as many items); null if there is none.
const std::vector<uint32_t>* NoiseReducedVersion(const std::vector<uint32_t>& items,
                                                 const QueryVersions& phase_variants) {
  for (const auto& [start, version] : phase_variants) {
    if (start == 0 && version.items.size() == items.size()) return &version.items;
  }
  return nullptr;
}

int64_t KeyOf(int32_t slot, int32_t offset) {
  return (static_cast<int64_t>(slot) << 32) | static_cast<uint32_t>(offset);
}

class FingerprintMatcher : public Matcher {
 public:
  explicit FingerprintMatcher(const MatcherOptions& options)
      : options_(options), index_(NewFlatWindowIndex()) {}

  absl::Status Add(int64_t key, absl::Span<const uint32_t> items) override {
    if (items.size() < static_cast<size_t>(kWindowItems)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fingerprint has ", items.size(), " items; at least ", kWindowItems, " (~",
          static_cast<int>(std::ceil(kWindowItems * kSecondsPerItem)), " s of audio) are needed"));
    }
    absl::MutexLock lock(&mu_);
    RemoveLocked(key);
    absl::Status s = AddLocked(key, items.data(), static_cast<int64_t>(items.size()),
                               /*twin=*/false);
    // Replacing tracks leaves dead items behind too: compact on the same rule as Remove().
    if (s.ok() && dead_items_ > 1024 && dead_items_ * 2 > index_->size()) return CompactLocked();
    return s;
  }

  absl::Status AddNarrowband(int64_t key, absl::Span<const uint32_t> items) override {
    if (items.size() < static_cast<size_t>(kWindowItems)) {
      return absl::InvalidArgumentError("narrowband fingerprint too short to index");
    }
    absl::MutexLock lock(&mu_);
    if (!slot_of_key_.contains(key)) {
      return absl::NotFoundError(absl::StrCat("no reference ", key, " for a narrowband twin"));
    }
    RemoveTwinLocked(key);
    return AddLocked(key, items.data(), static_cast<int64_t>(items.size()), /*twin=*/true);
  }

  absl::Status Remove(int64_t key) override {
    absl::MutexLock lock(&mu_);
    RemoveLocked(key);
    // Rebuild once most rows are tombstones, so removal stays O(1) amortised.
    if (dead_items_ > 1024 && dead_items_ * 2 > index_->size()) return CompactLocked();
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<SegmentMatch>> Match(const MatchQuery& query) const override {
    absl::ReaderMutexLock lock(&mu_);
    std::vector<SegmentMatch> out;
    // Cascade: the query as given, then sub-item phases, then speeds; stop at the first pass
    // that finds a member. Most member queries end after the first pass.
    auto found = [&out] {
      return std::any_of(out.begin(), out.end(), [](auto& m) { return m.member; });
    };
    // The alignments the last searched version voted for: a phase variant (start > 0) is that
    // version a fraction of an item later, so it is verified at those instead of searched again.
    std::vector<Candidate> voted;
    auto phase_pass = [&](double start, const WeightedItems& v) {
      return start > 0 ? MatchPass(query, v.items, v.weights, 1.0, start, &out, &voted)
                       : MatchPass(query, v.items, v.weights, 1.0, start, &out, nullptr, &voted);
    };
    // The deferred variants, computed at most once: when no version above finds a member, or
    // earlier when the look-alike screen needs the noise-reduced one.
    std::optional<DeferredVariants> more;
    auto compute_deferred = [&]() -> absl::Status {
      if (more.has_value() || !query.deferred_variants) return absl::OkStatus();
      absl::StatusOr<DeferredVariants> got = query.deferred_variants();
      if (!got.ok()) return got.status();
      const size_t count = got->phase_variants.size() + got->speed_variants.size();
      if (count > static_cast<size_t>(std::max(query.deferred_versions, 0))) {
        return absl::InternalError(absl::StrCat("the deferred variants number ", count,
                                                ", more than the ", query.deferred_versions,
                                                " the union bound counted"));
      }
      more = *std::move(got);
      return absl::OkStatus();
    };
    // The look-alike screen (decision.h): members whose bit errors the query's own noise does
    // not explain, at the speed and phase that fit the reference best, are demoted, so the
    // cascade goes on looking.
    std::optional<double> noise_change;
    bool noise_change_known = false;
    size_t screened = 0;
    absl::flat_hash_map<std::pair<int64_t, double>, Refined> refined_of;
    // Members set aside while the cascade goes on (below), members again at its end.
    std::vector<size_t> provisional;
    auto screen = [&]() -> absl::Status {
      // Strongest first: a weaker alignment that a stronger member covers is judged only if
      // that member is demoted.
      const size_t first = screened;
      std::vector<size_t> order;
      for (size_t i = first; i < out.size(); ++i) order.push_back(i);
      screened = out.size();
      std::sort(order.begin(), order.end(),
                [&](size_t a, size_t b) { return out[a].log10_chance < out[b].log10_chance; });
      // Matches of this batch already judged (or needing no judgement); those of earlier
      // batches all were.
      std::vector<bool> judged(out.size() - first, false);
      for (size_t i : order) {
        judged[i - first] = true;
        SegmentMatch& m = out[i];
        if (!m.member || m.bit_error_rate <= kMaxUnexplainedBitErrorRate) continue;
        // A weaker alignment of a reference that a stronger member, judged and kept, covers in
        // the query is dropped below anyway (a neighbouring offset, a repetition). Two equally
        // strong ones (one alignment reached from two candidates) are judged in turn.
        bool shadowed = false;
        for (size_t j = 0; j < out.size() && !shadowed; ++j) {
          const SegmentMatch& k = out[j];
          shadowed = j != i && (j < first || judged[j - first]) && k.member && k.key == m.key &&
                     k.log10_chance <= m.log10_chance && m.query_start < k.query_end &&
                     k.query_start < m.query_end;
        }
        if (shadowed) continue;
        if (!noise_change_known) {
          const std::vector<uint32_t>* reduced =
              NoiseReducedVersion(query.items, query.phase_variants);
          if (reduced == nullptr) {
            TS_RETURN_IF_ERROR(compute_deferred());
            if (more.has_value()) reduced = NoiseReducedVersion(query.items, more->phase_variants);
          }
          if (reduced != nullptr) noise_change = BitChangeRate(query.items, *reduced);
          noise_change_known = true;
        }
        if (!noise_change.has_value() || ExplainedByNoise(m.bit_error_rate, *noise_change)) {
          continue;
        }
        // A speed variant's errors are judged only where the query can be refined (the caller
        // holds its audio): unrefined, a copy re-played between two of the cascade's speeds
        // looks no better than music that sounds alike. It stays a member, but the cascade
        // goes on, as it does after a demotion, so that a better-fitting speed is found as it
        // would be with a refiner.
        const bool refinable = more.has_value() && more->refine;
        if (m.speed != 1.0 && !refinable) {
          m.member = false;
          provisional.push_back(i);
          continue;
        }
        // Refined: a copy re-played between two of the cascade's speeds, or cut off their item
        // grid, agrees far better at its own speed and phase; music that sounds alike does not.
        // Refined once per reference and speed: its other alignments there (pieces of one
        // copy that drifts, repetitions) take the same answer.
        Refined refined{m.bit_error_rate, m.speed};
        auto cached = refined_of.find(std::make_pair(m.key, m.speed));
        if (cached != refined_of.end()) {
          refined = cached->second;
        } else if (refinable) {
          TS_ASSIGN_OR_RETURN(refined, RefineMatch(query, m, more->refine, *noise_change));
          refined_of[std::make_pair(m.key, m.speed)] = refined;
        }
        if (!ExplainedByNoise(refined.bit_error_rate, *noise_change)) {
          m.member = false;
          m.sounds_alike = true;
        } else if (refined.speed != m.speed) {
          // A copy, but at another speed: the cascade goes on, and reports the speed variant
          // nearest it if one fits better (a clip 2% fast is found at 1.01 first, at 0.98 best).
          m.member = false;
          provisional.push_back(i);
        }
      }
      return absl::OkStatus();
    };
    // Phase variants in order, then speeds, up to the first that finds a member.
    auto cascade = [&](const QueryVersions& phases, const QueryVersions& speeds) -> absl::Status {
      for (const auto& [start, version] : phases) {
        if (found()) return absl::OkStatus();
        TS_RETURN_IF_ERROR(phase_pass(start, version));
        TS_RETURN_IF_ERROR(screen());
      }
      for (const auto& [speed, version] : speeds) {
        if (found()) return absl::OkStatus();
        TS_RETURN_IF_ERROR(MatchPass(query, version.items, version.weights, speed, 0.0, &out));
        TS_RETURN_IF_ERROR(screen());
      }
      return absl::OkStatus();
    };
    TS_RETURN_IF_ERROR(
        MatchPass(query, query.items, query.weights, 1.0, 0.0, &out, nullptr, &voted));
    TS_RETURN_IF_ERROR(screen());
    TS_RETURN_IF_ERROR(cascade(query.phase_variants, query.speed_variants));
    if (!found()) {
      TS_RETURN_IF_ERROR(compute_deferred());
      if (more.has_value()) TS_RETURN_IF_ERROR(cascade(more->phase_variants, more->speed_variants));
    }
    for (size_t i : provisional) out[i].member = true;
    std::sort(out.begin(), out.end(), [](const SegmentMatch& a, const SegmentMatch& b) {
      if (a.member != b.member) return a.member;
      // log10_chance orders like false_match_probability (same correction for every match of
      // one query) but does not underflow to 0 for strong matches.
      if (a.log10_chance != b.log10_chance) return a.log10_chance < b.log10_chance;
      return a.bit_error_rate < b.bit_error_rate;
    });
    // Only the best segment per (key, query region) is interesting; drop weaker ones that
    // overlap it in the query: a track whose material repeats matches the same query part at
    // each repetition, and the best of them answers "where".
    std::vector<SegmentMatch> kept;
    for (const SegmentMatch& m : out) {
      if (!m.member && !query.include_non_members) continue;
      bool dup = false;
      for (const SegmentMatch& k : kept) {
        if (k.key == m.key && m.query_start < k.query_end && k.query_start < m.query_end) {
          dup = true;
          break;
        }
      }
      if (!dup) kept.push_back(m);
      if (static_cast<int>(kept.size()) >= std::max(query.max_matches, 1)) break;
    }
    return kept;
  }

  absl::Status Reserve(int64_t items) override {
    absl::MutexLock lock(&mu_);
    return index_->Reserve(index_->size() + items);
  }

  absl::Status FinishLoading() override {
    absl::MutexLock lock(&mu_);
    finished_loading_ = true;
    // An index read from a snapshot is kept (references added since sit in its side lists)
    // unless those outgrew it.
    if (imi_ != nullptr && imi_->num_added() <= std::max<int64_t>(imi_->num_built(), 1 << 20)) {
      return absl::OkStatus();
    }
    return BuildImiLocked();
  }

  absl::Status WriteSnapshot(const std::string& path,
                             const std::function<int64_t(int64_t)>& stamp) override {
    absl::MutexLock lock(&mu_);
    // The file holds live references only, and an index without side lists.
    if (dead_items_ > 0) TS_RETURN_IF_ERROR(CompactLocked());
    if (imi_ != nullptr && imi_->num_added() > 0) TS_RETURN_IF_ERROR(BuildImiLocked());
    TS_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFileWriter> out, AtomicFileWriter::Create(path));
    SnapshotHeader header;
    header.slots = static_cast<int64_t>(slots_.size());
    header.items = index_->size();
    header.has_index = imi_ != nullptr ? 1 : 0;
    TS_RETURN_IF_ERROR(out->Append(&header, sizeof(header)));
    for (const Slot& s : slots_) {
      const SnapshotSlot row = {s.key, stamp(s.key), s.length, s.twin ? 1 : 0};
      TS_RETURN_IF_ERROR(out->Append(&row, sizeof(row)));
    }
    TS_RETURN_IF_ERROR(
        out->Append(index_->items(), static_cast<size_t>(index_->size()) * sizeof(uint32_t)));
    if (imi_ != nullptr) TS_RETURN_IF_ERROR(imi_->Write(out.get()));
    TS_RETURN_IF_ERROR(out->Append(kSnapshotEnd, sizeof(kSnapshotEnd)));
    return out->Commit();
  }

  absl::StatusOr<std::vector<std::pair<int64_t, int64_t>>> ReadSnapshot(
      const std::string& path) override {
    TS_ASSIGN_OR_RETURN(std::unique_ptr<FileReader> in, FileReader::Open(path));
    auto damaged = [&path](absl::string_view why) {
      return absl::DataLossError(absl::StrCat("index snapshot ", path, ": ", why));
    };
    SnapshotHeader header;
    TS_RETURN_IF_ERROR(in->Read(&header, sizeof(header)));
    if (std::memcmp(header.magic, SnapshotHeader().magic, sizeof(header.magic)) != 0) {
      return damaged("not a trainspotter index snapshot");
    }
    if (header.version != kSnapshotVersion || header.window_items != kWindowItems) {
      return damaged(
          absl::StrCat("format version ", header.version, ", this build reads ", kSnapshotVersion));
    }
    if (header.slots < 0 || header.items < 0 ||
        header.slots > in->size() / static_cast<int64_t>(sizeof(SnapshotSlot)) ||
        header.items > in->size() / static_cast<int64_t>(sizeof(uint32_t)) ||
        header.slots * static_cast<int64_t>(sizeof(SnapshotSlot)) +
                header.items * static_cast<int64_t>(sizeof(uint32_t)) >
            in->size()) {
      return damaged("shorter than its header says (truncated?)");
    }
    // Everything is read into fresh structures and swapped in at the end: all or nothing.
    std::vector<Slot> slots;
    std::vector<int64_t> starts;
    absl::flat_hash_map<int64_t, int32_t> slot_of_key, twin_slot_of_key;
    std::vector<std::pair<int64_t, int64_t>> stamps;
    int64_t next = 0, live_items = 0, live_tracks = 0;
    for (int64_t i = 0; i < header.slots; ++i) {
      SnapshotSlot row;
      TS_RETURN_IF_ERROR(in->Read(&row, sizeof(row)));
      if (row.length < kWindowItems || next + row.length > header.items) {
        return damaged("a reference outside the item array");
      }
      auto& map = row.twin != 0 ? twin_slot_of_key : slot_of_key;
      if (!map.emplace(row.key, static_cast<int32_t>(slots.size())).second) {
        return damaged(absl::StrCat("reference ", row.key, " appears twice"));
      }
      Slot s;
      s.key = row.key;
      s.start = next;
      s.length = row.length;
      s.alive = true;
      s.twin = row.twin != 0;
      next += row.length;
      live_items += row.length;
      if (!s.twin) {
        ++live_tracks;
        stamps.emplace_back(row.key, row.stamp);
      }
      starts.push_back(s.start);
      slots.push_back(s);
    }
    if (next != header.items) return damaged("references do not cover the item array");
    for (const auto& [key, slot] : twin_slot_of_key) {
      if (!slot_of_key.contains(key)) return damaged("a narrowband twin without its reference");
    }
    std::unique_ptr<WindowIndex> items = NewFlatWindowIndex();
    TS_RETURN_IF_ERROR(items->Reserve(header.items));
    TS_ASSIGN_OR_RETURN(uint32_t * dest, items->Extend(header.items));
    TS_RETURN_IF_ERROR(in->Read(dest, static_cast<size_t>(header.items) * sizeof(uint32_t)));
    std::unique_ptr<ImiIndex> imi;
    if (header.has_index != 0) {
      TS_ASSIGN_OR_RETURN(imi, ImiIndex::Read(in.get(), header.items));
    }
    char end[sizeof(kSnapshotEnd)];
    TS_RETURN_IF_ERROR(in->Read(end, sizeof(end)));
    if (std::memcmp(end, kSnapshotEnd, sizeof(end)) != 0) return damaged("no end marker");

    absl::MutexLock lock(&mu_);
    if (!slots_.empty()) {
      return absl::FailedPreconditionError("a snapshot loads into an empty matcher only");
    }
    index_ = std::move(items);
    imi_ = std::move(imi);
    slots_ = std::move(slots);
    slot_starts_ = std::move(starts);
    slot_of_key_ = std::move(slot_of_key);
    twin_slot_of_key_ = std::move(twin_slot_of_key);
    live_items_ = live_items;
    live_tracks_ = live_tracks;
    dead_items_ = 0;
    return stamps;
  }

  int64_t num_tracks() const override {
    absl::ReaderMutexLock lock(&mu_);
    return live_tracks_;
  }
  int64_t num_items() const override {
    absl::ReaderMutexLock lock(&mu_);
    return live_items_;
  }

 private:
  absl::Status AddLocked(int64_t key, const uint32_t* items, int64_t n, bool twin)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (imi_ != nullptr && index_->size() + n > int64_t{UINT32_MAX}) {
      // Checked before anything changes: the reference is refused whole.
      return absl::ResourceExhaustedError(
          "the approximate index addresses at most 2^32 items (~147,000 hours of audio): "
          "split the catalogue into shards");
    }
    Slot slot;
    slot.key = key;
    slot.start = index_->size();
    slot.length = n;
    slot.alive = true;
    slot.twin = twin;
    absl::Status s = index_->Append(items, n);
    if (!s.ok()) return s;
    live_items_ += n;
    if (imi_ != nullptr) {
      s = imi_->Add(index_->items(), ItemRange{slot.start, n});
      if (!s.ok()) return s;
    }
    if (!twin) ++live_tracks_;
    (twin ? twin_slot_of_key_ : slot_of_key_)[key] = static_cast<int32_t>(slots_.size());
    slot_starts_.push_back(slot.start);
    slots_.push_back(slot);
    if (!finished_loading_) return absl::OkStatus();
    // Build the index once the references are many enough; rebuild when the side lists of
    // references added since have grown as large as the index itself.
    if (imi_ == nullptr ? live_items_ >= options_.approximate_min_items
                        : imi_->num_added() > std::max<int64_t>(imi_->num_built(), 1 << 20)) {
      return BuildImiLocked();
    }
    return absl::OkStatus();
  }

  absl::Status BuildImiLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    imi_.reset();
    if (live_items_ < options_.approximate_min_items) return absl::OkStatus();
    std::vector<ItemRange> ranges;
    ranges.reserve(slots_.size());
    for (const Slot& s : slots_) {
      if (s.alive) ranges.push_back({s.start, s.length});
    }
    const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    auto built = ImiIndex::Build(index_->items(), ranges, threads, options_.approximate_stride);
    if (!built.ok()) return built.status();
    imi_ = *std::move(built);
    return absl::OkStatus();
  }

  // The reference holding index position `pos` (slots are appended in position order).
  int32_t SlotAt(int64_t pos) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    auto it = std::upper_bound(slot_starts_.begin(), slot_starts_.end(), pos);
    return static_cast<int32_t>(it - slot_starts_.begin()) - 1;
  }

  void RemoveTwinLocked(int64_t key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = twin_slot_of_key_.find(key);
    if (it == twin_slot_of_key_.end()) return;
    Slot& slot = slots_[it->second];
    slot.alive = false;
    dead_items_ += slot.length;
    live_items_ -= slot.length;
    twin_slot_of_key_.erase(it);
  }

  void RemoveLocked(int64_t key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    RemoveTwinLocked(key);
    auto it = slot_of_key_.find(key);
    if (it == slot_of_key_.end()) return;
    Slot& slot = slots_[it->second];
    slot.alive = false;
    dead_items_ += slot.length;
    live_items_ -= slot.length;
    --live_tracks_;
    slot_of_key_.erase(it);
  }

  // Rewrites the index without the removed references.
  absl::Status CompactLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::unique_ptr<WindowIndex> fresh = NewFlatWindowIndex();
    std::vector<Slot> slots;
    std::vector<int64_t> starts;
    absl::flat_hash_map<int64_t, int32_t> slot_of_key, twin_slot_of_key;
    for (const Slot& old : slots_) {
      if (!old.alive) continue;
      Slot s = old;
      s.start = fresh->size();
      absl::Status st = fresh->Append(index_->items() + old.start, old.length);
      if (!st.ok()) return st;  // the old index is untouched: nothing lost
      (s.twin ? twin_slot_of_key : slot_of_key)[s.key] = static_cast<int32_t>(slots.size());
      starts.push_back(s.start);
      slots.push_back(s);
    }
    index_ = std::move(fresh);
    slots_ = std::move(slots);
    slot_starts_ = std::move(starts);
    slot_of_key_ = std::move(slot_of_key);
    twin_slot_of_key_ = std::move(twin_slot_of_key);
    dead_items_ = 0;
    // Positions moved: the approximate index is rebuilt over the compacted items.
    return imi_ != nullptr ? BuildImiLocked() : absl::OkStatus();
  }

  // Searches the index for every window of `items` and returns the alignments voted for, best
  // first.
  absl::StatusOr<std::vector<Candidate>> VotedAlignments(const MatchQuery& query,
                                                         const std::vector<uint32_t>& items) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    const int64_t n = static_cast<int64_t>(items.size());
    const int64_t nq = n - kWindowItems + 1;
    std::vector<int32_t> dist(static_cast<size_t>(nq) * kNeighbours);
    std::vector<int64_t> rows(dist.size());
    const bool approximate = imi_ != nullptr && !query.exhaustive;
    // `cnt` consecutive windows from query window q0, k neighbours each within max_distance.
    auto search = [&](int64_t q0, int64_t cnt, int k, int max_distance, int32_t* d, int64_t* r) {
      return approximate ? SearchImi(items.data() + q0, cnt, k, max_distance, d, r)
                         : index_->Search(items.data() + q0, cnt, k, max_distance, d, r);
    };
    // Search in slices so that a deadline is noticed during long queries.
    constexpr int64_t kSlice = 256;
    for (int64_t q0 = 0; q0 < nq; q0 += kSlice) {
      const int64_t cnt = std::min(kSlice, nq - q0);
      absl::Status s = search(q0, cnt, kNeighbours, kMaxWindowDistance, &dist[q0 * kNeighbours],
                              &rows[q0 * kNeighbours]);
      if (!s.ok()) return s;
      if (absl::Now() > query.deadline) {
        return absl::DeadlineExceededError("deadline passed while searching the index");
      }
    }
    // Saturated windows, looked up again wider: runs of consecutive ones in one search each.
    std::vector<int64_t> wide_of(static_cast<size_t>(nq), -1);  // first row in wide_dist
    std::vector<int32_t> wide_dist;
    std::vector<int64_t> wide_rows;
    auto saturated = [&](int64_t q) {
      const int32_t* d = &dist[q * kNeighbours];
      return rows[q * kNeighbours + kNeighbours - 1] >= 0 &&
             d[kNeighbours - 1] <= std::min(d[0] + kSaturationSpread, kSaturationDistance);
    };
    for (int64_t q0 = 0; q0 < nq;) {
      if (!saturated(q0)) {
        ++q0;
        continue;
      }
      int64_t q1 = q0 + 1;
      while (q1 < nq && q1 - q0 < kSlice && saturated(q1)) ++q1;
      // Only the close copies are wanted: the wider lookup stops short of unrelated windows.
      int reach = 0;
      for (int64_t q = q0; q < q1; ++q) {
        reach = std::max(reach, dist[q * kNeighbours] + 2 * kSaturationSpread);
      }
      const size_t at = wide_dist.size();
      wide_dist.resize(at + static_cast<size_t>(q1 - q0) * kWideNeighbours);
      wide_rows.resize(wide_dist.size());
      absl::Status s = search(q0, q1 - q0, kWideNeighbours, std::min(reach, kMaxWindowDistance),
                              &wide_dist[at], &wide_rows[at]);
      if (!s.ok()) return s;
      for (int64_t q = q0; q < q1; ++q) {
        wide_of[q] = static_cast<int64_t>(at) + (q - q0) * kWideNeighbours;
      }
      if (absl::Now() > query.deadline) {
        return absl::DeadlineExceededError("deadline passed while searching the index");
      }
      q0 = q1;
    }

    // Vote.
    absl::flat_hash_map<int64_t, float> votes;
    for (int64_t q = 0; q < nq; ++q) {
      const bool wide = wide_of[q] >= 0;
      const int k = wide ? kWideNeighbours : kNeighbours;
      const int32_t* qd = wide ? &wide_dist[wide_of[q]] : &dist[q * kNeighbours];
      const int64_t* qr = wide ? &wide_rows[wide_of[q]] : &rows[q * kNeighbours];
      for (int j = 0; j < k; ++j) {
        const int64_t pos = qr[j];
        if (pos < 0) break;
        const int32_t slot = SlotAt(pos);
        const Slot& ref = slots_[slot];
        if (!ref.alive || pos + kWindowItems > ref.start + ref.length) continue;  // straddles
        if (query.filter && !query.filter(ref.key)) continue;
        const int32_t offset = static_cast<int32_t>(pos - ref.start) - static_cast<int32_t>(q);
        // Nearer windows weigh more; every hit inside the radius counts.
        const float w = 1.0f + static_cast<float>(kMaxWindowDistance - qd[j]) / kMaxWindowDistance;
        votes[KeyOf(slot, offset)] += w;
      }
    }
    std::vector<Candidate> cands;
    cands.reserve(votes.size());
    for (const auto& [key, v] : votes) {
      const int32_t slot = static_cast<int32_t>(key >> 32);
      const int32_t offset = static_cast<int32_t>(static_cast<uint32_t>(key));
      float smoothed = v;
      for (int d : {-1, 1}) {
        auto it = votes.find(KeyOf(slot, offset + d));
        if (it != votes.end()) smoothed += it->second;
      }
      cands.push_back({slot, offset, smoothed});
    }
    std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
      if (a.votes != b.votes) return a.votes > b.votes;
      if (a.slot != b.slot) return a.slot < b.slot;
      return a.offset < b.offset;
    });

    return cands;
  }

  // The lowest bit error rate at which the reference of member `m` agrees with the query
  // fingerprinted again by `refine` at speeds within +-0.5% of m.speed and at sub-item phases,
  // each verified at m's alignment only (no search: the evidence that made m a member is
  // unchanged; this asks only whether a better-fitting version explains its errors). A copy's
  // bit errors grow steeply with the speed it is off by (a clip re-played 0.5% fast agreed at
  // 0.28 at speed 1, 0.24 at 0.25% off, 0.014 at its own speed), its phase matters less
  // (0.03-0.08 at the right speed): so speeds first, coarse to fine, then phases at the best.
  // Stops at the first version whose errors `noise_change` explains (ExplainedByNoise).
  absl::StatusOr<Refined> RefineMatch(const MatchQuery& query, const SegmentMatch& m,
                                      const QueryRefiner& refine, double noise_change) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    std::vector<Candidate> given;
    for (const auto* map : {&slot_of_key_, &twin_slot_of_key_}) {
      auto it = map->find(m.key);
      if (it != map->end()) given.push_back(Candidate{it->second, 0, 0});
    }
    double best = m.bit_error_rate;
    double best_speed = m.speed;
    int best_skip = 0;
    // Verifies m's reference against one version; keeps the best.
    auto try_version = [&](double speed, int skip) -> absl::Status {
      TS_ASSIGN_OR_RETURN(std::vector<uint32_t> items, refine(speed, skip));
      const double start = static_cast<double>(skip) / kFingerprintSampleRate;
      // m's alignment in this version: its reference item at its first query item.
      const double q_item = (m.query_start - start) / (speed * kSecondsPerItem);
      const auto offset = static_cast<int32_t>(std::lround(m.ref_start / kSecondsPerItem - q_item));
      for (Candidate& c : given) c.offset = offset;
      std::vector<SegmentMatch> found;
      TS_RETURN_IF_ERROR(MatchPass(query, items, {}, speed, start, &found, &given));
      for (const SegmentMatch& f : found) {
        if (f.key == m.key && f.query_start < m.query_end && m.query_start < f.query_end &&
            f.bit_error_rate < best) {
          best = f.bit_error_rate;
          best_speed = speed;
          best_skip = skip;
        }
      }
      return absl::OkStatus();
    };
    for (double delta : kRefineSpeedSteps) {
      TS_RETURN_IF_ERROR(try_version(m.speed * (1.0 + delta), 0));
      if (ExplainedByNoise(best, noise_change)) return Refined{best, best_speed};
    }
    const double speed = best_speed;
    for (int skip : kQueryPhaseOffsets) {
      TS_RETURN_IF_ERROR(try_version(speed, skip));
      if (ExplainedByNoise(best, noise_change)) return Refined{best, best_speed};
    }
    const int skip = best_skip;
    for (double delta : {kRefineFinestStep, -kRefineFinestStep}) {
      TS_RETURN_IF_ERROR(try_version(speed * (1.0 + delta), skip));
      if (ExplainedByNoise(best, noise_change)) return Refined{best, best_speed};
    }
    return Refined{best, best_speed};
  }

  // One search + verification pass for one version of the query; appends to `out`. With
  // `given`, the search is skipped and those alignments are verified instead; `keep` receives
  // the alignments the search voted for.
  absl::Status MatchPass(const MatchQuery& query, const std::vector<uint32_t>& items,
                         const std::vector<uint8_t>& weights, double speed, double start,
                         std::vector<SegmentMatch>* out,
                         const std::vector<Candidate>* given = nullptr,
                         std::vector<Candidate>* keep = nullptr) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    if (keep != nullptr) keep->clear();
    const int64_t n = static_cast<int64_t>(items.size());
    if (n < std::max<int64_t>(kMinSegmentItems, kWindowItems) || index_->size() == 0) {
      return absl::OkStatus();
    }
    if (absl::Now() > query.deadline) {
      return absl::DeadlineExceededError("deadline passed before matching");
    }
    std::vector<Candidate> searched;
    if (given == nullptr) {
      absl::StatusOr<std::vector<Candidate>> voted = VotedAlignments(query, items);
      if (!voted.ok()) return voted.status();
      searched = *std::move(voted);
      if (keep != nullptr) *keep = searched;
    }
    const std::vector<Candidate>& cands = given != nullptr ? *given : searched;

    // Comparisons a chance match could have come from: every reference position, for every
    // version of the query (deferred ones included, whether or not they are computed), and
    // every query item the verified segment could start at (decision.h: a union bound,
    // calibrated on non-member audio).
    const double versions =
        static_cast<double>(1 + query.speed_variants.size() + query.phase_variants.size()) +
        (query.deferred_variants ? std::max(query.deferred_versions, 0) : 0);
    const double comparisons =
        static_cast<double>(std::max<int64_t>(live_items_, 1)) * versions * static_cast<double>(n);

    // Weights that do not cover the items (a caller's mistake) are not used.
    const bool weighted = weights.size() == 32 * items.size();
    const std::vector<uint32_t> strong =
        weighted ? StrongBitMasks(weights.data(), items.size()) : std::vector<uint32_t>();
    std::vector<std::pair<int32_t, int32_t>> verified;  // (slot, offset) already done
    int max_candidates = kMaxCandidates + static_cast<int>(n / kItemsPerExtraCandidate);
    int done = 0;
    for (const Candidate& c : cands) {
      if (done >= std::min(max_candidates, kMaxVerifiedPerPass)) break;
      bool near = false;
      int of_slot = 0;
      for (auto [s, o] : verified) {
        if (s != c.slot) continue;
        ++of_slot;
        if (std::abs(o - c.offset) <= kRefineRadius) near = true;
      }
      if (near || of_slot >= kMaxCandidatesPerReference) continue;
      verified.emplace_back(c.slot, c.offset);
      ++done;
      Verified v = Verify(items, weights, strong, c.slot, c.offset);
      if (v.slot < 0) continue;
      SegmentMatch m;
      m.key = slots_[v.slot].key;
      m.false_match_probability = FalseMatchProbability(v.evidence, comparisons);
      m.confidence = 1.0 - m.false_match_probability;
      m.log10_chance = v.log_chance / std::log(10.0);
      m.member = m.false_match_probability <= options_.max_false_match_probability;
      if (m.member) ++max_candidates;  // there may be more copies: look further
      // Over the whole segment, silent stretches included (they agree without errors).
      const int64_t segment_items = v.evidence.items + v.evidence.silent_items;
      m.bit_error_rate = static_cast<double>(v.evidence.bit_errors) /
                         (32.0 * static_cast<double>(std::max<int64_t>(segment_items, 1)));
      m.speed = speed;
      // Positions in the speed-changed variant map back to the original query's time by the
      // speed factor; reference positions are as stored.
      m.query_start = start + ItemToSeconds(static_cast<double>(v.q_begin)) * speed;
      m.query_end =
          start + (ItemToSeconds(static_cast<double>(v.q_end - 1)) + kItemSpanSeconds) * speed;
      m.ref_start = ItemToSeconds(static_cast<double>(v.q_begin + v.offset));
      m.ref_end = ItemToSeconds(static_cast<double>(v.q_end - 1 + v.offset)) + kItemSpanSeconds;
      out->push_back(m);
    }
    return absl::OkStatus();
  }

  // The approximate counterpart of WindowIndex::Search: the k nearest windows within
  // max_distance that the inverted multi-index reaches for each of the `nq` query windows, same
  // output layout.
  absl::Status SearchImi(const uint32_t* query, int64_t nq, int k, int max_distance,
                         int32_t* distances, int64_t* positions) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    std::fill(distances, distances + nq * k, INT32_MAX);
    std::fill(positions, positions + nq * k, int64_t{-1});
    const int budget = static_cast<int>(std::clamp<double>(
        options_.approximate_probe_fraction * static_cast<double>(imi_->num_postings()),
        options_.approximate_min_budget, 1 << 30));
    std::vector<WindowHit> hits =
        imi_->Search(index_->items(), query, nq + kWindowItems - 1, budget, max_distance);
    std::sort(hits.begin(), hits.end(), [](const WindowHit& a, const WindowHit& b) {
      if (a.query_window != b.query_window) return a.query_window < b.query_window;
      if (a.distance != b.distance) return a.distance < b.distance;
      return a.position < b.position;
    });
    int64_t prev = -1;
    int taken = 0;
    for (const WindowHit& h : hits) {
      if (h.query_window != prev) {
        prev = h.query_window;
        taken = 0;
      }
      if (taken == k) continue;
      distances[h.query_window * k + taken] = h.distance;
      positions[h.query_window * k + taken] = h.position;
      ++taken;
    }
    return absl::OkStatus();
  }

  // Refines the alignment (slot, offset) and finds its best segment.
  // `weights` and `strong` (StrongBitMasks) cover the items, or are both empty.
  Verified Verify(const std::vector<uint32_t>& items, const std::vector<uint8_t>& weights,
                  const std::vector<uint32_t>& strong, int32_t slot_no, int32_t offset0) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    const Slot& slot = slots_[slot_no];
    const uint8_t* w = strong.empty() ? nullptr : weights.data();
    const uint32_t* q = items.data();
    const uint32_t* r = index_->items() + slot.start;
    const int64_t nq = static_cast<int64_t>(items.size());
    const int64_t nr = slot.length;
    Verified best;
    std::vector<uint8_t> errors;
    for (int32_t offset = offset0 - kRefineRadius; offset <= offset0 + kRefineRadius; ++offset) {
      const int64_t qa = std::max<int64_t>(0, -static_cast<int64_t>(offset));
      const int64_t qb = std::min<int64_t>(nq, nr - offset);
      if (qb - qa < kMinSegmentItems) continue;
      errors.resize(static_cast<size_t>(qb - qa));
      ItemBitErrors(q + qa, r + qa + offset, errors.size(), errors.data());
      // Maximum-sum subarray of (break-even - errors).
      int64_t best_sum = 0, best_b = 0, best_e = 0, run = 0, run_b = 0;
      for (int64_t i = 0; i < qb - qa; ++i) {
        if (run <= 0) {
          run = 0;
          run_b = i;
        }
        run += kSegmentBreakEven - errors[static_cast<size_t>(i)];
        if (run > best_sum) {
          best_sum = run;
          best_b = run_b;
          best_e = i + 1;
        }
      }
      if (best_e - best_b < kMinSegmentItems) continue;
      // The bits are weighed only if the whole overlap looks like the same audio under noise
      // (decision.h); a passage shared with other audio is judged unweighted.
      const uint8_t* segment_weights =
          w != nullptr &&
                  WeighOverlap(qb - qa, StrongBitErrorRate(q, r, qa, qb, offset, strong.data()))
              ? w
              : nullptr;
      SegmentEvidence e = CountEvidence(q, r, qa + best_b, qa + best_e, offset, segment_weights);
      const double lc = LogChanceAgreement(e);
      if (best.slot < 0 || lc < best.log_chance) {
        best.slot = slot_no;
        best.offset = offset;
        best.q_begin = qa + best_b;
        best.q_end = qa + best_e;
        best.evidence = e;
        best.log_chance = lc;
      }
    }
    return best;
  }

  const MatcherOptions options_;
  mutable absl::Mutex mu_;
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, int32_t> slot_of_key_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, int32_t> twin_slot_of_key_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<WindowIndex> index_ ABSL_GUARDED_BY(mu_);
  // The approximate index over index_'s live references; null while they are few.
  std::unique_ptr<ImiIndex> imi_ ABSL_GUARDED_BY(mu_);
  bool finished_loading_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<int64_t> slot_starts_ ABSL_GUARDED_BY(mu_);  // slots_[i].start, ascending
  int64_t dead_items_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t live_items_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t live_tracks_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Matcher>> Matcher::Create(const MatcherOptions& options) {
  if (!(options.max_false_match_probability > 0 && options.max_false_match_probability < 1)) {
    return absl::InvalidArgumentError("max_false_match_probability must be in (0, 1)");
  }
  if (options.approximate_stride != 4 && options.approximate_stride != 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("approximate_stride must be 4 or 8, not ", options.approximate_stride));
  }
  if (!(options.approximate_probe_fraction > 0 && options.approximate_probe_fraction <= 1) ||
      options.approximate_min_budget < 1) {
    return absl::InvalidArgumentError(
        "approximate_probe_fraction must be in (0, 1] and approximate_min_budget positive");
  }
  return std::unique_ptr<Matcher>(std::make_unique<FingerprintMatcher>(options));
}

}  // namespace trainspotter
