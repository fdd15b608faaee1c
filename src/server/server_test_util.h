// Helpers for the server's end-to-end tests: an in-process server on a free loopback port with a
// small model, and HTTP calls (plain, streamed, disconnecting on demand).
#pragma once

#include <httplib.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "server/server.h"

namespace g4::server::test {

struct TestOptions {
  std::string model = "golden/g4u-tiny/g4u-tiny.f32.gguf";  // under ../shared (or an absolute path)
  std::string mmproj;                                       // under ../shared
  bool exact = false;  // the default fast numerics (the exact ones are slower)
  int slots = 2;
  int queue = 8;
  int64_t ctx = 512;
  int max_tokens = 256;
  std::string api_key;
  size_t max_body = 1 << 20;
  bool load = true;  // false: the server answers while "loading"
  ContextOverflow context_overflow = ContextOverflow::kError;  // --context-overflow
  // Speculative decoding: "assistant", "model" or "ngram"; draft is the file under ../shared.
  std::string draft_mode;
  std::string draft;
  int draft_max = 6;
};

class TestServer {
 public:
  explicit TestServer(const TestOptions& o = {});
  ~TestServer();
  int port() const { return port_; }
  Server& server() { return *server_; }
  void Load();  // the model (when constructed with load = false)

 private:
  TestOptions o_;
  std::unique_ptr<Server> server_;
  int port_ = 0;
};

struct Reply {
  int status = -1;  // -1: no response (connection failed or was closed by the client)
  std::string body;
  httplib::Headers headers;
  Json json() const;  // the body as JSON (fails the test when it is not)
};

Reply Get(int port, const std::string& path, const httplib::Headers& headers = {});
Reply Post(int port, const std::string& path, const std::string& body, const httplib::Headers& headers = {});
// Streams the body; on_chunk returns false to hang up (the client goes away).
Reply PostStream(int port, const std::string& path, const std::string& body,
                 const std::function<bool(const std::string&)>& on_chunk);

// The data objects of a server-sent event stream. Checks the framing: every event is a "data: "
// line or a comment, and the stream ends with "data: [DONE]".
std::vector<Json> SseEvents(const std::string& body);
// The objects of newline-delimited JSON (leading spaces allowed: they keep the connection alive).
std::vector<Json> NdjsonObjects(const std::string& body);

// A chat request body.
Json Chat(const std::string& user, int max_tokens, double temperature = 0);

}  // namespace g4::server::test
