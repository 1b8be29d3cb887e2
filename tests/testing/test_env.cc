#include "tests/testing/test_env.h"

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace trainspotter::testing {

std::string TestMusicDir() {
  if (const char* env = std::getenv("TRAINSPOTTER_MUSIC_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
#ifdef TRAINSPOTTER_TEST_MUSIC_DIR
  if (std::string configured = TRAINSPOTTER_TEST_MUSIC_DIR; !configured.empty()) {
    return configured;
  }
#endif
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr ? home : "/root", "/.cache/trainspotter/music");
}

std::vector<std::string> TestMusicFiles() {
  std::vector<std::string> files;
  const std::string dir = TestMusicDir();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file(ec) &&
        (absl::EndsWith(name, ".ogg") || absl::EndsWith(name, ".mp3"))) {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string MissingMusicMessage() {
  return absl::StrCat("real-music fixture not found in ", TestMusicDir(),
                      "; run tools/fetch-test-music.sh (tools/test.sh does)");
}

int SpawnProcess(const std::vector<std::string>& argv, const std::vector<std::string>* env,
                 const std::string& stdin_path, const std::string& out_path,
                 const std::string& err_path) {
  if (argv.empty()) return -1;
  std::vector<std::string> args = argv;  // posix_spawn takes char*, not const char*
  std::vector<char*> arg_ptrs;
  for (std::string& a : args) arg_ptrs.push_back(a.data());
  arg_ptrs.push_back(nullptr);
  std::vector<std::string> envs;
  std::vector<char*> env_ptrs;
  if (env != nullptr) {
    envs = *env;
    for (std::string& e : envs) env_ptrs.push_back(e.data());
    env_ptrs.push_back(nullptr);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, arg_ptrs[0], &actions, nullptr, arg_ptrs.data(),
                              env != nullptr ? env_ptrs.data() : environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? static_cast<int>(pid) : -1;
}

int WaitExitCode(int pid) {
  int status = 0;
  if (pid <= 0 || ::waitpid(pid, &status, 0) != pid) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[1 << 14];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  const int status = ::pclose(pipe);
  if (status != -1 && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

bool HaveProgram(const std::string& program) {
  return RunCommand(absl::StrCat("command -v ", ShellQuote(program), " >/dev/null 2>&1"))
             .exit_code == 0;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

}  // namespace trainspotter::testing
