// trainspotter datasets / delete: list what a catalogue holds, and remove datasets or tracks.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "matcher/catalog.h"
#include "nlohmann/json.hpp"
#include "tools/commands.h"

namespace trainspotter::cli {
namespace {

// Parses argv with CLI11's exceptions kept here: 0 = go on, otherwise the exit code.
int Parse(CLI::App& app, int argc, char** argv, const char* cmd, bool* exit) {
  *exit = false;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    *exit = true;
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    *exit = true;
    std::fprintf(stderr, "trainspotter %s: %s\nRun 'trainspotter %s --help' for usage.\n", cmd,
                 e.what(), cmd);
    return 2;
  }
  return 0;
}

constexpr const char* kDatasetsFooter = R"(
Reads the catalogue without locking it: works while an ingest is running.

Examples:
  trainspotter datasets --catalog cat
  trainspotter datasets --catalog cat --json | jq '.[] | select(.tracks > 1000) | .name'
)";

constexpr const char* kDeleteFooter = R"(
Deleting is one transaction: it either happens completely or not at all. A running
`trainspotter serve` keeps answering from the index it loaded until it is restarted.

Examples:
  trainspotter delete --catalog cat --dataset fma-small                 # the whole dataset
  trainspotter delete --catalog cat --dataset fma-small --track 000/000002.mp3
)";

constexpr const char* kCompactFooter = R"(
Checks the catalogue (SQLite integrity, every track has its fingerprint), then rewrites the
database without the pages that deleted tracks left free, then writes the search index as it
is now to DIR/index.snapshot. The rewrite is one SQLite transaction and the snapshot is
written to a temporary file and renamed: killed at any point, the catalogue is the old one or
the compacted one. It takes the writer lock (an ingest cannot run at the same time); readers
and `serve` keep working.

Without a snapshot, every open (query, serve) indexes every fingerprint again: ~70 s for 1M
tracks. With one, an open reads it back and only indexes tracks added or changed since, so run
compact after a large ingest. The snapshot is a cache (about the size of the fingerprints):
deleting it is safe, and a stale or damaged one never changes an answer.

Examples:
  trainspotter delete --catalog cat --dataset old-scrape && trainspotter compact --catalog cat
  trainspotter compact --catalog /srv/trainspotter/catalog     # also a periodic health check
)";

// Opens an existing catalogue for writing (never creates one: NOT_FOUND from a read-only probe
// first). On error prints it for `cmd` and returns null.
std::unique_ptr<Catalog> OpenExistingForWriting(const std::string& dir, bool build_index,
                                                const char* cmd) {
  Catalog::OpenOptions probe;
  probe.build_index = false;
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Open(dir, probe);
  if (catalog.ok()) {
    catalog->reset();
    Catalog::OpenOptions open;
    open.mode = Catalog::Mode::kReadWrite;
    open.build_index = build_index;
    catalog = Catalog::Open(dir, open);
  }
  if (!catalog.ok()) {
    std::fprintf(stderr, "trainspotter %s: %s\n", cmd,
                 std::string(catalog.status().message()).c_str());
    return nullptr;
  }
  return *std::move(catalog);
}

// Bytes of the catalogue's database files.
int64_t DatabaseBytes(const std::string& dir) {
  int64_t total = 0;
  for (const char* name : {"catalog.db", "catalog.db-wal"}) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(std::filesystem::path(dir) / name, ec);
    if (!ec) total += static_cast<int64_t>(n);
  }
  return total;
}

}  // namespace

int RunCompact(int argc, char** argv) {
  std::string dir = "./catalog";
  CLI::App app("Check a catalogue and give the space of deleted tracks back (crash-safe).",
               "trainspotter compact");
  app.add_option("--catalog", dir, "Catalogue directory")->capture_default_str();
  app.footer(kCompactFooter);
  bool exit = false;
  int rc = Parse(app, argc, argv, "compact", &exit);
  if (exit) return rc;
  std::unique_ptr<Catalog> catalog = OpenExistingForWriting(dir, /*build_index=*/true, "compact");
  if (catalog == nullptr) return 1;
  const int64_t before = DatabaseBytes(dir);
  absl::Status s = catalog->Compact();
  if (!s.ok()) {
    std::fprintf(stderr, "trainspotter compact: %s: %s\n", dir.c_str(),
                 std::string(s.message()).c_str());
    return 1;
  }
  const int64_t after = DatabaseBytes(dir);
  std::printf("compacted catalogue %s: %.1f MB -> %.1f MB (%lld tracks)\n", dir.c_str(),
              static_cast<double>(before) / 1e6, static_cast<double>(after) / 1e6,
              static_cast<long long>(catalog->num_tracks()));
  s = catalog->WriteIndexSnapshot();
  if (!s.ok()) {
    std::fprintf(stderr, "trainspotter compact: index snapshot of %s: %s\n", dir.c_str(),
                 std::string(s.message()).c_str());
    return 1;
  }
  std::error_code ec;
  const auto snapshot =
      std::filesystem::file_size(std::filesystem::path(dir) / "index.snapshot", ec);
  std::printf("wrote index snapshot %s/index.snapshot: %.1f MB\n", dir.c_str(),
              ec ? 0.0 : static_cast<double>(snapshot) / 1e6);
  return 0;
}

