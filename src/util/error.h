// Errors: every failure the user can cause is reported as a g4::Error whose message names what was
// wrong (file, offset, field, parameter). Internal invariants use G4_CHECK, which also throws, so a
// server can answer the request that tripped it and keep serving the others.
#pragma once

#include <cstdarg>
#include <stdexcept>
#include <string>

namespace g4 {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// printf-style formatting into a std::string.
std::string StrFormat(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string StrFormatV(const char* fmt, va_list args);

// Throws g4::Error with a printf-style message.
[[noreturn]] void Fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace g4

#define G4_CHECK(cond)                                                                    \
  do {                                                                                    \
    if (!(cond)) ::g4::Fail("internal check failed: %s (%s:%d)", #cond, __FILE__, __LINE__); \
  } while (0)
