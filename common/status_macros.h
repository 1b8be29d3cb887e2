// Small helpers for propagating absl::Status, in the style of the macros abseil uses internally.
#ifndef TRAINSPOTTER_COMMON_STATUS_MACROS_H_
#define TRAINSPOTTER_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TS_STATUS_CONCAT_INNER_(a, b) a##b
#define TS_STATUS_CONCAT_(a, b) TS_STATUS_CONCAT_INNER_(a, b)

// Returns from the current function if `expr` (an absl::Status) is not OK.
#define TS_RETURN_IF_ERROR(expr)                   \
  do {                                             \
    ::absl::Status ts_status_ = (expr);            \
    if (!ts_status_.ok()) return ts_status_;       \
  } while (0)

// `TS_ASSIGN_OR_RETURN(auto x, F());` assigns the value of an absl::StatusOr or returns its status.
#define TS_ASSIGN_OR_RETURN(lhs, expr) \
  TS_ASSIGN_OR_RETURN_IMPL_(TS_STATUS_CONCAT_(ts_statusor_, __LINE__), lhs, expr)
#define TS_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                              \
  if (!statusor.ok()) return statusor.status();        \
  lhs = std::move(statusor).value()

#endif  // TRAINSPOTTER_COMMON_STATUS_MACROS_H_
