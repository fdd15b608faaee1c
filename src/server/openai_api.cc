// OpenAI endpoints: /v1/chat/completions, /v1/completions (streamed as server-sent events ending
// with "data: [DONE]", or one JSON object), /v1/models.
#include "server/handlers.h"
#include "util/timer.h"

namespace g4::server {

namespace {

// One request's choices as they are produced.
struct Answer {
  Started started;
  std::vector<ChoiceOutput> outs;
  std::vector<int> calls_sent;  // per choice: tool calls streamed so far (their delta index)
  std::string id, model;
  int64_t created = 0;
  bool include_usage = false;
  bool echo = false;
};

std::shared_ptr<Answer> MakeAnswer(Started started, const GenRequest& r, const std::string& name, const char* prefix) {
  auto a = std::make_shared<Answer>();
  a->started = std::move(started);
  for (int i = 0; i < a->started.job->n_choices(); ++i) a->outs.emplace_back(a->started.output);
  a->calls_sent.assign(a->outs.size(), 0);
  a->id = RandomId(prefix);
  a->model = r.model.empty() ? name : r.model;
  a->created = UnixSeconds();
  a->include_usage = r.include_usage;
  a->echo = r.echo;
  return a;
}

Json Usage(const Answer& a) {
  int prompt = 0, completion = 0, cached = 0;
  for (size_t i = 0; i < a.outs.size(); ++i) {
    const RequestResult& r = a.outs[i].result();
    completion += static_cast<int>(r.tokens.size());
    if (i % static_cast<size_t>(a.started.n) == 0) {  // a prompt counts once, whatever n
      prompt += r.n_prompt;
      cached += r.n_cached;
    }
  }
  Json usage{{"prompt_tokens", prompt},
             {"completion_tokens", completion},
             {"total_tokens", prompt + completion},
             {"prompt_tokens_details", {{"cached_tokens", cached}}}};
  // An extension: the oldest turns dropped to fit the context (--context-overflow drop-oldest).
  if (Json d = ContextDropped(a.started); !d.is_null()) usage["context_dropped"] = d;
  return usage;
}

// Ends a stream of server-sent events: the usage chunk when stream_options.include_usage asked for
// it (an empty choices list, as OpenAI sends it), then "data: [DONE]".
void EndStream(const Answer& a, const char* object, httplib::DataSink& sink) {
  std::string tail;
  if (a.include_usage) {
    tail += SseEvent(Json{{"id", a.id}, {"object", object}, {"created", a.created},
                          {"model", a.model}, {"choices", Json::array()}, {"usage", Usage(a)}});
  }
  tail += SseDone();
  sink.write(tail.data(), tail.size());
  sink.done();
}

Json CallJson(const MadeCall& c) {
  return Json{{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments.dump()}}}};
}

Json ErrorJson(const std::string& message) {
  return OpenAIErrorBody(ApiError(500, message, "", "server_error"));
}

// Feeds events to the choices; `each(choice, delta, done)` sees what became final.
void Feed(Answer& a, std::vector<ChoiceEvent>& events, Metrics& metrics, AccessRecord* rec,
          const std::function<void(int, const OutputDelta&, bool)>& each) {
  for (ChoiceEvent& ev : events) {
    ChoiceOutput& out = a.outs[static_cast<size_t>(ev.choice)];
    if (ev.done) {
      const OutputDelta d = out.Finish(ev.result);
      metrics.ObserveGeneration(ev.result);
      Record(rec, out, ev.choice == 0);
      each(ev.choice, d, true);
    } else {
      if (ev.token.token >= 0) metrics.CountTokens(1, NowSeconds());
      const OutputDelta d = out.Token(ev.token);
      if (!d.empty()) each(ev.choice, d, false);
    }
  }
}

// ---- chat ----

Json ChatChunk(const Answer& a, int choice, Json delta, Json logprobs, Json finish) {
  Json c = {{"index", choice}, {"delta", std::move(delta)}, {"logprobs", std::move(logprobs)},
            {"finish_reason", std::move(finish)}};
  return Json{{"id", a.id},           {"object", "chat.completion.chunk"}, {"created", a.created},
              {"model", a.model},     {"system_fingerprint", "gemma4.cpp"}, {"choices", Json::array({c})}};
}

void StreamChat(Answer& a, int choice, const OutputDelta& d, bool done, std::string* out) {
  Json delta = Json::object();
  if (!d.reasoning.empty()) delta["reasoning_content"] = d.reasoning;
  if (!d.content.empty()) delta["content"] = d.content;
  if (!d.calls.empty()) {
    Json calls = Json::array();
    for (const MadeCall& c : d.calls) {
      Json j = CallJson(c);
      j["index"] = a.calls_sent[static_cast<size_t>(choice)]++;
      calls.push_back(j);
    }
    delta["tool_calls"] = calls;
  }
  Json lp = d.logprobs.empty() ? Json(nullptr) : Json{{"content", d.logprobs}};
  if (!delta.empty() || !lp.is_null()) *out += SseEvent(ChatChunk(a, choice, delta, lp, nullptr));
  if (done) {
    const ChoiceOutput& o = a.outs[static_cast<size_t>(choice)];
    if (!o.result().error.empty()) *out += SseEvent(ErrorJson(o.result().error));
    *out += SseEvent(ChatChunk(a, choice, Json::object(), nullptr, o.FinishReason()));
  }
}

