// gemma4 serve: the OpenAI- and Ollama-compatible HTTP server (src/server), shared by many clients.
//
// The port is bound first and answers /health with "loading" while the model loads. SIGTERM or
// SIGINT shuts down gracefully: new requests get 503, running ones finish (up to
// --shutdown-timeout, then they are ended cleanly), and the process exits with status 0.
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>

#include "cli/common.h"
#include "formats/quant_mix.h"
#include "model/memory_plan.h"
#include "server/server.h"
#include "util/error.h"

namespace g4::cli {

namespace {

struct ServeOptions {
  ModelOptions m;
  SamplingOptions s;
  std::string host = "127.0.0.1";
  int port = 8080;
  int parallel = 4;
  int queue = 64;
  std::string api_key;
  std::string alias;
  int max_tokens = 0;      // 0: the context size
  int max_n = 8;
  double max_body_mib = 32;
  std::string mmproj;
  int image_tokens = 280;
  bool think = false;
  double shutdown_timeout = 30;
  int http_threads = 0;
  bool no_log = false;
  std::string context_overflow = "error";
  DraftOptions draft;
};

server::ModelInfo Describe(const Model& model, const std::string& path) {
  server::ModelInfo info;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    info.file_size = static_cast<int64_t>(st.st_size);
    info.modified = static_cast<int64_t>(st.st_mtime);
  }
  info.family = model.file().GetStringOpt("general.architecture").value_or("gemma4");
  if (auto ft = model.file().GetUIntOpt("general.file_type")) {
    const char* name = FileTypeName(static_cast<FileType>(*ft));
    info.quantization = name ? name : "unknown";
  }
  for (const auto& t : model.file().tensors()) info.n_params += t.Elements();
  return info;
}

void RunServe(ServeOptions o) {  // a copy: --ctx auto sets o.m.ctx
  ParseContextOverflow(o.context_overflow, "--context-overflow");  // fail before anything starts
  // Signals are taken by sigwait below: block them before any thread starts, so that every thread
  // inherits the mask and none is interrupted. A client that goes away must not kill the server.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (o.api_key.empty() && o.host != "127.0.0.1" && o.host != "localhost" && o.host != "::1") {
    std::fprintf(stderr, "warning: listening on %s without --api-key: anyone who can reach it can use the model\n",
                 o.host.c_str());
  }
  server::ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.api_key = o.api_key;
  so.max_body = static_cast<size_t>(o.max_body_mib * 1024 * 1024);
  so.http_threads = o.http_threads;
  so.shutdown_timeout = o.shutdown_timeout;
  so.access_log = !o.no_log;
  so.version = GEMMA4_VERSION;
  // A bad --draft/--draft-mode combination fails before the port is bound.
  const std::string draft_mode = o.draft.enabled() ? o.draft.Mode() : "";
  server::Server srv(so);
  srv.Start(o.parallel, o.queue);

  const uint64_t available = o.m.ctx_auto ? AvailableMemory() : 0;
  auto model = Model::Load(o.m.model);
  ResolveAutoContext(&o.m, *model, o.parallel, available);
  auto tok = std::make_unique<Tokenizer>(Tokenizer::FromGguf(model->file()));
  if (tok->n_vocab() != model->config().n_vocab) {
    Fail("%s: the vocabulary has %d tokens but token_embd has %lld rows", o.m.model.c_str(), tok->n_vocab(),
         (long long)model->config().n_vocab);
  }
  const ContextOptions c = MakeContextOptions(o.m, *model, o.parallel);
  SchedulerOptions sched;
  sched.n_slots = o.parallel;
  sched.n_ctx = o.m.ctx;
  sched.n_batch = o.m.batch;
  sched.max_queue = o.queue;
  sched.n_threads = o.m.threads;
  sched.math = c.math;
  sched.type_k = c.kv.type_k;
  sched.type_v = c.kv.type_v;
  std::shared_ptr<const Model> draft_model;
  if (!draft_mode.empty()) {
    sched.draft_mode = draft_mode == "assistant" ? DraftMode::kAssistant
                       : draft_mode == "model"   ? DraftMode::kModel
                                                 : DraftMode::kNgram;
    if (sched.draft_mode != DraftMode::kNgram) draft_model = Model::Load(o.draft.file);
    sched.draft_model = draft_model.get();
    sched.draft_max = o.draft.draft_max;
  }

