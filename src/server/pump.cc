#include "server/handlers.h"
#include "util/timer.h"

namespace g4::server {

bool Pump(Job& job, httplib::DataSink& sink, const std::string& keepalive,
          const std::function<void(std::vector<ChoiceEvent>&, std::string*)>& format) {
  constexpr double kKeepAlive = 0.25;
  double last_write = NowSeconds();
  std::vector<ChoiceEvent> events;
  std::string out;
  for (;;) {
    events.clear();
    out.clear();
    const bool more = job.Next(&events, kKeepAlive);
    if (!events.empty()) format(events, &out);
    if (out.empty() && more && NowSeconds() - last_write >= kKeepAlive) out = keepalive;
    if (!out.empty()) {
      if (!sink.write(out.data(), out.size())) {
        job.Cancel();
        return false;
      }
      last_write = NowSeconds();
    }
    if (!more) return true;
  }
}

void Record(AccessRecord* rec, const ChoiceOutput& out, bool first) {
  const RequestResult& r = out.result();
  rec->completion_tokens += static_cast<int>(r.tokens.size());
  rec->draft_tokens += r.n_drafted;
  rec->draft_accepted += r.n_draft_accepted;
  rec->target_forwards += r.n_target_forwards;
  if (first) {
    rec->prompt_tokens = r.n_prompt;
    rec->cached_tokens = r.n_cached;
    if (!r.tokens.empty()) rec->ttft = r.t_first_token;
    rec->finish = out.FinishReason();
  }
  if (!r.error.empty() && rec->error.empty()) rec->error = r.error;
}

void CheckModel(const Backend& b, const std::string& requested) {
  if (b.Serves(requested)) return;
  throw ApiError(404, "the model '" + requested + "' does not exist; this server serves: " + b.options().name,
                 "model", "", "model_not_found");
}

void ContextHeaders(const Started& s, httplib::Response& res) {
  if (s.context_fit.dropped_turns == 0) return;
  res.set_header("X-Context-Dropped-Turns", std::to_string(s.context_fit.dropped_turns));
  res.set_header("X-Context-Dropped-Messages", std::to_string(s.context_fit.dropped_messages));
}

Json ContextDropped(const Started& s) {
  if (s.context_fit.dropped_turns == 0) return nullptr;
  return Json{{"turns", s.context_fit.dropped_turns}, {"messages", s.context_fit.dropped_messages}};
}

}  // namespace g4::server
