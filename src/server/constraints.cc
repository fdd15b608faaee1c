#include "server/constraints.h"

#include "util/error.h"

namespace g4::server {

namespace {

constexpr size_t kTail = 32;  // longer than every marker

bool EndsWith(const std::string& s, const std::string& suffix) {
  return !suffix.empty() && s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::shared_ptr<const ConstraintVocab> ConstraintVocab::Make(const Tokenizer& tok, chat::ChatFormat format) {
  auto v = std::make_shared<ConstraintVocab>();
  for (int32_t id = 0; id < tok.n_vocab(); ++id) {
    const TokenType t = tok.Type(id);
    if (t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUnused) {
      const std::string_view text = tok.TokenBytes(id, /*render_special=*/true);
      if (!text.empty()) v->hidden.emplace(text);
    }
  }
  const chat::Markers& m = chat::MarkersFor(format);
  for (const auto& s : m.stop) {
    if (!s.empty()) v->stops.push_back(s);
  }
  v->channel_start = m.channel_start;
  v->channel_end = m.channel_end;
  v->tool_call_start = m.tool_call_start;
  v->tool_call_end = m.tool_call_end;
  for (const std::string* s : {&m.channel_start, &m.channel_end, &m.tool_call_start, &m.tool_call_end}) {
    if (!s->empty()) v->answer_markers.push_back(*s);
  }
  for (const auto& s : v->stops) v->answer_markers.push_back(s);
  return v;
}

std::shared_ptr<OutputConstraint> OutputConstraint::Json(std::shared_ptr<const Schema> schema, bool allow_thought,
                                                         std::shared_ptr<const ConstraintVocab> vocab) {
  std::shared_ptr<OutputConstraint> c(new OutputConstraint(std::move(vocab)));
  c->s_.allow_thought = allow_thought && !c->vocab_->channel_start.empty();
  const SchemaNode* root = schema->root();
  c->s_.json.emplace(std::move(schema), root, Dialect::kJson);
  return c;
}

std::shared_ptr<OutputConstraint> OutputConstraint::ToolCalls(std::vector<ToolSpec> tools, bool several,
                                                              bool allow_thought,
                                                              std::shared_ptr<const ConstraintVocab> vocab) {
  if (tools.empty()) Fail("tool_choice: there is no tool to call");
  if (vocab->tool_call_start.empty()) Fail("tools: this model's chat format has no tool calls");
  for (auto& t : tools) {
    // The arguments are always an object: the call is written NAME{...}.
    const SchemaNode* root = t.params ? t.params->root() : nullptr;
    if (!root || (!(root->types & SchemaNode::kObject) && root->any_of.empty())) t.params = Schema::AnyObject();
  }
  std::shared_ptr<OutputConstraint> c(new OutputConstraint(std::move(vocab)));
  c->s_.allow_thought = allow_thought && !c->vocab_->channel_start.empty();
  c->s_.tools = true;
  c->s_.several = several;
  c->s_.specs = std::make_shared<const std::vector<ToolSpec>>(std::move(tools));
  return c;
}

bool OutputConstraint::State::Feed(std::string_view text, const ConstraintVocab& v) {
  if (stage == kStart) {
    // A thought block opens with its marker token; anything else starts the answer itself.
    if (allow_thought && text.substr(0, v.channel_start.size()) == v.channel_start) {
      stage = kThought;
      text.remove_prefix(v.channel_start.size());
    } else {
      stage = kBody;
    }
  }
  for (char c : text) {
    tail.push_back(c);
    if (tail.size() > kTail) tail.erase(0, tail.size() - kTail);
    if (stage == kThought) {
      if (EndsWith(tail, v.channel_end)) {
        stage = kBody;
        tail.clear();
        continue;
      }
      // A thought ends with its marker; it cannot end the turn or open another thought.
      if (EndsWith(tail, v.channel_start)) return false;
      for (const auto& s : v.stops) {
        if (EndsWith(tail, s)) return false;
      }
      continue;
    }
    if (!FeedBody(static_cast<uint8_t>(c), v)) return false;
    for (const auto& m : tools ? v.stops : v.answer_markers) {
      if (EndsWith(tail, m)) return false;
    }
  }
  return true;
}

bool OutputConstraint::State::FeedBody(uint8_t b, const ConstraintVocab& v) {
  if (!tools) return json->FeedByte(b);
  switch (call) {
    case kAfter:
      if (!several) return false;
      call = kOpen;
      pos = 0;
      [[fallthrough]];
    case kOpen: {
      const size_t n = v.tool_call_start.size();
      const char want = pos < n ? v.tool_call_start[pos] : "call:"[pos - n];
      if (b != static_cast<uint8_t>(want)) return false;
      if (++pos == n + 5) {
        call = kName;
        name.clear();
      }
      return true;
    }
    case kName: {
      if (b == '{') {
        for (const ToolSpec& t : *specs) {
          if (t.name != name) continue;
          args.emplace(t.params, t.params->root(), Dialect::kGemma);
          call = kArgs;
          return args->FeedByte(b);
        }
        return false;
      }
      name += static_cast<char>(b);
      for (const ToolSpec& t : *specs) {
        if (t.name.compare(0, name.size(), name) == 0) return true;
      }
      return false;
    }
    case kArgs:
      if (!args->FeedByte(b)) return false;
      if (args->Closed()) {
        call = kClose;
        pos = 0;
        args.reset();
      }
      return true;
    case kClose:
      if (pos >= v.tool_call_end.size() || b != static_cast<uint8_t>(v.tool_call_end[pos])) return false;
      if (++pos == v.tool_call_end.size()) call = kAfter;
      return true;
  }
  return false;
}

bool OutputConstraint::State::Complete() const {
  if (stage != kBody) return false;
  return tools ? call == kAfter : json->Complete();
}

bool OutputConstraint::State::Closed() const {
  if (stage != kBody) return false;
  return tools ? call == kAfter && !several : json->Closed();
}

bool OutputConstraint::FirstByteOk(uint8_t b) const {
  if (!first_valid_) {
    first_.assign(256, 0);
    for (int i = 0; i < 256; ++i) {
      State copy = s_;
      const char c = static_cast<char>(i);
      first_[static_cast<size_t>(i)] = copy.Feed(std::string_view(&c, 1), *vocab_);
    }
    first_valid_ = true;
  }
  return first_[b] != 0;
}

bool OutputConstraint::Allows(std::string_view text) const {
  if (broken_ || text.empty() || vocab_->hidden.find(text) != vocab_->hidden.end()) return false;
  // Every marker ends with '>': text without one cannot complete a marker.
  const bool no_marker = text.find('>') == std::string_view::npos;
  if (s_.stage == State::kThought && no_marker) return true;
  if (s_.stage == State::kBody) {
    if (!FirstByteOk(static_cast<uint8_t>(text[0]))) return false;
    if (text.size() == 1) return true;
    const JsonMatcher* m = s_.tools ? (s_.call == State::kArgs ? &*s_.args : nullptr) : &*s_.json;
    if (m && no_marker && m->FastStringAppend(text)) return true;
  }
  State copy = s_;
  return copy.Feed(text, *vocab_);
}

void OutputConstraint::Accept(std::string_view text) {
  first_valid_ = false;
  // The scheduler only accepts what Allows() let through. Should that ever fail, allow nothing more
  // (the request then ends with an error) rather than throw on the scheduler's thread.
  if (!broken_ && !s_.Feed(text, *vocab_)) broken_ = true;
}

bool OutputConstraint::Complete() const { return !broken_ && s_.Complete(); }
bool OutputConstraint::MustEnd() const { return !broken_ && s_.Closed(); }

}  // namespace g4::server
