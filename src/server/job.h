// One HTTP request's generations on the scheduler (n choices, or several prompts times n), and the
// channel that carries their tokens from the scheduler's thread to the request's HTTP thread. The
// scheduler's callbacks only append to the channel under a mutex and return; everything else
// (parsing, formatting, writing) happens on the HTTP thread. Destroying a Job that has not finished
// cancels it, so a handler that stops early never leaves work running.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/scheduler.h"

namespace g4::server {

struct ChoiceEvent {
  int choice = 0;
  bool done = false;       // `result` is set; no more events for this choice
  TokenEvent token;
  RequestResult result;
};

class Job {
 public:
  explicit Job(Scheduler& scheduler) : scheduler_(scheduler), ch_(std::make_shared<Channel>()) {}
  ~Job();
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  // Submits every spec; spec i becomes choice i (its callbacks are replaced). When one cannot be
  // submitted, the ones already queued are cancelled and an ApiError is thrown: 429 for a full
  // queue, 503 while shutting down, 400 for a prompt that does not fit.
  void Submit(std::vector<RequestSpec> specs, const std::string& prompt_field);

  // Waits up to timeout_s for events and appends them to *out. Returns whether more may come
  // (false once every choice has finished and all its events are in *out).
  bool Next(std::vector<ChoiceEvent>* out, double timeout_s);

  // The client went away: stop every choice now (their slots are freed at the next step).
  void Cancel();

  int n_choices() const { return static_cast<int>(ids_.size()); }

 private:
  struct Channel {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<ChoiceEvent> events;
    int running = 0;
    std::atomic<bool> cancelled{false};
  };
  Scheduler& scheduler_;
  std::shared_ptr<Channel> ch_;
  std::vector<uint64_t> ids_;
  bool finished_ = false;
};

}  // namespace g4::server
