// An incremental, validating JSON parser over bytes: it accepts a byte only when the text so far can
// still be completed to a value that matches the schema (json_schema.h), so a decoder that only ever
// picks accepted bytes can never paint itself into a corner. Two spellings are supported:
//   * JSON (RFC 8259), for response_format;
//   * the Gemma tool-call syntax (chat/gemma_syntax.h): bare keys, strings between <|"|> delimiters,
//     no escapes, for the arguments of a forced tool call.
//
// How it stays completable: object keys are drawn from the properties that are left (or free when
// additionalProperties allows), '}' only comes once every required property is there, ',' only when
// another key can follow, array counts respect minItems/maxItems, strings respect min/maxLength and
// are valid UTF-8 (escapes and surrogate pairs included), enum/const values are matched as literal
// texts, and a number's digits are accepted only while some completion still lies in its range.
// anyOf branches are followed in parallel (one parse stack per live branch).
//
// Bounds that keep generation finite and the output parseable: nesting depth 32, whitespace runs
// of at most 16 bytes in JSON and none in the Gemma syntax (the chat template writes none), numbers of at most 15 integer and 15 fraction digits (exponents (two digits) only where
// the schema sets no range), at most 32 live anyOf branches.
#pragma once

#include <bitset>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/json_schema.h"

namespace g4::server {

enum class Dialect { kJson, kGemma };

class JsonMatcher {
 public:
  // Matches one value of `root` (a node of `schema`, which the matcher keeps alive).
  JsonMatcher(std::shared_ptr<const Schema> schema, const SchemaNode* root, Dialect dialect);
  // Defined where the parse stacks are (the decoder copies matchers to test bytes).
  JsonMatcher(const JsonMatcher&);
  JsonMatcher(JsonMatcher&&) noexcept;
  JsonMatcher& operator=(const JsonMatcher&);
  JsonMatcher& operator=(JsonMatcher&&) noexcept;
  ~JsonMatcher();

  // Feeds bytes. Returns false when a byte is not allowed; the matcher is then broken, so callers
  // that only want to test feed a copy (see Accepts).
  bool Feed(std::string_view bytes);
  bool FeedByte(uint8_t byte);

  // Whether `byte` may come next (the state is unchanged).
  bool Accepts(uint8_t byte) const;
  // The bytes so far form a whole value.
  bool Complete() const;
  // The value is complete and nothing may follow it (it ended with a closing delimiter).
  bool Closed() const;

  // A shortcut for the common case of plain text inside a string: true when the matcher is inside a
  // string whose content is free (no enum, not a restricted key) and `text` is valid UTF-8 that
  // neither closes nor escapes it and fits maxLength. false means "unknown": feed a copy.
  bool FastStringAppend(std::string_view text) const;

 private:
  struct Frame;
  struct Thread;
  // kRetry: a frame was pushed and the byte goes to it; kPopRetry: the top frame ended before the
  // byte, which goes to its parent.
  enum class Result { kConsumed, kRejected, kRetry, kPopRetry };

  // Feeds one byte to a thread; appends what survives (several threads at an anyOf) to *out.
  void Run(Thread t, uint8_t b, std::vector<Thread>* out) const;
  Result Step(Thread& t, uint8_t b) const;
  Result StepValue(Thread& t, uint8_t b) const;
  Result StepObject(Thread& t, uint8_t b) const;
  Result StepArray(Thread& t, uint8_t b) const;
  Result StepString(Thread& t, uint8_t b) const;
  Result StepNumber(Thread& t, uint8_t b) const;
  Result StepLiteral(Thread& t, uint8_t b) const;
  Result StepBareKey(Thread& t, uint8_t b) const;
  // The top frame finished: pop it and tell its parent.
  void Pop(Thread& t) const;
  bool ThreadComplete(const Thread& t) const;
  bool StartKey(Thread& t, uint8_t b) const;
  bool CanAddKey(const Thread& t, const Frame& obj) const;
  bool RequiredDone(const Frame& obj) const;

  // Cached literal texts: enum values and property names in this dialect.
  const std::vector<std::string>& EnumTexts(const SchemaNode* n) const;
  const std::vector<std::string>& KeyTexts(const SchemaNode* n) const;

  struct Caches;
  std::shared_ptr<const Schema> schema_;
  Dialect dialect_;
  std::shared_ptr<Caches> caches_;
  std::vector<Thread> threads_;
};

}  // namespace g4::server
