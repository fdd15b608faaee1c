#pragma once

#include <chrono>

namespace g4 {

// Seconds since an arbitrary fixed point (monotonic).
inline double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace g4
