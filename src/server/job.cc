#include "server/job.h"

#include <chrono>

#include "server/http_util.h"

namespace g4::server {

Job::~Job() {
  if (!finished_) Cancel();
}

void Job::Submit(std::vector<RequestSpec> specs, const std::string& prompt_field) {
  for (size_t i = 0; i < specs.size(); ++i) {
    RequestSpec& spec = specs[i];
    const int choice = static_cast<int>(i);
    std::shared_ptr<Channel> ch = ch_;  // the callbacks may outlive the Job
    spec.on_token = [ch, choice](const TokenEvent& e) {
      {
        std::lock_guard<std::mutex> lock(ch->mu);
        ChoiceEvent ev;
        ev.choice = choice;
        ev.token = e;
        ch->events.push_back(std::move(ev));
      }
      ch->cv.notify_all();
      return !ch->cancelled.load();
    };
    spec.on_done = [ch, choice](const RequestResult& r) {
      {
        std::lock_guard<std::mutex> lock(ch->mu);
        ChoiceEvent ev;
        ev.choice = choice;
        ev.done = true;
        ev.result = r;
        ch->events.push_back(std::move(ev));
        --ch->running;
      }
      ch->cv.notify_all();
    };
    {
      std::lock_guard<std::mutex> lock(ch_->mu);
      ++ch_->running;
    }
    try {
      ids_.push_back(scheduler_.Submit(std::move(spec)));
    } catch (const Error& e) {
      {
        std::lock_guard<std::mutex> lock(ch_->mu);
        --ch_->running;
      }
      Cancel();
      const std::string msg = e.what();
      if (dynamic_cast<const QueueFullError*>(&e)) {
        throw ApiError(429, msg + "; try again shortly", "", "", "queue_full");
      }
      if (msg.find("shutting down") != std::string::npos) throw ApiError(503, msg);
      throw ApiError(400, msg, prompt_field, "", "context_length_exceeded");
    }
  }
}

bool Job::Next(std::vector<ChoiceEvent>* out, double timeout_s) {
  std::unique_lock<std::mutex> lock(ch_->mu);
  ch_->cv.wait_for(lock, std::chrono::duration<double>(timeout_s),
                   [&] { return !ch_->events.empty() || ch_->running == 0; });
  while (!ch_->events.empty()) {
    out->push_back(std::move(ch_->events.front()));
    ch_->events.pop_front();
  }
  finished_ = ch_->running == 0;
  return !finished_;
}

void Job::Cancel() {
  ch_->cancelled = true;
  for (uint64_t id : ids_) scheduler_.Cancel(id);
}

}  // namespace g4::server
