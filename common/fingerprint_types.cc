#include "common/fingerprint_types.h"

#include <cmath>

namespace trainspotter {

int64_t SecondsToItem(double seconds) {
  if (!(seconds > 0)) return 0;
  return static_cast<int64_t>(std::llround(seconds * kItemsPerSecond));
}

}  // namespace trainspotter
