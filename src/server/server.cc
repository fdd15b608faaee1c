#include "server/server.h"

#include <httplib.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <future>

#include "server/handlers.h"
#include "server/web_assets.h"
#include "util/timer.h"

namespace g4::server {

namespace {

void WriteLine(const std::string& line) {
  // One write per line, so lines of concurrent requests never interleave.
  std::string l = line;
  l += '\n';
  std::fwrite(l.data(), 1, l.size(), stderr);
  std::fflush(stderr);
}

bool IsOllamaPath(const std::string& path) { return path.rfind("/api/", 0) == 0; }

void WriteError(const httplib::Request& req, httplib::Response& res, const ApiError& e) {
  res.status = e.status();
  const Json body = IsOllamaPath(req.path) ? OllamaErrorBody(e) : OpenAIErrorBody(e);
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
  if (e.status() == 401) res.set_header("WWW-Authenticate", "Bearer");
}

// A browser on another site may not drive this server: its requests carry an Origin whose host
// differs from the one they were sent to. (Programs do not send Origin.)
void CheckOrigin(const httplib::Request& req) {
  if (!req.has_header("Origin")) return;
  std::string origin = req.get_header_value("Origin");
  const size_t scheme = origin.find("://");
  if (scheme != std::string::npos) origin = origin.substr(scheme + 3);
  if (origin != req.get_header_value("Host")) {
    throw ApiError(403, "cross-origin requests are not allowed (Origin " + req.get_header_value("Origin") + ")");
  }
}

}  // namespace

Server::Server(ServerOptions options) : opt_(std::move(options)), http_(std::make_unique<httplib::Server>()) {}

Server::~Server() { Shutdown(); }

void Server::Log(const std::string& method, const std::string& path, int status, const AccessRecord& rec) const {
  if (!opt_.access_log) return;
  Json j = {{"time", Rfc3339Now()},
            {"method", method},
            {"path", path},
            {"status", status},
            {"ms", std::llround((NowSeconds() - rec.start) * 1000)}};
  if (!rec.model.empty()) {
    j["model"] = rec.model;
    j["stream"] = rec.stream;
    j["choices"] = rec.choices;
    j["prompt_tokens"] = rec.prompt_tokens;
    j["cached_tokens"] = rec.cached_tokens;
    j["completion_tokens"] = rec.completion_tokens;
    if (rec.ttft >= 0) j["ttft_ms"] = std::llround(rec.ttft * 1000);
    if (rec.draft_tokens > 0) {
      // Speculative decoding: drafts proposed and accepted, and tokens per target forward pass
      // (the first token comes from the prompt's pass and is not counted).
      j["draft_tokens"] = rec.draft_tokens;
      j["draft_accepted"] = rec.draft_accepted;
      if (rec.target_forwards > 0) {
        j["tokens_per_forward"] =
            std::round(100.0 * (rec.target_forwards + rec.draft_accepted) / rec.target_forwards) / 100.0;
      }
    }
    if (!rec.finish.empty()) j["finish"] = rec.finish;
  }
  if (rec.client_gone) j["client_gone"] = true;
  if (!rec.error.empty()) j["error"] = rec.error;
  WriteLine(j.dump(-1, ' ', false, Json::error_handler_t::replace));
}

int Server::Start(int slots_hint, int queue_hint) {
  // Each streamed answer holds a thread for its duration: enough for every slot and queued request,
  // plus a few for /health, /metrics and requests that are refused at once.
  const int threads = opt_.http_threads > 0 ? opt_.http_threads : slots_hint + queue_hint + 8;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http_->set_payload_max_length(opt_.max_body);
  http_->set_read_timeout(30);
  http_->set_write_timeout(30);
  http_->set_keep_alive_max_count(1000);
  http_->set_tcp_nodelay(true);
  Routes();
  port_ = opt_.port == 0 ? http_->bind_to_any_port(opt_.host) : (http_->bind_to_port(opt_.host, opt_.port) ? opt_.port : -1);
  if (port_ <= 0) Fail("cannot listen on %s:%d (address in use, or not an address of this machine)", opt_.host.c_str(), opt_.port);
  listener_ = std::thread([this] { http_->listen_after_bind(); });
  WriteLine(Json{{"time", Rfc3339Now()}, {"event", "listening"}, {"host", opt_.host}, {"port", port_}}.dump());
  return port_;
}

void Server::SetBackend(std::unique_ptr<Backend> backend) {
  owned_ = std::move(backend);
  backend_ = owned_.get();
  WriteLine(Json{{"time", Rfc3339Now()}, {"event", "ready"}, {"model", owned_->options().name}}.dump());
}

void Server::Routes() {
  // Wraps a handler: origin and key checks, errors in the API's shape, metrics, the access log,
  // and the in-flight count that shutdown waits for (a streamed answer counts until written out).
  auto route = [this](Handler h, bool needs_key) {
    return [this, h, needs_key](const httplib::Request& req, httplib::Response& res) {
      auto rec = std::make_shared<AccessRecord>();
      rec->start = NowSeconds();
      {
        std::lock_guard<std::mutex> lock(inflight_mu_);
        ++inflight_;
      }
      auto done = [this] {
        std::lock_guard<std::mutex> lock(inflight_mu_);
        --inflight_;
        inflight_cv_.notify_all();
      };
      try {
        CheckOrigin(req);
        if (needs_key && !opt_.api_key.empty()) {
          std::string key;
          const std::string auth = req.get_header_value("Authorization");
          if (auth.rfind("Bearer ", 0) == 0) key = auth.substr(7);
          if (key.empty()) key = req.get_header_value("X-Api-Key");
          if (!ConstantTimeEquals(key, opt_.api_key)) {
            throw ApiError(401, "a valid API key is needed: send 'Authorization: Bearer KEY'", "", "",
                           "invalid_api_key");
          }
        }
        HandlerContext ctx;
        ctx.backend = backend_.load();
        ctx.metrics = &metrics_;
        ctx.version = opt_.version;
        ctx.ready = [this]() -> Backend& {
          if (!accepting_) throw ApiError(503, "the server is shutting down");
          Backend* b = backend_.load();
          if (!b) throw ApiError(503, "the model is still loading; try again shortly");
          return *b;
        };
        h(ctx, req, res, rec);
        if (res.status < 0) res.status = 200;
      } catch (const ApiError& e) {
        WriteError(req, res, e);
        rec->error = e.what();
        if (e.status() == 429) {
          metrics_.CountQueueFull();
          Backend* b = backend_.load();
          const int wait = b ? 1 + b->scheduler().Stats().queued / std::max(1, b->scheduler().options().n_slots) : 1;
          res.set_header("Retry-After", std::to_string(wait));
        } else if (e.status() == 503) {
          res.set_header("Retry-After", "1");
        }
      } catch (const std::bad_alloc&) {
        WriteError(req, res, ApiError(500, "out of memory"));
        rec->error = "out of memory";
      } catch (const std::exception& e) {
        WriteError(req, res, ApiError(500, std::string("internal error: ") + e.what()));
        rec->error = e.what();
      }
      metrics_.CountRequest(req.path, res.status);
      if (res.content_provider_) {
        auto inner = res.content_provider_resource_releaser_;
        res.content_provider_resource_releaser_ = [this, inner, rec, done, method = req.method, path = req.path,
                                                   status = res.status](bool ok) {
          if (inner) inner(ok);
          if (!ok) rec->client_gone = true;
          Log(method, path, status, *rec);
          done();
        };
      } else {
        Log(req.method, req.path, res.status, *rec);
        done();
      }
    };
  };

  auto json = [](httplib::Response& res, const Json& j) { res.set_content(j.dump(), "application/json"); };

  http_->Get("/health", route(
                            [this, json](const HandlerContext& ctx, const httplib::Request&, httplib::Response& res,
                                         const std::shared_ptr<AccessRecord>&) {
                              if (!accepting_) {
                                res.status = 503;
                                json(res, {{"status", "shutting down"}});
                              } else if (!ctx.backend) {
                                res.status = 503;
                                json(res, {{"status", "loading"}});
                              } else {
                                const SchedulerStats s = ctx.backend->scheduler().Stats();
                                json(res, {{"status", "ok"},
                                           {"model", ctx.backend->options().name},
                                           {"slots", s.n_slots},
                                           {"slots_active", s.active},
                                           {"queued", s.queued}});
                              }
                            },
                            /*needs_key=*/false));
  http_->Get("/metrics", route(
                             [](const HandlerContext& ctx, const httplib::Request&, httplib::Response& res,
                                const std::shared_ptr<AccessRecord>&) {
                               SchedulerStats s;
                               if (ctx.backend) s = ctx.backend->scheduler().Stats();
                               res.set_content(ctx.metrics->Render(ctx.backend ? &s : nullptr, NowSeconds()),
                                               "text/plain; version=0.0.4; charset=utf-8");
                             },
                             true));
  http_->Get("/api/version", route(
                                 [json](const HandlerContext& ctx, const httplib::Request&, httplib::Response& res,
                                        const std::shared_ptr<AccessRecord>&) { json(res, {{"version", ctx.version}}); },
                                 false));
  http_->Post("/v1/chat/completions", route(HandleChatCompletions, true));
  http_->Post("/v1/completions", route(HandleCompletions, true));
  http_->Get("/v1/models", route(HandleModels, true));
  http_->Get(R"(/v1/models/(.+))", route(HandleModel, true));
  http_->Post("/api/chat", route(HandleOllamaChat, true));
  http_->Post("/api/generate", route(HandleOllamaGenerate, true));
  http_->Get("/api/tags", route(HandleOllamaTags, true));
  http_->Post("/api/show", route(HandleOllamaShow, true));
  http_->Get("/api/ps", route(HandleOllamaPs, true));
  for (const WebAsset& a : WebAssets()) {
    http_->Get(a.path, route(
                           [&a](const HandlerContext&, const httplib::Request&, httplib::Response& res,
                                const std::shared_ptr<AccessRecord>&) {
                             res.set_content(std::string(a.body), a.content_type);
                             res.set_header("Cache-Control", "no-cache");
                             res.set_header("X-Content-Type-Options", "nosniff");
                           },
                           false));
  }
  // Errors httplib produces itself (no route, body too large, malformed request).
  http_->set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // ours, already written
    std::string msg;
    if (res.status == 404) {
      msg = "no such endpoint: " + req.method + " " + req.path;
    } else if (res.status == 413) {
      msg = "the request body is larger than " + std::to_string(opt_.max_body) + " bytes";
    } else {
      msg = "bad request (" + std::to_string(res.status) + ")";
    }
    WriteError(req, res, ApiError(res.status, msg));
    metrics_.CountRequest(req.path, res.status);
    AccessRecord rec;
    rec.start = NowSeconds();
    rec.error = msg;
    Log(req.method, req.path, res.status, rec);
    return httplib::Server::HandlerResponse::Handled;
  }));
}

void Server::Shutdown() {
  if (stopped_.exchange(true)) return;
  accepting_ = false;
  WriteLine(Json{{"time", Rfc3339Now()}, {"event", "shutting down"}}.dump());
  if (Backend* b = backend_.load()) {
    // Running and queued generations finish; past the timeout they are ended (their streams close
    // cleanly with finish_reason "abort").
    auto drained = std::async(std::launch::async, [b] { b->scheduler().Shutdown(/*drain=*/true); });
    if (drained.wait_for(std::chrono::duration<double>(opt_.shutdown_timeout)) != std::future_status::ready) {
      b->scheduler().Shutdown(/*drain=*/false);
    }
    drained.wait();
  }
  {
    // Then the answers are written out.
    std::unique_lock<std::mutex> lock(inflight_mu_);
    inflight_cv_.wait_for(lock, std::chrono::seconds(10), [&] { return inflight_ == 0; });
  }
  http_->stop();
  if (listener_.joinable()) listener_.join();
  WriteLine(Json{{"time", Rfc3339Now()}, {"event", "stopped"}}.dump());
}

}  // namespace g4::server
