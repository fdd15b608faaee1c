// gemma4 serve: an HTTP server (cpp-httplib) in front of one model, shared by many clients.
//
//   OpenAI:  POST /v1/chat/completions, POST /v1/completions, GET /v1/models[/ID]
//   Ollama:  POST /api/chat, POST /api/generate, GET /api/tags, POST /api/show, GET /api/ps,
//            GET /api/version
//   Ops:     GET /health (200 once the model is loaded), GET /metrics (Prometheus)
//   Web:     GET / (a chat page built into the binary)
//
// The server answers while the model loads (/health says so), so a supervisor can watch it come up.
// Every request is logged as one JSON line on stderr. Shutdown() is graceful: new requests are
// refused with 503, running ones finish (or are ended cleanly after a timeout), responses are
// written out, then the listener stops.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "server/backend.h"
#include "server/metrics.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace g4::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;              // 0: any free port (see Server::port())
  std::string api_key;          // non-empty: every API request needs "Authorization: Bearer KEY"
  size_t max_body = 32 << 20;   // request body limit (images travel as base64)
  int http_threads = 0;         // 0: enough for every slot and queued request, plus a few
  double shutdown_timeout = 30; // seconds running requests get to finish on shutdown
  bool access_log = true;       // one JSON line per request on stderr
  std::string version = "0";
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts answering on a background thread. Returns the port. Throws g4::Error when the
  // address cannot be bound.
  int Start(int slots_hint, int queue_hint);
  // The model is loaded: API requests are served from now on.
  void SetBackend(std::unique_ptr<Backend> backend);
  // Graceful stop (see above). Safe to call from any thread but a request handler; idempotent.
  void Shutdown();

  int port() const { return port_; }
  Metrics& metrics() { return metrics_; }
  Backend* backend() { return backend_.load(); }

 private:
  struct Impl;
  void Routes();
  void Log(const std::string& method, const std::string& path, int status, const struct AccessRecord& rec) const;

  ServerOptions opt_;
  std::unique_ptr<httplib::Server> http_;
  Metrics metrics_;
  std::unique_ptr<Backend> owned_;
  std::atomic<Backend*> backend_{nullptr};
  std::atomic<bool> accepting_{true};
  std::atomic<bool> stopped_{false};
  std::thread listener_;
  int port_ = 0;
  // Requests being answered (a streamed response counts until it is written out).
  std::mutex inflight_mu_;
  std::condition_variable inflight_cv_;
  int inflight_ = 0;
};

}  // namespace g4::server
