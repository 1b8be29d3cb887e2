#include "matcher/catalog.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/fake_matcher.h"
#include "tests/testing/random_items.h"
#include "tests/testing/temp_dir.h"

namespace trainspotter {
namespace {

using ::trainspotter::testing::RandomItems;

TrackInput MakeTrack(const std::string& id, uint32_t seed, size_t n = 200) {
  TrackInput t;
  t.track_id = id;
  t.items = RandomItems(seed, n);
  t.content_hash = "h" + std::to_string(seed);
  t.metadata.title = "Title " + id;
  t.metadata.duration_seconds = 60;
  return t;
}

CatalogQuery ItemsQuery(std::vector<uint32_t> items) {
  CatalogQuery q;
  q.items = std::move(items);
  return q;
}

// The middle of a track's fingerprint, as a query.
CatalogQuery QueryFrom(const TrackInput& t, size_t from = 50, size_t n = 40) {
  CatalogQuery q;
  q.items.assign(t.items.begin() + from, t.items.begin() + from + n);
  return q;
}

class CatalogTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<Catalog>> Open(Catalog::Mode mode, bool index = true) {
    Catalog::OpenOptions o;
    o.mode = mode;
    o.build_index = index;
    o.matcher_factory = [this](const MatcherOptions&) -> absl::StatusOr<std::unique_ptr<Matcher>> {
      auto m = std::make_unique<FakeMatcher>();
      last_matcher_ = m.get();
      return std::unique_ptr<Matcher>(std::move(m));
    };
    return Catalog::Open(dir_.path(), o);
  }
  std::unique_ptr<Catalog> OpenRw() {
    auto c = Open(Catalog::Mode::kReadWrite);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  TempDir dir_;
  FakeMatcher* last_matcher_ = nullptr;
};

TEST_F(CatalogTest, OpenBuildsTheMatcherFromStoredFingerprints) {
  std::vector<TrackInput> tracks = {MakeTrack("a", 1), MakeTrack("b", 2), MakeTrack("c", 3)};
  {
    auto cat = OpenRw();
    ASSERT_TRUE(cat->EnsureDataset("ds", "v1", "test set").ok());
    ASSERT_TRUE(cat->AddTracks("ds", tracks).ok());
  }
  auto cat = Open(Catalog::Mode::kReadOnly);
  ASSERT_TRUE(cat.ok()) << cat.status();
  EXPECT_EQ((*cat)->num_tracks(), 3);
  EXPECT_NEAR((*cat)->hours(), 3 * 60 / 3600.0, 1e-9);
  EXPECT_EQ(last_matcher_->num_tracks(), 3);

  auto r = (*cat)->Match(QueryFrom(tracks[1]));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->member);
  ASSERT_EQ(r->matches.size(), 1u);
  EXPECT_EQ(r->matches[0].track.dataset, "ds");
  EXPECT_EQ(r->matches[0].track.version, "v1");
  EXPECT_EQ(r->matches[0].track.track_id, "b");
  EXPECT_EQ(r->matches[0].track.metadata.title, "Title b");
  EXPECT_NEAR(r->matches[0].segment.ref_start, ItemToSeconds(50), 1e-9);

  auto miss = (*cat)->Match(ItemsQuery(RandomItems(99, 40)));
  ASSERT_TRUE(miss.ok());
  EXPECT_FALSE(miss->member);
  EXPECT_TRUE(miss->matches.empty());
  EXPECT_TRUE((*cat)->CheckIntegrity().ok());
}

TEST_F(CatalogTest, WritesKeepTheMatcherInStep) {
  auto cat = OpenRw();
  ASSERT_TRUE(cat->EnsureDataset("ds", "", "").ok());
  TrackInput a = MakeTrack("a", 1);
  ASSERT_TRUE(cat->AddTracks("ds", {a}).ok());
  EXPECT_TRUE(cat->Match(QueryFrom(a))->member);

  // Replacing: the new audio matches, the old no longer does; the count is unchanged.
  TrackInput a2 = MakeTrack("a", 2);
  ASSERT_TRUE(cat->AddTracks("ds", {a2}).ok());
  EXPECT_FALSE(cat->Match(QueryFrom(a))->member);
  EXPECT_TRUE(cat->Match(QueryFrom(a2))->member);
  EXPECT_EQ(cat->num_tracks(), 1);
  EXPECT_TRUE(*cat->HasTrack("ds", "a", "h2"));
  EXPECT_FALSE(*cat->HasTrack("ds", "a", "h1"));
  EXPECT_FALSE(*cat->HasTrack("ds", "zz", "h2"));

  auto removed = cat->Delete("ds", "a");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1);
  EXPECT_FALSE(cat->Match(QueryFrom(a2))->member);
  EXPECT_EQ(last_matcher_->num_tracks(), 0);
  EXPECT_EQ(cat->num_tracks(), 0);
  EXPECT_NEAR(cat->hours(), 0, 1e-12);
  EXPECT_TRUE(absl::IsNotFound(cat->Delete("ds", "a").status()));
  EXPECT_TRUE(absl::IsNotFound(cat->GetTrack("ds", "a").status()));
}

