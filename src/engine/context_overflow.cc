#include "engine/context_overflow.h"

#include <cstdio>

namespace g4 {

ContextOverflow ParseContextOverflow(const std::string& name, const char* what) {
  if (name == "error") return ContextOverflow::kError;
  if (name == "drop-oldest" || name == "drop_oldest") return ContextOverflow::kDropOldest;
  Fail("%s: unknown policy '%s' (error, drop-oldest)", what, name.c_str());
}

const char* ContextOverflowName(ContextOverflow p) { return p == ContextOverflow::kError ? "error" : "drop-oldest"; }

namespace {

bool IsPreamble(const chat::Json& m) {
  const std::string role = m.is_object() ? m.value("role", "") : "";
  return role == "system" || role == "developer";
}
bool IsUser(const chat::Json& m) { return m.is_object() && m.value("role", "") == "user"; }

[[noreturn]] void Over(int64_t n, int64_t limit, const FitResult& r, ContextOverflow policy) {
  char msg[512];
  if (policy == ContextOverflow::kError) {
    std::snprintf(msg, sizeof(msg),
                  "the conversation is %lld tokens, %lld over the context's %lld for the prompt (drop-oldest "
                  "would drop the oldest turns)",
                  (long long)n, (long long)(n - limit), (long long)limit);
  } else {
    std::snprintf(msg, sizeof(msg),
                  "the newest turn alone is %lld tokens, %lld over the context's %lld for the prompt, after "
                  "dropping %d earlier turn(s)",
                  (long long)n, (long long)(n - limit), (long long)limit, r.dropped_turns);
  }
  throw ContextOverflowError(msg, n, limit);
}

}  // namespace

FitResult FitConversation(chat::Json* messages, int64_t limit, ContextOverflow policy,
                          const std::function<int64_t(const chat::Json&)>& count) {
  if (!messages->is_array()) Fail("a conversation must be a JSON array of messages");
  FitResult r;
  r.tokens = count(*messages);
  if (r.tokens <= limit) return r;
  if (policy == ContextOverflow::kError) Over(r.tokens, limit, r, policy);
  chat::Json& m = *messages;
  size_t first = 0;  // the first message after the preamble
  while (first < m.size() && IsPreamble(m[first])) ++first;
  while (r.tokens > limit) {
    // The oldest turn: [first, next user message after it).
    size_t end = first + 1;
    while (end < m.size() && !IsUser(m[end])) ++end;
    if (first >= m.size() || end >= m.size()) Over(r.tokens, limit, r, policy);  // only the newest turn is left
    m.erase(m.begin() + static_cast<std::ptrdiff_t>(first), m.begin() + static_cast<std::ptrdiff_t>(end));
    r.dropped_messages += static_cast<int>(end - first);
    ++r.dropped_turns;
    r.tokens = count(m);
  }
  return r;
}

}  // namespace g4
