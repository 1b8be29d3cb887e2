#include "matcher/catalog_store.h"

#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/random_items.h"
#include "tests/testing/temp_dir.h"

namespace trainspotter {
namespace {

using ::trainspotter::testing::RandomItems;

TrackInput MakeTrack(const std::string& id, uint32_t seed, size_t n = 100) {
  TrackInput t;
  t.track_id = id;
  t.items = RandomItems(seed, n);
  t.content_hash = "hash-" + std::to_string(seed);
  t.metadata.title = "Title " + id;
  t.metadata.artist = "Artist";
  t.metadata.album = "Album";
  t.metadata.source_url = "https://example.org/" + id;
  t.metadata.license = "CC-BY-4.0";
  t.metadata.duration_seconds = 12.5;
  t.metadata.extra = {{"genre", "Rock"}, {"bpm", "120"}, {"note", "a \"quoted\", comma"}};
  return t;
}

// Patches PRAGMA user_version (big-endian uint32 at byte 60 of the database header).
void SetUserVersion(const std::string& path, uint32_t v) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good());
  f.seekp(60);
  char bytes[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                   static_cast<char>(v >> 8), static_cast<char>(v)};
  f.write(bytes, 4);
}

class CatalogStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<CatalogStore> OpenRw() {
    auto s = CatalogStore::Open(path_, /*read_only=*/false);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }
  TempDir dir_;
  std::string path_ = dir_.Join("catalog.db");
};

TEST_F(CatalogStoreTest, RoundTripsMetadataAndFingerprints) {
  auto store = OpenRw();
  ASSERT_NE(store, nullptr);
  auto ds = store->EnsureDataset("fma", "1.0", "Free Music Archive");
  ASSERT_TRUE(ds.ok()) << ds.status();
  std::vector<TrackInput> tracks = {MakeTrack("a/1.mp3", 1), MakeTrack("b/2.mp3", 2, 3000)};
  auto placed = store->PutTracks(ds->id, tracks);
  ASSERT_TRUE(placed.ok()) << placed.status();
  ASSERT_EQ(placed->size(), 2u);
  EXPECT_FALSE((*placed)[0].replaced);
  store.reset();

  auto ro = CatalogStore::Open(path_, /*read_only=*/true);
  ASSERT_TRUE(ro.ok()) << ro.status();
  auto t = (*ro)->GetTrack("fma", "b/2.mp3");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dataset, "fma");
  EXPECT_EQ(t->version, "1.0");
  EXPECT_EQ(t->track_id, "b/2.mp3");
  EXPECT_EQ(t->metadata.title, "Title b/2.mp3");
  EXPECT_EQ(t->metadata.artist, "Artist");
  EXPECT_EQ(t->metadata.album, "Album");
  EXPECT_EQ(t->metadata.source_url, "https://example.org/b/2.mp3");
  EXPECT_EQ(t->metadata.license, "CC-BY-4.0");
  EXPECT_DOUBLE_EQ(t->metadata.duration_seconds, 12.5);
  EXPECT_EQ(t->metadata.extra, tracks[1].metadata.extra);
  EXPECT_EQ(t->num_items, 3000);
  EXPECT_EQ(t->content_hash, "hash-2");

  auto items = (*ro)->GetItems((*placed)[1].key);
  ASSERT_TRUE(items.ok() && items->has_value());
  EXPECT_EQ(**items, tracks[1].items);

  auto by_key = (*ro)->GetTrackByKey((*placed)[0].key);
  ASSERT_TRUE(by_key.ok() && by_key->has_value());
  EXPECT_EQ((*by_key)->track_id, "a/1.mp3");

  int64_t n = 0;
  ASSERT_TRUE((*ro)->ForEachFingerprint([&](int64_t key, int64_t dataset_id,
                                           absl::Span<const uint32_t> its) {
                     EXPECT_EQ(dataset_id, ds->id);
                     EXPECT_EQ(std::vector<uint32_t>(its.begin(), its.end()),
                               key == (*placed)[0].key ? tracks[0].items : tracks[1].items);
                     ++n;
                     return absl::OkStatus();
                   }).ok());
  EXPECT_EQ(n, 2);

  auto list = (*ro)->ListDatasets();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "fma");
  EXPECT_EQ((*list)[0].description, "Free Music Archive");
  EXPECT_EQ((*list)[0].tracks, 2);
  EXPECT_NEAR((*list)[0].hours, 25.0 / 3600, 1e-9);
  EXPECT_TRUE((*ro)->CheckIntegrity().ok());
}