int RunDatasets(int argc, char** argv) {
  std::string dir = "./catalog";
  bool json = false;
  CLI::App app("List the datasets in a catalogue: name, version, tracks and hours of audio.",
               "trainspotter datasets");
  app.add_option("--catalog", dir, "Catalogue directory")->capture_default_str();
  app.add_flag("--json", json, "Print a JSON array instead of a table");
  app.footer(kDatasetsFooter);
  bool exit = false;
  int rc = Parse(app, argc, argv, "datasets", &exit);
  if (exit) return rc;

  Catalog::OpenOptions open;
  open.mode = Catalog::Mode::kReadOnly;
  open.build_index = false;  // listing needs no fingerprints
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Open(dir, open);
  if (!catalog.ok()) {
    std::fprintf(stderr, "trainspotter datasets: %s\n",
                 std::string(catalog.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<std::vector<DatasetInfo>> datasets = (*catalog)->ListDatasets();
  if (!datasets.ok()) {
    std::fprintf(stderr, "trainspotter datasets: %s\n",
                 std::string(datasets.status().message()).c_str());
    return 1;
  }
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const DatasetInfo& d : *datasets) {
      out.push_back({{"name", d.name},
                     {"version", d.version},
                     {"description", d.description},
                     {"tracks", d.tracks},
                     {"hours", d.hours}});
    }
    std::printf("%s\n",
                out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  if (datasets->empty()) {
    std::printf("no datasets in catalogue %s\n", dir.c_str());
    return 0;
  }
  size_t name_w = 7, version_w = 7;
  for (const DatasetInfo& d : *datasets) {
    name_w = std::max(name_w, d.name.size());
    version_w = std::max(version_w, d.version.size());
  }
  std::printf("%-*s  %-*s  %10s  %10s  %s\n", static_cast<int>(name_w), "DATASET",
              static_cast<int>(version_w), "VERSION", "TRACKS", "HOURS", "DESCRIPTION");
  int64_t tracks = 0;
  double hours = 0;
  for (const DatasetInfo& d : *datasets) {
    std::printf("%-*s  %-*s  %10lld  %10.1f  %s\n", static_cast<int>(name_w), d.name.c_str(),
                static_cast<int>(version_w), d.version.empty() ? "-" : d.version.c_str(),
                static_cast<long long>(d.tracks), d.hours, d.description.c_str());
    tracks += d.tracks;
    hours += d.hours;
  }
  if (datasets->size() > 1) {
    std::printf("%-*s  %-*s  %10lld  %10.1f\n", static_cast<int>(name_w), "total",
                static_cast<int>(version_w), "", static_cast<long long>(tracks), hours);
  }
  return 0;
}

int RunDelete(int argc, char** argv) {
  std::string dir = "./catalog", dataset, track;
  CLI::App app("Delete a dataset, or one track of it, from a catalogue.", "trainspotter delete");
  app.add_option("--catalog", dir, "Catalogue directory")->capture_default_str();
  app.add_option("--dataset", dataset, "Dataset to delete from")->required();
  app.add_option("--track", track, "Delete only this track (its track_id)");
  app.footer(kDeleteFooter);
  bool exit = false;
  int rc = Parse(app, argc, argv, "delete", &exit);
  if (exit) return rc;

  std::unique_ptr<Catalog> catalog = OpenExistingForWriting(dir, /*build_index=*/false, "delete");
  if (catalog == nullptr) return 1;
  absl::StatusOr<int64_t> removed = catalog->Delete(dataset, track);
  if (!removed.ok()) {
    std::fprintf(stderr, "trainspotter delete: %s\n",
                 std::string(removed.status().message()).c_str());
    return 1;
  }
  if (track.empty()) {
    std::printf("deleted dataset '%s' (%lld tracks) from catalogue %s\n", dataset.c_str(),
                static_cast<long long>(*removed), dir.c_str());
  } else {
    std::printf("deleted track '%s' of dataset '%s' from catalogue %s\n", track.c_str(),
                dataset.c_str(), dir.c_str());
  }
  return 0;
}

}  // namespace trainspotter::cli
