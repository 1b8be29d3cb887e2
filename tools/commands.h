// Subcommands of the `trainspotter` CLI. Each takes the arguments after its name (argv[0] is
// "trainspotter <cmd>") and returns the process exit code: 0 success, 1 failure on some input,
// 2 usage error.
#ifndef TRAINSPOTTER_TOOLS_COMMANDS_H_
#define TRAINSPOTTER_TOOLS_COMMANDS_H_

namespace trainspotter::cli {

int RunFingerprint(int argc, char** argv);
int RunIngest(int argc, char** argv);
int RunQuery(int argc, char** argv);
int RunDatasets(int argc, char** argv);
int RunDelete(int argc, char** argv);
int RunCompact(int argc, char** argv);
int RunServe(int argc, char** argv);
int RunScan(int argc, char** argv);
int RunSynth(int argc, char** argv);

}  // namespace trainspotter::cli

#endif  // TRAINSPOTTER_TOOLS_COMMANDS_H_
