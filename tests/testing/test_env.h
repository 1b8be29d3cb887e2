// Test environment helpers: the real-music fixture, temporary folders, running commands.
#ifndef TRAINSPOTTER_TESTS_TESTING_TEST_ENV_H_
#define TRAINSPOTTER_TESTS_TESTING_TEST_ENV_H_

#include <string>
#include <vector>

#include "tests/testing/temp_dir.h"

namespace trainspotter::testing {

// The folder tools/fetch-test-music.sh fills: $TRAINSPOTTER_MUSIC_DIR if set, else the folder the
// build was configured with (cache variable TRAINSPOTTER_TEST_MUSIC_DIR, passed to the test as
// the compile definition of the same name), else ~/.cache/trainspotter/music.
std::string TestMusicDir();

// The fixture's tracks (.ogg and .mp3), sorted by name; empty when it has not been fetched.
std::vector<std::string> TestMusicFiles();

// Message for GTEST_SKIP() when TestMusicFiles() is empty.
std::string MissingMusicMessage();

// A fresh folder (TempDir, tests/testing/temp_dir.h), removed with its contents on destruction;
// File() names a file in it.
class ScopedTempDir : public ::trainspotter::TempDir {
 public:
  std::string File(const std::string& name) const { return Join(name); }
};

struct CommandResult {
  int exit_code = -1;  // -1 if it did not exit normally
  std::string output;  // its standard output (standard error too, if the command says 2>&1)
};

// Runs `command` with /bin/sh and captures its standard output.
CommandResult RunCommand(const std::string& command);

// True if `program` is found on PATH.
bool HaveProgram(const std::string& program);

// Single-quotes `s` for /bin/sh.
std::string ShellQuote(const std::string& s);

// Starts argv[0] (a path, or a name looked up on PATH) with argv, without a shell: standard
// input from `stdin_path`, standard output and error to (truncated) files. `env` is the whole
// environment as "NAME=value" strings; nullptr passes ours on. Returns the pid, or -1 if the
// program could not be started.
int SpawnProcess(const std::vector<std::string>& argv, const std::vector<std::string>* env,
                 const std::string& stdin_path, const std::string& out_path,
                 const std::string& err_path);

// Waits for a SpawnProcess child: its exit code, 128 + the signal that killed it, or -1.
int WaitExitCode(int pid);

}  // namespace trainspotter::testing

#endif  // TRAINSPOTTER_TESTS_TESTING_TEST_ENV_H_