  std::unique_ptr<mm::MediaEncoder> media;
  if (!o.mmproj.empty()) {
    media = mm::MediaEncoder::Create(*model, o.mmproj, c.math);
  } else {
    try {
      media = mm::MediaEncoder::Create(*model, "", c.math);  // the model file's own projector, if any
    } catch (const Error&) {
      media.reset();  // a text-only model
    }
  }

  server::BackendOptions bo;
  bo.name = o.alias.empty() ? std::filesystem::path(o.m.model).stem().string() : o.alias;
  bo.info = Describe(*model, o.m.model);
  bo.sampling = o.s.Params(*model);
  bo.thinking = o.think;
  bo.context_overflow = ParseContextOverflow(o.context_overflow, "--context-overflow");
  bo.limits.max_tokens = o.max_tokens > 0 ? o.max_tokens : static_cast<int>(std::min<int64_t>(o.m.ctx, INT32_MAX));
  bo.limits.max_n = o.max_n;
  bo.image.max_tokens = o.image_tokens;
  bo.media_threads = o.m.threads;
  bo.draft_model = draft_model;
  srv.SetBackend(std::make_unique<server::Backend>(std::move(model), std::move(tok), sched, bo, std::move(media)));
  if (!draft_mode.empty()) {
    // The access log then carries each request's draft_tokens, draft_accepted and tokens_per_forward.
    std::fprintf(stderr, "speculative decoding: %s%s%s, up to %d drafted tokens per request and step\n",
                 draft_mode.c_str(), o.draft.file.empty() ? "" : " with ", o.draft.file.c_str(), o.draft.draft_max);
  }

  int sig = 0;
  sigwait(&signals, &sig);
  srv.Shutdown();
}

}  // namespace

void AddServe(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* sub = app.add_subcommand("serve", "Serve the model over HTTP (OpenAI and Ollama APIs, web chat page)");
  o->m.Add(sub, false, /*allow_auto=*/true);
  o->s.Add(sub);
  sub->add_option("--host", o->host, "Address to listen on (default 127.0.0.1: this machine only)");
  sub->add_option("--port", o->port, "Port (0: any free port, printed in the log)")->check(CLI::Range(0, 65535));
  sub->add_option("--parallel", o->parallel, "Requests decoded together (slots); --ctx is per slot")
      ->check(CLI::Range(1, 256));
  sub->add_option("--queue", o->queue, "Requests that may wait for a slot; beyond that the answer is 429")
      ->check(CLI::Range(0, 100000));
  sub->add_option("--api-key", o->api_key, "Require 'Authorization: Bearer KEY' on API requests")
      ->envname("GEMMA4_API_KEY");
  sub->add_option("--alias", o->alias, "Name of the model in the APIs (default: the file's base name)");
  sub->add_option("--max-tokens", o->max_tokens, "Most tokens a request may generate (default: --ctx)")
      ->check(CLI::Range(1, 1 << 24));
  sub->add_option("--max-n", o->max_n, "Most choices (n) a request may ask for")->check(CLI::Range(1, 128));
  sub->add_option("--max-body", o->max_body_mib, "Request body limit in MiB")->check(CLI::Range(0.001, 4096.0));
  sub->add_option("--mmproj", o->mmproj, "Multimodal projector GGUF (images and audio)");
  sub->add_option("--image-tokens", o->image_tokens, "Soft tokens per image")->check(CLI::Range(1, 4096));
  sub->add_flag("--think", o->think, "Think by default (requests can still switch it)");
  sub->add_option("--shutdown-timeout", o->shutdown_timeout, "Seconds running requests get to finish on SIGTERM")
      ->check(CLI::Range(0.0, 86400.0));
  sub->add_option("--http-threads", o->http_threads, "HTTP threads (default: slots + queue + 8)")
      ->check(CLI::Range(1, 100000));
  sub->add_flag("--no-log", o->no_log, "No access log on stderr");
  sub->add_option("--context-overflow", o->context_overflow,
                  "When a chat outgrows the context: error (HTTP 400 naming the excess) or drop-oldest (drop the "
                  "oldest whole turns, keeping the system prompt; reported in X-Context-Dropped-* headers); a "
                  "request's context_overflow field overrides it");
  o->draft.Add(sub);
  sub->callback([o] { RunServe(*o); });
}

}  // namespace g4::cli