TEST_F(CatalogStoreTest, ReplaceKeepsKeyAndUpdatesEverything) {
  auto store = OpenRw();
  ASSERT_NE(store, nullptr);
  auto ds = store->EnsureDataset("d", "", "");
  ASSERT_TRUE(ds.ok());
  auto first = store->PutTracks(ds->id, {MakeTrack("x", 1)});
  ASSERT_TRUE(first.ok());
  TrackInput changed = MakeTrack("x", 7, 50);
  changed.metadata.title = "New";
  changed.metadata.duration_seconds = 3;
  changed.metadata.extra = {};
  auto second = store->PutTracks(ds->id, {changed});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE((*second)[0].replaced);
  EXPECT_EQ((*second)[0].key, (*first)[0].key);
  EXPECT_DOUBLE_EQ((*second)[0].old_duration_seconds, 12.5);

  auto t = store->GetTrack("d", "x");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->metadata.title, "New");
  EXPECT_TRUE(t->metadata.extra.empty());
  EXPECT_EQ(t->num_items, 50);
  EXPECT_EQ(t->content_hash, "hash-7");
  EXPECT_EQ(**store->GetItems((*first)[0].key), changed.items);
  int64_t tracks = 0;
  double seconds = 0;
  ASSERT_TRUE(store->Totals(&tracks, &seconds).ok());
  EXPECT_EQ(tracks, 1);
  EXPECT_DOUBLE_EQ(seconds, 3);
}

TEST_F(CatalogStoreTest, ContentHashLookup) {
  auto store = OpenRw();
  auto ds = store->EnsureDataset("d", "", "");
  ASSERT_TRUE(store->PutTracks(ds->id, {MakeTrack("x", 1)}).ok());
  EXPECT_EQ(**store->GetContentHash("d", "x"), "hash-1");
  EXPECT_FALSE(store->GetContentHash("d", "y")->has_value());
  EXPECT_FALSE(store->GetContentHash("other", "x")->has_value());
}

TEST_F(CatalogStoreTest, DeletesTrackThenDataset) {
  auto store = OpenRw();
  auto ds = store->EnsureDataset("d", "", "");
  auto placed = store->PutTracks(ds->id, {MakeTrack("x", 1), MakeTrack("y", 2)});
  ASSERT_TRUE(placed.ok());

  auto gone = store->Delete("d", "x");
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(gone->keys, std::vector<int64_t>{(*placed)[0].key});
  EXPECT_DOUBLE_EQ(gone->seconds, 12.5);
  EXPECT_TRUE(absl::IsNotFound(store->GetTrack("d", "x").status()));
  EXPECT_FALSE(store->GetItems((*placed)[0].key)->has_value());
  EXPECT_TRUE(absl::IsNotFound(store->Delete("d", "x").status()));

  auto all = store->Delete("d", "");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->keys.size(), 1u);
  EXPECT_TRUE(store->ListDatasets()->empty());
  absl::Status missing = store->Delete("d", "").status();
  EXPECT_TRUE(absl::IsNotFound(missing));
  EXPECT_NE(missing.message().find("'d'"), std::string::npos);
  EXPECT_TRUE(store->CheckIntegrity().ok());

  // Keys are never reused, so a stale reader cannot confuse a new track with a deleted one.
  auto ds2 = store->EnsureDataset("d", "", "");
  auto again = store->PutTracks(ds2->id, {MakeTrack("z", 3)});
  ASSERT_TRUE(again.ok());
  EXPECT_GT((*again)[0].key, (*placed)[1].key);
}

