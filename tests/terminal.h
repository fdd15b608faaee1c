// A terminal for tests of interactive commands: one command running in a tmux session of a fixed
// size, driven by keys and read back from the screen.
#pragma once

#include <chrono>
#include <string>
#include <thread>
#include <unistd.h>

#include "testutil.h"

namespace g4::testing {

inline bool HaveTmux() { return RunCommand("command -v tmux >/dev/null 2>&1").status == 0; }

// A tmux session running one command in a fixed-size window.
class Terminal {
 public:
  explicit Terminal(const std::string& cmd) : name_("g4run" + std::to_string(::getpid())) {
    RunCommand("tmux kill-session -t " + name_ + " 2>/dev/null");
    const std::string full = "tmux new-session -d -s " + name_ + " -x 160 -y 50 \"" + cmd + "; echo EXIT=\\$?; sleep 120\"";
    ok_ = RunCommand(full).status == 0;
  }
  ~Terminal() { RunCommand("tmux kill-session -t " + name_ + " 2>/dev/null"); }
  bool ok() const { return ok_; }
  void Keys(const std::string& keys) { RunCommand("tmux send-keys -t " + name_ + " " + keys); }
  void Line(const std::string& text) { Keys("-l '" + text + "'"), Keys("Enter"); }
  std::string Screen() { return RunCommand("tmux capture-pane -p -S -200 -t " + name_).out; }
  // Waits until the screen contains `needle` `times` times (or the timeout passes).
  bool WaitFor(const std::string& needle, int times = 1, double seconds = 30) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      const std::string s = Screen();
      int n = 0;
      for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
      if (n >= times) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

 private:
  std::string name_;
  bool ok_ = false;
};

}  // namespace g4::testing
