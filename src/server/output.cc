#include "server/output.h"

#include <algorithm>

#include "chat/gemma_syntax.h"

namespace g4::server {

ChoiceOutput::ChoiceOutput(const OutputSetup& setup) : setup_(setup) {
  if (setup_.chat) parser_ = std::make_unique<chat::OutputParser>(setup_.format, setup_.initial);
}

Json ChoiceOutput::LogprobEntry(int32_t token, float logprob) const {
  const std::string_view piece = setup_.tok->TokenBytes(token);
  Json bytes = Json::array();
  for (char c : piece) bytes.push_back(static_cast<int>(static_cast<unsigned char>(c)));
  return Json{{"token", chat::SanitizeUtf8(piece)}, {"logprob", logprob}, {"bytes", bytes}};
}

void ChoiceOutput::Apply(const std::vector<chat::ParseEvent>& events, OutputDelta* d) {
  for (const auto& e : events) {
    switch (e.kind) {
      case chat::ParseEvent::Kind::kThinking:
        d->reasoning += e.text;
        reasoning_ += e.text;
        break;
      case chat::ParseEvent::Kind::kContent:
        d->content += e.text;
        content_ += e.text;
        break;
      case chat::ParseEvent::Kind::kToolCall: {
        MadeCall c{RandomId("call_"), e.call.name, e.call.arguments};
        d->calls.push_back(c);
        calls_.push_back(std::move(c));
        break;
      }
      case chat::ParseEvent::Kind::kWarning:
        warnings_.push_back(e.text);
        break;
      case chat::ParseEvent::Kind::kEnd:
        break;
    }
  }
}

OutputDelta ChoiceOutput::Token(const TokenEvent& ev) {
  OutputDelta d;
  const bool eog = std::find(setup_.eog.begin(), setup_.eog.end(), ev.token) != setup_.eog.end();
  if (ev.token >= 0 && !eog && setup_.tok) {
    if (setup_.logprobs) {
      Json entry = LogprobEntry(ev.token, ev.logprob);
      Json top = Json::array();
      for (const auto& t : ev.top) top.push_back(LogprobEntry(t.token, t.logprob));
      entry["top_logprobs"] = top;
      d.logprobs.push_back(entry);
      logprobs_.push_back(std::move(entry));
    }
  }
  if (!parser_) {
    d.content = ev.text;
    content_ += ev.text;
    return d;
  }
  std::vector<chat::ParseEvent> events;
  parser_->Feed(ev.text, &events);
  Apply(events, &d);
  return d;
}

OutputDelta ChoiceOutput::Finish(const RequestResult& r) {
  OutputDelta d;
  result_ = r;
  finished_ = true;
  if (parser_) {
    std::vector<chat::ParseEvent> events;
    parser_->Finish(&events);
    Apply(events, &d);
  }
  return d;
}

std::string ChoiceOutput::FinishReason() const {
  if (!result_.error.empty()) return "error";
  if (!calls_.empty()) return "tool_calls";
  switch (result_.finish) {
    case g4::FinishReason::kEndOfGeneration:
    case g4::FinishReason::kStopString:
      return "stop";
    case g4::FinishReason::kLength:
    case g4::FinishReason::kContextFull:
      return "length";
    case g4::FinishReason::kCancelled:
      return "abort";
  }
  return "stop";
}

}  // namespace g4::server