TEST_F(CatalogTest, RefusedTrackAbortsTheBatchAndRestoresTheMatcher) {
  auto cat = OpenRw();
  ASSERT_TRUE(cat->EnsureDataset("ds", "", "").ok());
  TrackInput keep = MakeTrack("keep", 1);
  ASSERT_TRUE(cat->AddTracks("ds", {keep}).ok());

  TrackInput replaced = MakeTrack("keep", 5);
  TrackInput fresh = MakeTrack("fresh", 6);
  TrackInput tiny = MakeTrack("tiny", 7, 3);  // the fake refuses < 16 items
  absl::Status st = cat->AddTracks("ds", {replaced, fresh, tiny});
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_NE(st.message().find("'tiny'"), std::string::npos) << st;

  // Nothing of the batch is stored or searchable; the old version of 'keep' still is.
  EXPECT_EQ(cat->num_tracks(), 1);
  EXPECT_TRUE(absl::IsNotFound(cat->GetTrack("ds", "fresh").status()));
  EXPECT_TRUE(cat->Match(QueryFrom(keep))->member);
  EXPECT_FALSE(cat->Match(QueryFrom(replaced))->member);
  EXPECT_FALSE(cat->Match(QueryFrom(fresh))->member);
  EXPECT_EQ(last_matcher_->num_tracks(), 1);
}

TEST_F(CatalogTest, DatasetFilter) {
  auto cat = OpenRw();
  ASSERT_TRUE(cat->EnsureDataset("one", "", "").ok());
  ASSERT_TRUE(cat->EnsureDataset("two", "", "").ok());
  TrackInput t = MakeTrack("t", 1);
  ASSERT_TRUE(cat->AddTracks("one", {t}).ok());
  ASSERT_TRUE(cat->AddTracks("two", {t}).ok());

  CatalogQuery q = QueryFrom(t);
  EXPECT_EQ(cat->Match(q)->matches.size(), 2u);
  q.datasets = {"two"};
  auto r = cat->Match(q);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->matches.size(), 1u);
  EXPECT_EQ(r->matches[0].track.dataset, "two");
  q.datasets = {"two", "nope"};
  absl::Status st = cat->Match(q).status();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_NE(st.message().find("'nope'"), std::string::npos);

  auto removed = cat->Delete("one", "");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1);
  ASSERT_EQ(cat->ListDatasets()->size(), 1u);
  EXPECT_TRUE(absl::IsNotFound(cat->AddTracks("one", {t})));
}

TEST_F(CatalogTest, SecondWriterIsRefusedWhileReadersKeepWorking) {
  auto writer = OpenRw();
  ASSERT_TRUE(writer->EnsureDataset("ds", "", "").ok());
  TrackInput a = MakeTrack("a", 1);
  ASSERT_TRUE(writer->AddTracks("ds", {a}).ok());

  auto second = Open(Catalog::Mode::kReadWrite);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_NE(second.status().message().find("pid " + std::to_string(::getpid())),
            std::string::npos)
      << second.status();

  auto reader = Open(Catalog::Mode::kReadOnly);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_TRUE((*reader)->Match(QueryFrom(a))->member);
  // The writer goes on writing; the reader goes on reading (its index is a snapshot, its
  // metadata look-ups see the latest commits).
  TrackInput b = MakeTrack("b", 2);
  ASSERT_TRUE(writer->AddTracks("ds", {b}).ok());
  EXPECT_TRUE((*reader)->GetTrack("ds", "b").ok());
  EXPECT_EQ((*reader)->ListDatasets()->at(0).tracks, 2);
  EXPECT_TRUE(absl::IsFailedPrecondition((*reader)->AddTracks("ds", {b})));
  EXPECT_TRUE(absl::IsFailedPrecondition((*reader)->Delete("ds", "b").status()));

  writer.reset();  // releases the lock
  auto next = Open(Catalog::Mode::kReadWrite);
  EXPECT_TRUE(next.ok()) << next.status();
}