Json ChatResponse(const Answer& a, bool logprobs) {
  Json choices = Json::array();
  for (size_t i = 0; i < a.outs.size(); ++i) {
    const ChoiceOutput& o = a.outs[i];
    if (!o.result().error.empty()) return ErrorJson(o.result().error);
    Json msg = {{"role", "assistant"}, {"content", o.content()}};
    if (!o.reasoning().empty()) msg["reasoning_content"] = o.reasoning();
    if (!o.calls().empty()) {
      Json calls = Json::array();
      for (const MadeCall& c : o.calls()) calls.push_back(CallJson(c));
      msg["tool_calls"] = calls;
      if (o.content().empty()) msg["content"] = nullptr;
    }
    choices.push_back({{"index", i},
                       {"message", msg},
                       {"logprobs", logprobs ? Json{{"content", o.logprobs()}} : Json(nullptr)},
                       {"finish_reason", o.FinishReason()}});
  }
  return Json{{"id", a.id},           {"object", "chat.completion"}, {"created", a.created},
              {"model", a.model},     {"system_fingerprint", "gemma4.cpp"}, {"choices", choices},
              {"usage", Usage(a)}};
}

// ---- completions ----

// The legacy logprobs object: tokens, token_logprobs, top_logprobs ({token: logprob}), text_offset.
Json LegacyLogprobs(const Json& entries, size_t offset) {
  Json tokens = Json::array(), lps = Json::array(), tops = Json::array(), offsets = Json::array();
  for (const Json& e : entries) {
    tokens.push_back(e["token"]);
    lps.push_back(e["logprob"]);
    Json top = Json::object();
    for (const Json& t : e["top_logprobs"]) top[t["token"].get<std::string>()] = t["logprob"];
    tops.push_back(top);
    offsets.push_back(offset);
    offset += e["token"].get_ref<const std::string&>().size();
  }
  return Json{{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

Json TextChunk(const Answer& a, int choice, const std::string& text, Json logprobs, Json finish) {
  Json c = {{"index", choice}, {"text", text}, {"logprobs", std::move(logprobs)}, {"finish_reason", std::move(finish)}};
  return Json{{"id", a.id}, {"object", "text_completion"}, {"created", a.created}, {"model", a.model},
              {"choices", Json::array({c})}};
}

const std::string& PromptOf(const Answer& a, int choice) {
  return a.started.prompt_texts[static_cast<size_t>(choice / a.started.n)];
}


Json TextResponse(const Answer& a, bool logprobs) {
  Json choices = Json::array();
  for (size_t i = 0; i < a.outs.size(); ++i) {
    const ChoiceOutput& o = a.outs[i];
    if (!o.result().error.empty()) return ErrorJson(o.result().error);
    const std::string prefix = a.echo ? PromptOf(a, static_cast<int>(i)) : "";
    choices.push_back({{"index", i},
                       {"text", prefix + o.content()},
                       {"logprobs", logprobs ? LegacyLogprobs(o.logprobs(), prefix.size()) : Json(nullptr)},
                       {"finish_reason", o.FinishReason()}});
  }
  return Json{{"id", a.id}, {"object", "text_completion"}, {"created", a.created}, {"model", a.model},
              {"system_fingerprint", "gemma4.cpp"}, {"choices", choices}, {"usage", Usage(a)}};
}

// ---- sending an answer ----

// As server-sent events: `head` at once, then what `each(choice, delta, done, out)` renders of each
// delta, then the end of the stream (EndStream with `object`).
using DeltaWriter = std::function<void(int, const OutputDelta&, bool, std::string*)>;
void SendStream(httplib::Response& res, const std::shared_ptr<Answer>& a, Metrics* metrics,
                const std::shared_ptr<AccessRecord>& rec, const char* object, std::string head, DeltaWriter each) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream", [a, metrics, rec, object, head = std::move(head), each = std::move(each)](size_t, httplib::DataSink& sink) {
        if (!head.empty() && !sink.write(head.data(), head.size())) {
          a->started.job->Cancel();
          rec->client_gone = true;
          return false;
        }
        const bool ok = Pump(*a->started.job, sink, SseKeepAlive(), [&](std::vector<ChoiceEvent>& evs, std::string* out) {
          Feed(*a, evs, *metrics, rec.get(), [&](int c, const OutputDelta& d, bool done) { each(c, d, done, out); });
        });
        if (!ok) {
          rec->client_gone = true;
          return false;
        }
        EndStream(*a, object, sink);
        return true;
      });
}

