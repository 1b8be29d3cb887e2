// TEMPORARY during bring-up: replaced by the real command in this same file.
#include <cstdio>

#include "tools/commands.h"

namespace trainspotter::cli {

int RunDatasets(int, char**) {
  std::fprintf(stderr, "trainspotter datasets: not built yet\n");
  return 2;
}
int RunDelete(int, char**) {
  std::fprintf(stderr, "trainspotter delete: not built yet\n");
  return 2;
}
}  // namespace trainspotter::cli
