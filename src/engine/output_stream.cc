#include "engine/output_stream.h"

#include <algorithm>

namespace g4 {

namespace {
// Length of the longest suffix of `text` that is a proper prefix of some stop string.
size_t HeldBack(std::string_view text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const auto& s : stops) {
    for (size_t k = std::min(s.size() - 1, text.size()); k > hold; --k) {
      if (text.substr(text.size() - k) == std::string_view(s).substr(0, k)) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}
}  // namespace

OutputStream::OutputStream(const Tokenizer& tok, std::vector<std::string> stop_strings, bool render_special)
    : tok_(tok), decoder_(tok, render_special) {
  for (auto& s : stop_strings) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

OutputStream::Step OutputStream::Push(int32_t token) {
  Step step;
  pending_ += decoder_.Push(token);
  size_t cut = std::string::npos;
  for (const auto& s : stops_) cut = std::min(cut, pending_.find(s));
  if (cut != std::string::npos) {
    pending_.resize(cut);
    step.stop_string = true;
    step.text = std::move(pending_);
    pending_.clear();
    return step;
  }
  const size_t hold = HeldBack(pending_, stops_);
  step.text = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, step.text.size());
  return step;
}

std::string OutputStream::EndOfGeneration(int32_t token, bool include_token_text) {
  std::string out = Flush();
  if (include_token_text) out += std::string(tok_.TokenBytes(token, true));
  return out;
}

std::string OutputStream::Flush() {
  std::string out = std::move(pending_);
  pending_.clear();
  out += decoder_.Flush();
  return out;
}

}  // namespace g4
