// Images and audio in `gemma4 run`'s chat: files embedded into the pieces a Conversation holds,
// and the content parts {"type": "image" | "audio", "file": PATH} that the chat template writes as
// their placeholders (the shapes the server's requests normalize to; /save keeps the file names
// and /load embeds them again).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chat/json.h"
#include "cli/media.h"
#include "engine/prompt.h"
#include "model/context.h"

namespace g4::cli {

class ChatMedia {
 public:
  // The projector is opened now when --mmproj or media are given, else at the first attachment.
  ChatMedia(const MediaOptions& opt, const Model& model, const Tokenizer& tok, Context& ctx);

  struct Attachment {
    chat::Json part;      // {"type": "image" | "audio", "file": path}
    PromptMedia media;    // its pieces
    std::string summary;  // e.g. "photo.jpg: image 640x480 -> 912x672, grid 14x19 = 266 tokens"
  };
  // Reads and embeds one file. Errors name the file; nothing changes when it fails.
  Attachment Embed(mm::MediaKind kind, const std::string& path);
  // Every --image, then every --audio.
  std::vector<Attachment> EmbedFlags();
  // The media of loaded messages (/load), per message: each image / audio part must name its file.
  std::vector<std::vector<PromptMedia>> ForMessages(const chat::Json& messages);

  // A user message: the attachments' parts, then the text (a plain string when there are none).
  static chat::Json Content(const std::string& text, const std::vector<Attachment>& attached);
  static std::vector<PromptMedia> Media(std::vector<Attachment> attached);

 private:
  const mm::MediaEncoder& Encoder();

  const MediaOptions& opt_;
  const Model& model_;
  const Tokenizer& tok_;
  Context& ctx_;
  std::unique_ptr<mm::MediaEncoder> enc_;
};

}  // namespace g4::cli