TEST_F(CatalogTest, ReadOnlyNeedsAnExistingCatalogue) {
  auto cat = Open(Catalog::Mode::kReadOnly);
  ASSERT_FALSE(cat.ok());
  EXPECT_TRUE(absl::IsNotFound(cat.status()));
  EXPECT_NE(cat.status().message().find("trainspotter ingest"), std::string::npos);
}

TEST_F(CatalogTest, RefusesACatalogueFromANewerFormat) {
  OpenRw().reset();
  {
    std::fstream f(dir_.Join("catalog.db"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(60);
    const char v[4] = {0, 0, 0, 42};
    f.write(v, 4);
  }
  for (auto mode : {Catalog::Mode::kReadOnly, Catalog::Mode::kReadWrite}) {
    auto cat = Open(mode);
    ASSERT_FALSE(cat.ok());
    EXPECT_TRUE(absl::IsFailedPrecondition(cat.status()));
    EXPECT_NE(cat.status().message().find("format version 42"), std::string::npos)
        << cat.status();
  }
}

TEST_F(CatalogTest, WithoutIndexWritesWorkAndMatchIsRefused) {
  {
    auto cat = Open(Catalog::Mode::kReadWrite, /*index=*/false);
    ASSERT_TRUE(cat.ok());
    ASSERT_TRUE((*cat)->EnsureDataset("ds", "", "").ok());
    ASSERT_TRUE((*cat)->AddTracks("ds", {MakeTrack("a", 1)}).ok());
    EXPECT_EQ((*cat)->num_tracks(), 1);
    EXPECT_TRUE(absl::IsFailedPrecondition((*cat)->Match(QueryFrom(MakeTrack("a", 1))).status()));
  }
  // A stored track the matcher refuses is kept, but counted as unindexed.
  {
    auto cat = Open(Catalog::Mode::kReadWrite, /*index=*/false);
    ASSERT_TRUE((*cat)->AddTracks("ds", {MakeTrack("tiny", 2, 4)}).ok());
  }
  auto cat = Open(Catalog::Mode::kReadOnly);
  ASSERT_TRUE(cat.ok()) << cat.status();
  EXPECT_EQ((*cat)->num_tracks(), 2);
  EXPECT_EQ((*cat)->num_unindexed(), 1);
  EXPECT_TRUE((*cat)->Match(QueryFrom(MakeTrack("a", 1)))->member);
}

TEST_F(CatalogTest, MatchRunsConcurrentlyWithWrites) {
  auto cat = OpenRw();
  ASSERT_TRUE(cat->EnsureDataset("ds", "", "").ok());
  TrackInput anchor = MakeTrack("anchor", 1);
  ASSERT_TRUE(cat->AddTracks("ds", {anchor}).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> misses{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 2; ++i) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto r = cat->Match(QueryFrom(anchor));
        if (!r.ok() || !r->member) misses.fetch_add(1);
      }
    });
  }
  for (int batch = 0; batch < 20; ++batch) {
    std::vector<TrackInput> tracks;
    for (int i = 0; i < 10; ++i) {
      tracks.push_back(MakeTrack(std::to_string(batch * 10 + i), 100 + batch * 10 + i));
    }
    ASSERT_TRUE(cat->AddTracks("ds", tracks).ok());
    if (batch % 3 == 0) {
      ASSERT_TRUE(cat->Delete("ds", std::to_string(batch * 10)).ok());
    }
  }
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(misses.load(), 0);
  EXPECT_EQ(cat->num_tracks(), 1 + 200 - 7);
  EXPECT_TRUE(cat->CheckIntegrity().ok());
}

// The catalogue over the real Matcher (Matcher::Create), not the fake: what `query` and `serve`
// run. A clip from the middle of a stored track is found at its offset, after a reopen too.
TEST_F(CatalogTest, RealMatcherFindsAStoredTrackAfterReopen) {
  std::vector<TrackInput> tracks;
  for (uint32_t i = 0; i < 20; ++i) tracks.push_back(MakeTrack("t" + std::to_string(i), i, 800));
  {
    auto cat = Catalog::Open(dir_.path(), Catalog::Mode::kReadWrite);
    ASSERT_TRUE(cat.ok()) << cat.status();
    ASSERT_TRUE((*cat)->EnsureDataset("ds", "", "").ok());
    ASSERT_TRUE((*cat)->AddTracks("ds", tracks).ok());
    auto r = (*cat)->Match(QueryFrom(tracks[3], 300, 160));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->member);
    EXPECT_EQ(r->matches[0].track.track_id, "t3");
  }
  auto cat = Catalog::Open(dir_.path(), Catalog::Mode::kReadOnly);
  ASSERT_TRUE(cat.ok()) << cat.status();
  EXPECT_EQ((*cat)->num_tracks(), 20);
  auto r = (*cat)->Match(QueryFrom(tracks[11], 400, 160));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->member);
  EXPECT_EQ(r->matches[0].track.track_id, "t11");
  EXPECT_NEAR(r->matches[0].segment.ref_start, ItemToSeconds(400), 1.0);
  auto miss = (*cat)->Match(ItemsQuery(RandomItems(999, 160)));
  ASSERT_TRUE(miss.ok()) << miss.status();
  EXPECT_FALSE(miss->member);
}

