// Ollama endpoints: /api/chat and /api/generate (newline-delimited JSON, streamed unless
// "stream": false), /api/tags, /api/show, /api/ps. /api/version is answered by the server.
#include <cmath>

#include "server/handlers.h"
#include "util/timer.h"

namespace g4::server {

namespace {

int64_t Nanos(double seconds) { return static_cast<int64_t>(std::llround(std::max(0.0, seconds) * 1e9)); }

std::string ParameterSize(int64_t n) {
  char buf[32];
  if (n >= 1000000000) {
    std::snprintf(buf, sizeof(buf), "%.1fB", n / 1e9);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1fM", n / 1e6);
  }
  return buf;
}

Json Details(const Backend& b) {
  const ModelInfo& m = b.options().info;
  return Json{{"parent_model", ""},       {"format", "gguf"},
              {"family", m.family},       {"families", Json::array({m.family})},
              {"parameter_size", ParameterSize(m.n_params)}, {"quantization_level", m.quantization}};
}

// The statistics Ollama puts on the last message.
void AddStats(Json* j, const RequestResult& r) {
  (*j)["total_duration"] = Nanos(r.t_total);
  (*j)["load_duration"] = 0;
  (*j)["prompt_eval_count"] = r.n_prompt;
  (*j)["prompt_eval_duration"] = Nanos(r.t_first_token - r.t_queue);
  (*j)["eval_count"] = static_cast<int64_t>(r.tokens.size());
  (*j)["eval_duration"] = Nanos(r.t_total - r.t_first_token);
}

std::string DoneReason(const ChoiceOutput& o) {
  const std::string f = o.FinishReason();
  return f == "tool_calls" ? "stop" : f;
}

Json OllamaCalls(const std::vector<MadeCall>& calls) {
  Json out = Json::array();
  for (const MadeCall& c : calls) out.push_back({{"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  return out;
}

struct Reply {
  Started started;
  std::unique_ptr<ChoiceOutput> out;
  std::string model;
  bool chat = true;
};

// Ollama answers requests without messages or prompt by loading the model.
void LoadOnly(httplib::Response& res, const std::string& model, bool chat) {
  Json j = {{"model", model}, {"created_at", Rfc3339Now()}};
  if (chat) {
    j["message"] = {{"role", "assistant"}, {"content", ""}};
  } else {
    j["response"] = "";
  }
  j["done"] = true;
  j["done_reason"] = "load";
  res.set_content(j.dump(), "application/json");
}

// A streamed piece: the message delta (chat) or the response delta (generate).
Json Piece(const Reply& r, const OutputDelta& d) {
  Json j = {{"model", r.model}, {"created_at", Rfc3339Now()}};
  if (r.chat) {
    Json msg = {{"role", "assistant"}, {"content", d.content}};
    if (!d.reasoning.empty()) msg["thinking"] = d.reasoning;
    if (!d.calls.empty()) msg["tool_calls"] = OllamaCalls(d.calls);
    j["message"] = msg;
  } else {
    j["response"] = d.content;
    if (!d.reasoning.empty()) j["thinking"] = d.reasoning;
  }
  j["done"] = false;
  return j;
}

// The last object: done, with the statistics (and, non-streamed, the whole answer).
Json Final(const Reply& r, bool whole) {
  const ChoiceOutput& o = *r.out;
  Json j = {{"model", r.model}, {"created_at", Rfc3339Now()}};
  if (r.chat) {
    Json msg = {{"role", "assistant"}, {"content", whole ? o.content() : ""}};
    if (whole && !o.reasoning().empty()) msg["thinking"] = o.reasoning();
    if (whole && !o.calls().empty()) msg["tool_calls"] = OllamaCalls(o.calls());
    j["message"] = msg;
  } else {
    j["response"] = whole ? o.content() : "";
    if (whole && !o.reasoning().empty()) j["thinking"] = o.reasoning();
  }
  j["done"] = true;
  j["done_reason"] = DoneReason(o);
  if (!r.chat) {
    // The exchange's tokens, to continue it with the next request's "context".
    std::vector<int32_t> ctx = r.started.prompt_tokens.empty() ? std::vector<int32_t>{} : r.started.prompt_tokens[0];
    ctx.insert(ctx.end(), o.result().tokens.begin(), o.result().tokens.end());
    j["context"] = ctx;
  }
  AddStats(&j, o.result());
  return j;
}

void Generate(const HandlerContext& ctx, const GenRequest& r, httplib::Response& res,
              const std::shared_ptr<AccessRecord>& rec) {
  Backend& b = ctx.ready();
  CheckModel(b, r.model);
  const std::string model = r.model.empty() ? b.options().name : r.model;
  rec->model = b.options().name;
  rec->stream = r.stream;
  rec->choices = 1;
  if (r.load_only) {
    LoadOnly(res, model, r.api == GenRequest::Api::kOllamaChat);
    return;
  }
  auto reply = std::make_shared<Reply>();
  reply->started = b.Start(r);
  ContextHeaders(reply->started, res);
  reply->out = std::make_unique<ChoiceOutput>(reply->started.output);
  reply->model = model;
  reply->chat = r.api == GenRequest::Api::kOllamaChat;
  Metrics* metrics = ctx.metrics;
  const bool stream = r.stream;
  res.set_chunked_content_provider(
      stream ? "application/x-ndjson" : "application/json", [reply, metrics, rec, stream](size_t, httplib::DataSink& sink) {
        const bool ok = Pump(*reply->started.job, sink, " ", [&](std::vector<ChoiceEvent>& evs, std::string* out) {
          for (ChoiceEvent& ev : evs) {
            OutputDelta d;
            if (ev.done) {
              d = reply->out->Finish(ev.result);
              metrics->ObserveGeneration(ev.result);
              Record(rec.get(), *reply->out, true);
            } else {
              if (ev.token.token >= 0) metrics->CountTokens(1, NowSeconds());
              d = reply->out->Token(ev.token);
            }
            if (stream && (!d.content.empty() || !d.reasoning.empty() || !d.calls.empty())) {
              *out += NdjsonLine(Piece(*reply, d));
            }
          }
        });
        if (!ok) {
          rec->client_gone = true;
          return false;
        }
        const RequestResult& result = reply->out->result();
        std::string tail;
        if (!result.error.empty()) {
          tail = NdjsonLine(Json{{"error", result.error}});
        } else {
          tail = stream ? NdjsonLine(Final(*reply, false)) : Final(*reply, true).dump(-1, ' ', false, Json::error_handler_t::replace);
        }
        sink.write(tail.data(), tail.size());
        sink.done();
        return true;
      });
}

}  // namespace

void HandleOllamaChat(const HandlerContext& ctx, const httplib::Request& req, httplib::Response& res,
                      const std::shared_ptr<AccessRecord>& rec) {
  Backend& b = ctx.ready();
  Generate(ctx, ParseOllamaChat(ParseBody(req.body), b.options().limits), res, rec);
}

void HandleOllamaGenerate(const HandlerContext& ctx, const httplib::Request& req, httplib::Response& res,
                          const std::shared_ptr<AccessRecord>& rec) {
  Backend& b = ctx.ready();
  Generate(ctx, ParseOllamaGenerate(ParseBody(req.body), b.options().limits), res, rec);
}

void HandleOllamaTags(const HandlerContext& ctx, const httplib::Request&, httplib::Response& res,
                      const std::shared_ptr<AccessRecord>&) {
  Backend& b = ctx.ready();
  const ModelInfo& m = b.options().info;
  const Json model = {{"name", b.options().name},
                      {"model", b.options().name},
                      {"modified_at", Rfc3339Now()},
                      {"size", m.file_size},
                      {"digest", ""},
                      {"details", Details(b)}};
  res.set_content(Json{{"models", Json::array({model})}}.dump(), "application/json");
}

void HandleOllamaPs(const HandlerContext& ctx, const httplib::Request&, httplib::Response& res,
                    const std::shared_ptr<AccessRecord>&) {
  Backend& b = ctx.ready();
  const Json model = {{"name", b.options().name},  {"model", b.options().name}, {"size", b.options().info.file_size},
                      {"digest", ""},              {"details", Details(b)},     {"expires_at", "9999-12-31T23:59:59Z"},
                      {"size_vram", 0}};
  res.set_content(Json{{"models", Json::array({model})}}.dump(), "application/json");
}

void HandleOllamaShow(const HandlerContext& ctx, const httplib::Request& req, httplib::Response& res,
                      const std::shared_ptr<AccessRecord>&) {
  Backend& b = ctx.ready();
  const Json body = ParseBody(req.body);
  std::string name = field::String(body, "model", "model").value_or("");
  if (name.empty()) name = field::String(body, "name", "name").value_or("");
  if (name.empty()) BadField("model", "missing");
  CheckModel(b, name);
  const ModelConfig& c = b.model().config();
  const ModelInfo& m = b.options().info;
  Json caps = Json::array({"completion"});
  if (b.setup().format != chat::ChatFormat::kGemma3) {
    caps.push_back("tools");
    caps.push_back("thinking");
  }
  if (b.has_media()) caps.push_back("vision");
  Json info = {{"general.architecture", m.family},
               {"general.parameter_count", m.n_params},
               {m.family + ".context_length", b.scheduler().options().n_ctx},
               {m.family + ".embedding_length", c.n_embd},
               {m.family + ".vocab_size", c.n_vocab}};
  res.set_content(Json{{"modelfile", ""},
                       {"parameters", ""},
                       {"template", std::string(chat::ChatFormatName(b.setup().format))},
                       {"details", Details(b)},
                       {"model_info", info},
                       {"capabilities", caps},
                       {"modified_at", Rfc3339Now()}}
                      .dump(),
                  "application/json");
}

}  // namespace g4::server
