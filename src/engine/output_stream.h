// Generated tokens to streamed text: only complete, valid UTF-8 is released, and never the beginning
// of a stop string that may still complete; a stop string cuts the text where it starts.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace g4 {

class OutputStream {
 public:
  OutputStream(const Tokenizer& tok, std::vector<std::string> stop_strings, bool render_special = false);

  struct Step {
    std::string text;          // text released by this token
    bool stop_string = false;  // a stop string completed: generation ends, text is cut before it
  };
  Step Push(int32_t token);
  // The stream ends on an end-of-generation token: everything held is released, followed by the
  // token's own text when include_token_text (so a parser sees the stop marker).
  std::string EndOfGeneration(int32_t token, bool include_token_text);
  // The stream ends otherwise (token limit, cancellation): everything held is released.
  std::string Flush();

 private:
  const Tokenizer& tok_;
  std::vector<std::string> stops_;
  StreamingDecoder decoder_;
  std::string pending_;
};

}  // namespace g4
