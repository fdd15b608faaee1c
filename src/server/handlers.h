// The endpoints' handlers and what they share (internal to the server). A handler parses and
// validates, starts the work and installs a content provider that streams or collects the answer on
// the HTTP thread; errors are thrown as ApiError and written by the server in the API's own shape.
#pragma once

#include <httplib.h>

#include <functional>
#include <memory>
#include <string>

#include "server/backend.h"
#include "server/metrics.h"

namespace g4::server {

// One line of the access log, filled in as the request goes.
struct AccessRecord {
  double start = 0;
  std::string model;
  bool stream = false;
  int choices = 0;
  int prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  double ttft = -1;  // seconds to the first token of the first choice
  int draft_tokens = 0, draft_accepted = 0, target_forwards = 0;  // speculative decoding, all choices
  std::string finish;
  std::string error;
  bool client_gone = false;
};

struct HandlerContext {
  Backend* backend = nullptr;  // null while loading
  Metrics* metrics = nullptr;
  std::string version;
  // Throws 503 while loading or shutting down.
  std::function<Backend&()> ready;
};

using Handler = std::function<void(const HandlerContext&, const httplib::Request&, httplib::Response&,
                                   const std::shared_ptr<AccessRecord>&)>;

// OpenAI (openai_api.cc).
void HandleChatCompletions(const HandlerContext&, const httplib::Request&, httplib::Response&,
                           const std::shared_ptr<AccessRecord>&);
void HandleCompletions(const HandlerContext&, const httplib::Request&, httplib::Response&,
                       const std::shared_ptr<AccessRecord>&);
void HandleModels(const HandlerContext&, const httplib::Request&, httplib::Response&,
                  const std::shared_ptr<AccessRecord>&);
void HandleModel(const HandlerContext&, const httplib::Request&, httplib::Response&,
                 const std::shared_ptr<AccessRecord>&);
// Ollama (ollama_api.cc).
void HandleOllamaChat(const HandlerContext&, const httplib::Request&, httplib::Response&,
                      const std::shared_ptr<AccessRecord>&);
void HandleOllamaGenerate(const HandlerContext&, const httplib::Request&, httplib::Response&,
                          const std::shared_ptr<AccessRecord>&);
void HandleOllamaTags(const HandlerContext&, const httplib::Request&, httplib::Response&,
                      const std::shared_ptr<AccessRecord>&);
void HandleOllamaShow(const HandlerContext&, const httplib::Request&, httplib::Response&,
                      const std::shared_ptr<AccessRecord>&);
void HandleOllamaPs(const HandlerContext&, const httplib::Request&, httplib::Response&,
                    const std::shared_ptr<AccessRecord>&);

// A 404 naming the served model, for a request that asked for another one.
void CheckModel(const Backend& b, const std::string& requested);

// Runs a started job to its end on the HTTP thread: `format` turns each batch of events into bytes
// to send. When nothing has been sent for a quarter of a second, `keepalive` is sent (an SSE comment,
// or a space before JSON), so that a client that went away is noticed: a failed write cancels the
// job, freeing its slots at once. Returns false in that case.
bool Pump(Job& job, httplib::DataSink& sink, const std::string& keepalive,
          const std::function<void(std::vector<ChoiceEvent>&, std::string*)>& format);

// When the overflow policy dropped turns to fit the context: the headers X-Context-Dropped-Turns and
// X-Context-Dropped-Messages (every chat endpoint, streamed or not).
void ContextHeaders(const Started& s, httplib::Response& res);
// The same as JSON ({"turns": N, "messages": M}), or null when nothing was dropped.
Json ContextDropped(const Started& s);

// Fills the access record from a finished choice (the first one's timing).
void Record(AccessRecord* rec, const ChoiceOutput& out, bool first);

}  // namespace g4::server