// The index snapshot written by WriteIndexSnapshot: later opens read it back, then catch up with
// what changed in the database since (added, replaced and deleted tracks, narrowband twins), and
// a damaged snapshot falls back to indexing the fingerprints. Every answer stays the same.
TEST_F(CatalogTest, IndexSnapshotIsReadBackAndReconciledWithLaterWrites) {
  Catalog::OpenOptions options;
  options.matcher.approximate_min_items = 1000;  // the snapshot carries the approximate index
  std::vector<TrackInput> tracks;
  for (uint32_t i = 0; i < 20; ++i) tracks.push_back(MakeTrack("t" + std::to_string(i), i, 800));
  tracks[7].narrowband_items = RandomItems(700, 600);
  {
    options.mode = Catalog::Mode::kReadWrite;
    auto cat = Catalog::Open(dir_.path(), options);
    ASSERT_TRUE(cat.ok()) << cat.status();
    ASSERT_TRUE((*cat)->EnsureDataset("ds", "", "").ok());
    ASSERT_TRUE((*cat)->AddTracks("ds", tracks).ok());
    ASSERT_TRUE((*cat)->WriteIndexSnapshot().ok());
  }
  ASSERT_TRUE(std::filesystem::exists(dir_.Join("index.snapshot")));
  TrackInput added = MakeTrack("added", 500, 800);
  TrackInput replaced = MakeTrack("t5", 501, 800);  // same id, new content
  {
    options.mode = Catalog::Mode::kReadWrite;
    auto cat = Catalog::Open(dir_.path(), options);  // from the snapshot
    ASSERT_TRUE(cat.ok()) << cat.status();
    ASSERT_TRUE((*cat)->AddTracks("ds", {added, replaced}).ok());
    ASSERT_TRUE((*cat)->Delete("ds", "t3").ok());
  }
  auto top = [](Catalog& cat, const CatalogQuery& q) -> std::string {
    auto r = cat.Match(q);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && r->member ? r->matches[0].track.track_id : "";
  };
  auto check = [&](Catalog& cat) {
    EXPECT_EQ(cat.num_tracks(), 20);
    EXPECT_EQ(top(cat, QueryFrom(tracks[11], 400, 160)), "t11");
    EXPECT_EQ(top(cat, QueryFrom(added, 100, 160)), "added");
    EXPECT_EQ(top(cat, QueryFrom(replaced, 200, 160)), "t5");
    EXPECT_EQ(top(cat, QueryFrom(tracks[5], 200, 160)), "");  // the old content is gone
    EXPECT_EQ(top(cat, QueryFrom(tracks[3], 200, 160)), "");  // deleted
    CatalogQuery twin;
    twin.items.assign(tracks[7].narrowband_items.begin() + 100,
                      tracks[7].narrowband_items.begin() + 260);
    EXPECT_EQ(top(cat, twin), "t7");
  };
  {
    options.mode = Catalog::Mode::kReadOnly;  // the stale snapshot, reconciled
    ::testing::internal::CaptureStderr();
    auto cat = Catalog::Open(dir_.path(), options);
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "") << "the snapshot was not used";
    ASSERT_TRUE(cat.ok()) << cat.status();
    check(**cat);
  }
  {
    // A fresh snapshot holds all of it; then a damaged one is ignored.
    options.mode = Catalog::Mode::kReadWrite;
    auto cat = Catalog::Open(dir_.path(), options);
    ASSERT_TRUE(cat.ok()) << cat.status();
    ASSERT_TRUE((*cat)->WriteIndexSnapshot().ok());
  }
  {
    options.mode = Catalog::Mode::kReadOnly;
    auto cat = Catalog::Open(dir_.path(), options);
    ASSERT_TRUE(cat.ok()) << cat.status();
    check(**cat);
  }
  std::filesystem::resize_file(dir_.Join("index.snapshot"),
                               std::filesystem::file_size(dir_.Join("index.snapshot")) / 2);
  options.mode = Catalog::Mode::kReadOnly;
  ::testing::internal::CaptureStderr();
  auto cat = Catalog::Open(dir_.path(), options);
  const std::string warning = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(warning.find("index.snapshot"), std::string::npos) << warning;
  ASSERT_TRUE(cat.ok()) << cat.status();
  check(**cat);
  EXPECT_TRUE(absl::IsFailedPrecondition((*cat)->WriteIndexSnapshot()));  // read-only
}