// As one JSON object, body(answer), once every choice is done (a space now and then meanwhile keeps
// the connection alive).
void SendWhole(httplib::Response& res, const std::shared_ptr<Answer>& a, Metrics* metrics,
               const std::shared_ptr<AccessRecord>& rec, std::function<Json(const Answer&)> body) {
  res.set_chunked_content_provider("application/json", [a, metrics, rec, body = std::move(body)](size_t, httplib::DataSink& sink) {
    const bool ok = Pump(*a->started.job, sink, " ", [&](std::vector<ChoiceEvent>& evs, std::string*) {
      Feed(*a, evs, *metrics, rec.get(), [](int, const OutputDelta&, bool) {});
    });
    if (!ok) {
      rec->client_gone = true;
      return false;
    }
    const std::string text = body(*a).dump(-1, ' ', false, Json::error_handler_t::replace);
    sink.write(text.data(), text.size());
    sink.done();
    return true;
  });
}

}  // namespace

void HandleChatCompletions(const HandlerContext& ctx, const httplib::Request& req, httplib::Response& res,
                           const std::shared_ptr<AccessRecord>& rec) {
  Backend& b = ctx.ready();
  const GenRequest r = ParseOpenAIChat(ParseBody(req.body), b.options().limits);
  CheckModel(b, r.model);
  rec->model = b.options().name;
  rec->stream = r.stream;
  rec->choices = r.n;
  auto a = MakeAnswer(b.Start(r), r, b.options().name, "chatcmpl-");
  ContextHeaders(a->started, res);
  if (!r.stream) {
    const bool logprobs = r.logprobs;
    return SendWhole(res, a, ctx.metrics, rec, [logprobs](const Answer& ans) { return ChatResponse(ans, logprobs); });
  }
  std::string head;  // each choice opens with the assistant's role
  for (size_t i = 0; i < a->outs.size(); ++i) {
    head += SseEvent(ChatChunk(*a, static_cast<int>(i), {{"role", "assistant"}, {"content", ""}}, nullptr, nullptr));
  }
  Answer* ap = a.get();
  SendStream(res, a, ctx.metrics, rec, "chat.completion.chunk", std::move(head),
             [ap](int c, const OutputDelta& d, bool done, std::string* out) { StreamChat(*ap, c, d, done, out); });
}

void HandleCompletions(const HandlerContext& ctx, const httplib::Request& req, httplib::Response& res,
                       const std::shared_ptr<AccessRecord>& rec) {
  Backend& b = ctx.ready();
  const GenRequest r = ParseOpenAICompletion(ParseBody(req.body), b.options().limits);
  CheckModel(b, r.model);
  rec->model = b.options().name;
  rec->stream = r.stream;
  rec->choices = r.n * static_cast<int>(r.prompts.size());
  auto a = MakeAnswer(b.Start(r), r, b.options().name, "cmpl-");
  const bool logprobs = r.logprobs;
  if (!r.stream) return SendWhole(res, a, ctx.metrics, rec, [logprobs](const Answer& ans) { return TextResponse(ans, logprobs); });
  // Per choice: bytes of text sent so far (the legacy logprobs' text_offset), the echoed prompt first.
  auto offset = std::make_shared<std::vector<size_t>>(a->outs.size(), 0);
  std::string head;
  for (size_t i = 0; i < a->outs.size() && a->echo; ++i) {
    const std::string& p = PromptOf(*a, static_cast<int>(i));
    head += SseEvent(TextChunk(*a, static_cast<int>(i), p, nullptr, nullptr));
    (*offset)[i] = p.size();
  }
  Answer* ap = a.get();
  SendStream(res, a, ctx.metrics, rec, "text_completion", std::move(head),
             [ap, offset, logprobs](int c, const OutputDelta& d, bool done, std::string* out) {
               const auto ci = static_cast<size_t>(c);
               if (!d.content.empty() || !d.logprobs.empty()) {
                 const Json lp = logprobs ? LegacyLogprobs(d.logprobs, (*offset)[ci]) : Json(nullptr);
                 *out += SseEvent(TextChunk(*ap, c, d.content, lp, nullptr));
                 (*offset)[ci] += d.content.size();
               }
               if (done) {
                 const ChoiceOutput& o = ap->outs[ci];
                 if (!o.result().error.empty()) *out += SseEvent(ErrorJson(o.result().error));
                 *out += SseEvent(TextChunk(*ap, c, "", nullptr, o.FinishReason()));
               }
             });
}

void HandleModels(const HandlerContext& ctx, const httplib::Request&, httplib::Response& res,
                  const std::shared_ptr<AccessRecord>&) {
  Backend& b = ctx.ready();
  const Json model = {{"id", b.options().name}, {"object", "model"}, {"created", b.options().info.modified},
                      {"owned_by", "gemma4.cpp"}};
  res.set_content(Json{{"object", "list"}, {"data", Json::array({model})}}.dump(), "application/json");
}

void HandleModel(const HandlerContext& ctx, const httplib::Request& req, httplib::Response& res,
                 const std::shared_ptr<AccessRecord>&) {
  Backend& b = ctx.ready();
  const std::string id = req.matches.size() > 1 ? std::string(req.matches[1]) : "";
  if (id.empty() || !b.Serves(id)) CheckModel(b, id.empty() ? "?" : id);
  res.set_content(Json{{"id", b.options().name}, {"object", "model"}, {"created", b.options().info.modified},
                       {"owned_by", "gemma4.cpp"}}
                      .dump(),
                  "application/json");
}

}  // namespace g4::server
