#include "chat/output_parser.h"

#include <algorithm>

namespace g4::chat {
namespace {

// A channel header ("thought") longer than this is not a header: the text is taken as reasoning.
constexpr size_t kMaxChannelHeader = 64;

void EmitText(ParseEvent::Kind kind, std::string_view text, std::vector<ParseEvent>* events) {
  if (text.empty()) return;
  if (!events->empty() && events->back().kind == kind) {
    events->back().text.append(text);
  } else {
    events->push_back(ParseEvent{kind, std::string(text), {}});
  }
}

void Add(std::vector<const std::string*>* list, const std::string& marker) {
  if (!marker.empty()) list->push_back(&marker);
}

}  // namespace

OutputParser::OutputParser(ChatFormat format, ParserState initial) : OutputParser(MarkersFor(format), initial) {}

OutputParser::OutputParser(const Markers& markers, ParserState initial)
    : m_(markers), state_(initial == ParserState::kThinking ? State::kThinking : State::kContent) {}

void OutputParser::Feed(std::string_view text, std::vector<ParseEvent>* events) {
  if (state_ == State::kDone) return;
  buf_.append(text);
  Process(false, events);
}

void OutputParser::Finish(std::vector<ParseEvent>* events) {
  if (state_ == State::kDone) return;
  Process(true, events);
  if (state_ == State::kDone) return;  // a stop string was in the held-back text
  if (state_ == State::kToolCall) AbandonToolCall("unfinished tool call at the end of the output", events);
  End("", events);
}

void OutputParser::Process(bool final, std::vector<ParseEvent>* events) {
  while (state_ != State::kDone && Step(final, events)) {
  }
}

bool OutputParser::Step(bool final, std::vector<ParseEvent>* events) {
  switch (state_) {
    case State::kContent:
      return StepText(final, ParseEvent::Kind::kContent, events);
    case State::kThinking:
      return StepText(final, ParseEvent::Kind::kThinking, events);
    case State::kChannelHeader:
      return StepChannelHeader(final, events);
    case State::kToolCall:
      return StepToolCall(final, events);
    case State::kDone:
      return false;
  }
  return false;
}

bool OutputParser::FindMarker(const std::vector<const std::string*>& candidates, size_t* pos,
                              const std::string** which) const {
  bool found = false;
  for (const std::string* c : candidates) {
    const size_t p = buf_.find(*c);
    if (p == std::string::npos) continue;
    if (!found || p < *pos || (p == *pos && c->size() > (*which)->size())) {
      *pos = p;
      *which = c;
      found = true;
    }
  }
  return found;
}

size_t OutputParser::HeldBack(const std::vector<const std::string*>& candidates) const {
  size_t keep = 0;
  for (const std::string* c : candidates) {
    for (size_t k = std::min(c->size() - 1, buf_.size()); k > keep; --k) {
      if (buf_.compare(buf_.size() - k, k, *c, 0, k) == 0) {
        keep = k;
        break;
      }
    }
  }
  return keep;
}

bool OutputParser::StepText(bool final, ParseEvent::Kind kind, std::vector<ParseEvent>* events) {
  const bool thinking = kind == ParseEvent::Kind::kThinking;
  std::vector<const std::string*> markers;
  if (thinking) {
    Add(&markers, m_.channel_end);
  } else {
    Add(&markers, m_.channel_start);
    Add(&markers, m_.tool_call_start);
  }
  for (const std::string& s : m_.stop) Add(&markers, s);

  size_t pos = 0;
  const std::string* marker = nullptr;
  if (!FindMarker(markers, &pos, &marker)) {
    const size_t keep = final ? 0 : HeldBack(markers);
    EmitText(kind, std::string_view(buf_).substr(0, buf_.size() - keep), events);
    buf_.erase(0, buf_.size() - keep);
    return false;
  }
  EmitText(kind, std::string_view(buf_).substr(0, pos), events);
  buf_.erase(0, pos + marker->size());
  if (std::find(m_.stop.begin(), m_.stop.end(), *marker) != m_.stop.end()) {
    End(*marker, events);
  } else if (*marker == m_.channel_end) {
    state_ = State::kContent;
  } else if (*marker == m_.channel_start) {
    state_ = State::kChannelHeader;
  } else {
    state_ = State::kToolCall;
    call_raw_.clear();
    in_string_ = false;
  }
  return true;
}

// After <|channel>: the channel's name up to a newline ("thought\n"), which is not reasoning text.
bool OutputParser::StepChannelHeader(bool final, std::vector<ParseEvent>* events) {
  static const std::string kNewline = "\n";
  std::vector<const std::string*> markers = {&kNewline};
  Add(&markers, m_.channel_end);
  for (const std::string& s : m_.stop) Add(&markers, s);
  size_t pos = 0;
  const std::string* marker = nullptr;
  if (FindMarker(markers, &pos, &marker) && pos < kMaxChannelHeader) {
    if (marker == &kNewline) {
      buf_.erase(0, pos + 1);
      state_ = State::kThinking;
    } else if (*marker == m_.channel_end) {
      buf_.erase(0, pos + marker->size());  // an empty channel without a newline
      state_ = State::kContent;
    } else {
      EmitText(ParseEvent::Kind::kThinking, std::string_view(buf_).substr(0, pos), events);
      buf_.erase(0, pos + marker->size());
      End(*marker, events);
    }
    return true;
  }
  size_t longest = 1;
  for (const std::string* c : markers) longest = std::max(longest, c->size());
  if (final || buf_.size() >= kMaxChannelHeader + longest) {
    // No header: everything after <|channel> is reasoning.
    state_ = State::kThinking;
    return true;
  }
  return false;
}

bool OutputParser::StepToolCall(bool final, std::vector<ParseEvent>* events) {
  std::vector<const std::string*> markers;
  Add(&markers, m_.string_delimiter);
  if (!in_string_) Add(&markers, m_.tool_call_end);
  for (const std::string& s : m_.stop) Add(&markers, s);
  size_t pos = 0;
  const std::string* marker = nullptr;
  if (!FindMarker(markers, &pos, &marker)) {
    const size_t keep = final ? 0 : HeldBack(markers);
    call_raw_.append(buf_, 0, buf_.size() - keep);
    buf_.erase(0, buf_.size() - keep);
    return false;
  }
  call_raw_.append(buf_, 0, pos);
  buf_.erase(0, pos + marker->size());
  if (std::find(m_.stop.begin(), m_.stop.end(), *marker) != m_.stop.end()) {
    AbandonToolCall("unfinished tool call before " + *marker, events);
    End(*marker, events);
  } else if (*marker == m_.string_delimiter) {
    call_raw_ += *marker;
    in_string_ = !in_string_;
  } else {
    FinishToolCall(events);
  }
  return true;
}

void OutputParser::FinishToolCall(std::vector<ParseEvent>* events) {
  ToolCall call;
  std::string error;
  if (ParseToolCallText(call_raw_, m_.string_delimiter, &call, &error)) {
    events->push_back(ParseEvent{ParseEvent::Kind::kToolCall, "", std::move(call)});
    call_raw_.clear();
    state_ = State::kContent;
  } else {
    call_raw_ += m_.tool_call_end;
    AbandonToolCall("malformed tool call: " + error, events);
  }
}

// The call's text comes out as answer text, after a warning that says why.
void OutputParser::AbandonToolCall(const std::string& why, std::vector<ParseEvent>* events) {
  events->push_back(ParseEvent{ParseEvent::Kind::kWarning, why, {}});
  EmitText(ParseEvent::Kind::kContent, m_.tool_call_start + call_raw_, events);
  call_raw_.clear();
  state_ = State::kContent;
}

void OutputParser::End(const std::string& stop, std::vector<ParseEvent>* events) {
  events->push_back(ParseEvent{ParseEvent::Kind::kEnd, stop, {}});
  state_ = State::kDone;
  buf_.clear();
}

std::vector<ParseEvent> CoalesceEvents(const std::vector<ParseEvent>& events) {
  std::vector<ParseEvent> out;
  for (const ParseEvent& e : events) {
    const bool text = e.kind == ParseEvent::Kind::kThinking || e.kind == ParseEvent::Kind::kContent;
    if (text && !out.empty() && out.back().kind == e.kind) {
      out.back().text += e.text;
    } else if (!(text && e.text.empty())) {
      out.push_back(e);
    }
  }
  return out;
}

ParsedOutput ParseFull(std::string_view text, ChatFormat format, ParserState initial) {
  OutputParser parser(format, initial);
  std::vector<ParseEvent> events;
  parser.Feed(text, &events);
  parser.Finish(&events);
  ParsedOutput out;
  for (ParseEvent& e : events) {
    switch (e.kind) {
      case ParseEvent::Kind::kThinking:
        out.thinking += e.text;
        break;
      case ParseEvent::Kind::kContent:
        out.content += e.text;
        break;
      case ParseEvent::Kind::kToolCall:
        out.tool_calls.push_back(std::move(e.call));
        break;
      case ParseEvent::Kind::kWarning:
        out.warnings.push_back(std::move(e.text));
        break;
      case ParseEvent::Kind::kEnd:
        out.stop = e.text;
        out.ended = !e.text.empty();
        break;
    }
  }
  return out;
}

ParserState InitialStateForPrompt(std::string_view prompt, ChatFormat format) {
  const Markers& m = MarkersFor(format);
  if (m.channel_start.empty()) return ParserState::kContent;
  // Only the last turn counts: a user may well have typed the marker text in an earlier one.
  if (const size_t turn = prompt.rfind(m.turn_start); turn != std::string_view::npos) prompt.remove_prefix(turn);
  const size_t open = prompt.rfind(m.channel_start);
  if (open == std::string_view::npos) return ParserState::kContent;
  const size_t close = prompt.rfind(m.channel_end);
  return close != std::string_view::npos && close > open ? ParserState::kContent : ParserState::kThinking;
}

}  // namespace g4::chat
