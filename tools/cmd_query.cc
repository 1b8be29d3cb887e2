// TEMPORARY during bring-up: replaced by the real command in this same file.
#include <cstdio>

#include "tools/commands.h"

namespace trainspotter::cli {

int RunQuery(int, char**) {
  std::fprintf(stderr, "trainspotter query: not built yet\n");
  return 2;
}

}  // namespace trainspotter::cli