TEST_F(CatalogStoreTest, RejectsBadBatchesAtomically) {
  auto store = OpenRw();
  auto ds = store->EnsureDataset("d", "", "");
  TrackInput empty = MakeTrack("e", 1);
  empty.items.clear();
  EXPECT_TRUE(absl::IsInvalidArgument(store->PutTracks(ds->id, {MakeTrack("a", 1), empty}).status()));
  absl::Status dup = store->PutTracks(ds->id, {MakeTrack("a", 1), MakeTrack("a", 2)}).status();
  EXPECT_TRUE(absl::IsInvalidArgument(dup));
  EXPECT_NE(dup.message().find("'a'"), std::string::npos);
  EXPECT_TRUE(absl::IsNotFound(store->PutTracks(ds->id + 100, {MakeTrack("a", 1)}).status()));

  // A failing before_commit rolls the whole batch back.
  absl::Status refused = store
                             ->PutTracks(ds->id, {MakeTrack("a", 1), MakeTrack("b", 2)},
                                         [](absl::Span<const PutResult> placed) {
                                           EXPECT_EQ(placed.size(), 2u);
                                           return absl::InvalidArgumentError("no thanks");
                                         })
                             .status();
  EXPECT_EQ(refused.message(), "no thanks");
  EXPECT_TRUE(store->ListDatasets()->at(0).tracks == 0);
  EXPECT_TRUE(store->CheckIntegrity().ok());
}

TEST_F(CatalogStoreTest, DatasetVersionRules) {
  auto store = OpenRw();
  ASSERT_TRUE(store->EnsureDataset("d", "", "").ok());
  auto v1 = store->EnsureDataset("d", "1.0", "desc");  // fills in the version
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->version, "1.0");
  EXPECT_EQ(v1->description, "desc");
  auto same = store->EnsureDataset("d", "", "");  // unspecified: keeps what is stored
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->version, "1.0");
  EXPECT_EQ(same->description, "desc");
  absl::Status other = store->EnsureDataset("d", "2.0", "").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(other));
  EXPECT_NE(other.message().find("'1.0'"), std::string::npos);
  EXPECT_TRUE(absl::IsInvalidArgument(store->EnsureDataset("", "", "").status()));
}

TEST_F(CatalogStoreTest, RefusesNewerFormatVersion) {
  OpenRw().reset();
  SetUserVersion(path_, kCatalogFormatVersion + 1);
  for (bool read_only : {true, false}) {
    auto s = CatalogStore::Open(path_, read_only);
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(absl::IsFailedPrecondition(s.status())) << s.status();
    EXPECT_NE(s.status().message().find(
                  "format version " + std::to_string(kCatalogFormatVersion + 1)),
              std::string::npos)
        << s.status();
  }
}

TEST_F(CatalogStoreTest, RefusesFilesThatAreNotCatalogues) {
  {
    std::ofstream f(path_, std::ios::binary);
    f << std::string(8192, 'x');
  }
  auto s = CatalogStore::Open(path_, false);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsDataLoss(s.status())) << s.status();

  EXPECT_TRUE(absl::IsNotFound(CatalogStore::Open(dir_.Join("none.db"), true).status()));
}

TEST_F(CatalogStoreTest, ReaderSeesCommittedWritesWhileWriterIsOpen) {
  auto writer = OpenRw();
  auto reader = CatalogStore::Open(path_, /*read_only=*/true);
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto ds = writer->EnsureDataset("d", "", "");
  ASSERT_TRUE(writer->PutTracks(ds->id, {MakeTrack("x", 1)}).ok());
  EXPECT_TRUE((*reader)->GetTrack("d", "x").ok());
  EXPECT_TRUE(absl::IsFailedPrecondition((*reader)->EnsureDataset("e", "", "").status()));
}

}  // namespace
}  // namespace trainspotter
