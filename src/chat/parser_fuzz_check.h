// The properties the output parser must have on any input, checked by the libFuzzer target
// (parser_fuzzer.cc) and, on the committed corpus, by a normal test (parser_fuzz_corpus_test.cc).
#pragma once

#include <string_view>

namespace g4::chat {

// Throws std::logic_error describing the first violated property. The first byte of `data` picks
// the format, the initial state and how the rest is cut into pieces; the rest is the model's text:
//  * feeding it whole, byte by byte or in random pieces gives the same events, and ParseFull agrees;
//  * the events end with exactly one kEnd; a tool call has a name and object arguments that
//    serialise as JSON, and writing them in Gemma syntax and reading that back gives them again;
//  * text without '<' comes out unchanged as answer (or reasoning) text;
//  * the value parser on the raw text never fails other than by returning false.
void CheckParserProperties(std::string_view data);

}  // namespace g4::chat
