// trainspotter: is this audio in a known AI-training dataset, and where?
#include <cstdio>
#include <cstring>
#include <string>

#include "tools/commands.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

constexpr Command kCommands[] = {
    {"fingerprint", trainspotter::cli::RunFingerprint,
     "print Chromaprint fingerprints of audio files (fpcalc-compatible)"},
    {"ingest", trainspotter::cli::RunIngest,
     "add a training dataset's audio or fingerprints to a catalogue"},
    {"query", trainspotter::cli::RunQuery,
     "is this audio (or any part of it) in the catalogue, and where?"},
    {"datasets", trainspotter::cli::RunDatasets, "list the datasets in a catalogue"},
    {"delete", trainspotter::cli::RunDelete, "delete a dataset or one track from a catalogue"},
    {"compact", trainspotter::cli::RunCompact,
     "check a catalogue and give deleted tracks' space back (crash-safe)"},
    {"serve", trainspotter::cli::RunServe, "serve a catalogue over gRPC"},
    {"scan", trainspotter::cli::RunScan,
     "bulk-scan a folder of audio against a trainspotter server"},
    {"synth", trainspotter::cli::RunSynth, "build a synthetic catalogue and query set (benchmarks)"},
};

void PrintHelp(FILE* out) {
  std::fprintf(out,
               "trainspotter: find out whether audio is in a known AI-training dataset.\n"
               "\n"
               "Usage: trainspotter <command> [options] [args]\n"
               "\n"
               "Commands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-12s %s\n", c.name, c.summary);
  std::fprintf(out,
               "  %-12s %s\n"
               "\n"
               "Run 'trainspotter <command> --help' for a command's options and examples.\n"
               "\n"
               "A typical session:\n"
               "  trainspotter ingest --catalog cat --dataset fma --manifest fma.csv\n"
               "  trainspotter query --catalog cat clip.mp3\n"
               "  trainspotter serve --catalog cat --listen 127.0.0.1:50051\n",
               "help", "show this help (or 'help <command>')");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    PrintHelp(stderr);
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    if (argc >= 3) {
      for (const Command& c : kCommands) {
        if (std::strcmp(c.name, argv[2]) == 0) {
          std::string self = std::string("trainspotter ") + c.name;
          char help[] = "--help";
          char* sub_argv[] = {self.data(), help, nullptr};
          return c.run(2, sub_argv);
        }
      }
      std::fprintf(stderr, "trainspotter: unknown command '%s'\n", argv[2]);
      return 2;
    }
    PrintHelp(stdout);
    return 0;
  }
  if (cmd == "--version" || cmd == "version") {
    std::printf("trainspotter %s\n", TRAINSPOTTER_VERSION);
    return 0;
  }
  for (const Command& c : kCommands) {
    if (cmd == c.name) {
      std::string self = std::string("trainspotter ") + c.name;
      argv[1] = self.data();
      return c.run(argc - 1, argv + 1);
    }
  }
  std::fprintf(stderr, "trainspotter: unknown command '%s' (see 'trainspotter help')\n",
               cmd.c_str());
  return 2;
}
