// Transparent huge pages for the matcher's big arrays. The search reads the item array at
// random positions (one 64-byte window per candidate); with 4 KiB pages nearly every read of a
// multi-GB array also misses the TLB. Debian's default THP mode is "madvise": only regions
// that ask get 2 MiB pages, and only for pages first touched after asking.
#ifndef TRAINSPOTTER_MATCHER_HUGE_PAGES_H_
#define TRAINSPOTTER_MATCHER_HUGE_PAGES_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>

namespace trainspotter {

// Asks for huge pages over the 2 MiB-aligned part of [p, p + bytes). Best effort: a kernel
// without THP, or a region too small, is left as it is.
inline void AdviseHugePages(const void* p, size_t bytes) {
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

}  // namespace trainspotter

#endif  // TRAINSPOTTER_MATCHER_HUGE_PAGES_H_
