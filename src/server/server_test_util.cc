#include "server/server_test_util.h"

#include <sstream>

#include "engine/generator.h"
#include "testutil.h"

namespace g4::server::test {

TestServer::TestServer(const TestOptions& o) : o_(o) {
  ServerOptions so;
  so.port = 0;
  so.api_key = o.api_key;
  so.max_body = o.max_body;
  so.access_log = false;
  so.shutdown_timeout = 20;
  server_ = std::make_unique<Server>(so);
  port_ = server_->Start(o.slots, o.queue);
  if (o.load) Load();
}

TestServer::~TestServer() { server_->Shutdown(); }

void TestServer::Load() {
  auto path = [](const std::string& p) { return p[0] == '/' ? p : g4::testing::SharedPath(p); };
  auto model = Model::Load(path(o_.model));
  auto tok = std::make_unique<Tokenizer>(Tokenizer::FromGguf(model->file()));
  SchedulerOptions so;
  so.n_slots = o_.slots;
  so.n_ctx = o_.ctx;
  so.n_batch = 512;
  so.max_queue = o_.queue;
  so.n_threads = 1;  // no spinning worker threads on a shared test machine
  so.math = o_.exact ? kernels::Math::kExact : kernels::Math::kFast;
  so.type_k = so.type_v = o_.exact ? GgmlType::F32 : GgmlType::F16;
  if (!o_.draft_mode.empty()) {
    so.draft_mode = o_.draft_mode == "assistant" ? DraftMode::kAssistant
                    : o_.draft_mode == "model"   ? DraftMode::kModel
                                                 : DraftMode::kNgram;
    so.draft_max = o_.draft_max;
  }
  std::shared_ptr<const Model> draft;
  if (!o_.draft.empty()) draft = Model::Load(path(o_.draft));
  std::unique_ptr<mm::MediaEncoder> media;
  if (!o_.mmproj.empty()) media = mm::MediaEncoder::Create(*model, g4::testing::SharedPath(o_.mmproj), so.math);
  BackendOptions bo;
  bo.name = "tiny";
  bo.info.family = "gemma4";
  bo.info.quantization = "F32";
  bo.sampling.suppress = SuppressedTokens(model->file(), model->config().n_vocab);
  bo.limits.max_tokens = o_.max_tokens;
  bo.media_threads = 1;
  bo.context_overflow = o_.context_overflow;
  bo.draft_model = draft;
  server_->SetBackend(std::make_unique<Backend>(std::move(model), std::move(tok), so, bo, std::move(media)));
}

Json Reply::json() const {
  try {
    return Json::parse(body);
  } catch (const Json::exception& e) {
    ADD_FAILURE() << "not JSON (" << e.what() << "): " << body;
    return Json();
  }
}

namespace {
Reply From(const httplib::Result& r) {
  Reply out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  out.headers = r->headers;
  return out;
}
httplib::Client Client(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120);
  c.set_write_timeout(60);
  return c;
}
}  // namespace

Reply Get(int port, const std::string& path, const httplib::Headers& headers) {
  auto c = Client(port);
  return From(c.Get(path, headers));
}

Reply Post(int port, const std::string& path, const std::string& body, const httplib::Headers& headers) {
  auto c = Client(port);
  return From(c.Post(path, headers, body, "application/json"));
}

Reply PostStream(int port, const std::string& path, const std::string& body,
                 const std::function<bool(const std::string&)>& on_chunk) {
  auto c = Client(port);
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  Reply out;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    std::string chunk(data, n);
    out.body += chunk;
    return on_chunk(chunk);
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  if (c.send(req, res, err)) {
    out.status = res.status;
    out.headers = res.headers;
  }
  return out;
}

std::vector<Json> SseEvents(const std::string& body) {
  std::vector<Json> out;
  size_t pos = 0;
  bool done = false;
  while (pos < body.size()) {
    const size_t end = body.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "an event without its blank line: " << body.substr(pos);
    if (end == std::string::npos) break;
    const std::string ev = body.substr(pos, end - pos);
    pos = end + 2;
    EXPECT_FALSE(done) << "events after [DONE]";
    if (ev[0] == ':') continue;  // a comment (keep-alive)
    EXPECT_EQ(ev.rfind("data: ", 0), 0u) << ev;
    EXPECT_EQ(ev.find('\n'), std::string::npos) << "one data line per event: " << ev;
    const std::string data = ev.substr(6);
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    try {
      out.push_back(Json::parse(data));
    } catch (const Json::exception& e) {
      ADD_FAILURE() << "not JSON: " << data;
    }
  }
  EXPECT_TRUE(done) << "the stream does not end with data: [DONE]";
  return out;
}

std::vector<Json> NdjsonObjects(const std::string& body) {
  std::vector<Json> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    const size_t start = line.find_first_not_of(' ');
    if (start == std::string::npos) {
      ADD_FAILURE() << "an empty line in NDJSON";
      continue;
    }
    try {
      out.push_back(Json::parse(line.substr(start)));
    } catch (const Json::exception&) {
      ADD_FAILURE() << "not JSON: " << line;
    }
  }
  EXPECT_FALSE(body.empty() || body.back() != '\n') << "NDJSON must end with a newline";
  return out;
}

Json Chat(const std::string& user, int max_tokens, double temperature) {
  return Json{{"model", "tiny"},
              {"messages", Json::array({{{"role", "user"}, {"content", user}}})},
              {"max_tokens", max_tokens},
              {"temperature", temperature}};
}

}  // namespace g4::server::test
