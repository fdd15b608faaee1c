// What happens when a conversation outgrows the context (`--context-overflow` of gemma4 run and
// serve, and the server's per-request `context_overflow` field):
//  * error:       refuse, saying how many tokens are over;
//  * drop-oldest: remove whole turns from the front (a turn is a user message and everything up to
//                 the next user message: the model's answers, tool calls and results), keeping the
//                 system/developer messages at the start and the newest turn; never cut inside a
//                 turn. If the newest turn alone does not fit, refuse as `error` does.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "chat/json.h"
#include "util/error.h"

namespace g4 {

enum class ContextOverflow { kError, kDropOldest };

// "error" or "drop-oldest" (also "drop_oldest"); fails naming `what` otherwise.
ContextOverflow ParseContextOverflow(const std::string& name, const char* what);
const char* ContextOverflowName(ContextOverflow p);

// The conversation is longer than the context: tokens() is the prompt's length, over() how many
// tokens must go for it to fit.
class ContextOverflowError : public Error {
 public:
  ContextOverflowError(const std::string& msg, int64_t tokens, int64_t limit)
      : Error(msg), tokens_(tokens), limit_(limit) {}
  int64_t tokens() const { return tokens_; }
  int64_t limit() const { return limit_; }
  int64_t over() const { return tokens_ - limit_; }

 private:
  int64_t tokens_, limit_;
};

struct FitResult {
  int dropped_messages = 0;  // messages removed from the front
  int dropped_turns = 0;
  int64_t tokens = 0;        // the prompt's length after dropping
};

// Makes `messages` (an OpenAI-style array) fit in `limit` prompt tokens, as `count` measures them
// (the rendered, tokenized prompt). Throws ContextOverflowError when it cannot: with kError whenever
// the prompt is over, with kDropOldest when the newest turn alone is over.
FitResult FitConversation(chat::Json* messages, int64_t limit, ContextOverflow policy,
                          const std::function<int64_t(const chat::Json&)>& count);

}  // namespace g4
