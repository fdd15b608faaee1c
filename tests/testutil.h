// Helpers shared by the tests: where ../shared is, and small file readers.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace g4::testing {

// The shared reference data folder: $GEMMA4_SHARED_DIR, else ../shared beside the checkout.
std::optional<std::string> SharedDir();

// Path of a file under the shared folder, or "" when the folder is absent.
std::string SharedPath(const std::string& rel);

// A fresh temporary directory for one test (removed at exit).
std::string TempDir();

std::vector<float> ReadF32(const std::string& path);
std::string ReadText(const std::string& path);
void WriteBytes(const std::string& path, const std::string& bytes);

// Path of the built CLI binary.
std::string CliPath();

// Runs a shell command, returns its exit status and captures stdout (and stderr if asked).
struct CommandResult {
  int status = -1;
  std::string out;
};
CommandResult RunCommand(const std::string& cmd);

}  // namespace g4::testing

// Skips the current test with a clear message when ../shared is not present.
#define G4_REQUIRE_SHARED()                                                                       \
  do {                                                                                            \
    if (!::g4::testing::SharedDir()) {                                                            \
      GTEST_SKIP() << "shared reference data not found: set GEMMA4_SHARED_DIR or place shared/ " \
                      "beside the checkout";                                                      \
    }                                                                                             \
  } while (0)