TEST_F(CatalogTest, NarrowbandTwinsAreStoredReloadedReplacedAndDeleted) {
  TrackInput t = MakeTrack("song", 7, 800);
  t.narrowband_items = RandomItems(8, 800);
  CatalogQuery via_twin;
  via_twin.items.assign(t.narrowband_items.begin() + 200, t.narrowband_items.begin() + 300);
  {
    auto cat = Catalog::Open(dir_.path(), Catalog::Mode::kReadWrite);
    ASSERT_TRUE(cat.ok()) << cat.status();
    ASSERT_TRUE((*cat)->EnsureDataset("ds", "", "").ok());
    ASSERT_TRUE((*cat)->AddTracks("ds", {t}).ok());
    auto r = (*cat)->Match(via_twin);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->member);
    EXPECT_EQ(r->matches[0].track.track_id, "song");
    EXPECT_EQ((*cat)->num_tracks(), 1);
  }
  {
    // Reopened: the twin comes back from the database.
    auto cat = Catalog::Open(dir_.path(), Catalog::Mode::kReadWrite);
    ASSERT_TRUE(cat.ok()) << cat.status();
    auto r = (*cat)->Match(via_twin);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->member);
    EXPECT_EQ(r->matches[0].track.track_id, "song");
    // Replaced without a twin: the old twin no longer matches, now or after reopening.
    TrackInput plain = t;
    plain.narrowband_items.clear();
    plain.content_hash = "changed";
    ASSERT_TRUE((*cat)->AddTracks("ds", {plain}).ok());
    r = (*cat)->Match(via_twin);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->member);
  }
  {
    auto cat = Catalog::Open(dir_.path(), Catalog::Mode::kReadWrite);
    ASSERT_TRUE(cat.ok()) << cat.status();
    auto r = (*cat)->Match(via_twin);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->member);
    t.content_hash = "again";
    ASSERT_TRUE((*cat)->AddTracks("ds", {t}).ok());
    ASSERT_TRUE((*cat)->Delete("ds", "song").ok());
    EXPECT_TRUE((*cat)->CheckIntegrity().ok());
  }
  auto cat = Catalog::Open(dir_.path(), Catalog::Mode::kReadOnly);
  ASSERT_TRUE(cat.ok()) << cat.status();
  auto r = (*cat)->Match(via_twin);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->member);
}

TEST_F(CatalogTest, CompactShrinksTheFileAndKeepsEveryRemainingTrack) {
  auto db_bytes = [this] {
    std::uintmax_t total = 0;
    for (const char* name : {"catalog.db", "catalog.db-wal"}) {
      std::error_code ec;
      const std::uintmax_t n = std::filesystem::file_size(dir_.Join(name), ec);
      if (!ec) total += n;
    }
    return total;
  };
  {
    std::unique_ptr<Catalog> c = OpenRw();
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->EnsureDataset("ds", "1", "").ok());
    std::vector<TrackInput> tracks;
    for (int i = 0; i < 200; ++i) tracks.push_back(MakeTrack("t" + std::to_string(i), i, 2000));
    ASSERT_TRUE(c->AddTracks("ds", tracks).ok());
    for (int i = 0; i < 150; ++i) ASSERT_TRUE(c->Delete("ds", "t" + std::to_string(i)).ok());
  }
  const std::uintmax_t before = db_bytes();
  {
    std::unique_ptr<Catalog> c = OpenRw();
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->Compact().ok());
    EXPECT_EQ(c->num_tracks(), 50);
    ASSERT_TRUE(c->CheckIntegrity().ok());
    auto t = c->GetTrack("ds", "t199");
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->num_items, 2000);
  }
  // 150 of 200 fingerprints (8 KB each) were deleted: the file gives most of their space back.
  const std::uintmax_t after = db_bytes();
  EXPECT_LT(after * 2, before) << before << " -> " << after;
  // Reopened: the matcher gets exactly the 50 remaining fingerprints.
  auto ro = Open(Catalog::Mode::kReadOnly);
  ASSERT_TRUE(ro.ok()) << ro.status();
  EXPECT_EQ(last_matcher_->num_tracks(), 50);
  EXPECT_TRUE(absl::IsFailedPrecondition((*ro)->Compact()));
}

}  // namespace
}  // namespace trainspotter
