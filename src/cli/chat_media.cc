#include "cli/chat_media.h"

#include "util/error.h"

namespace g4::cli {

ChatMedia::ChatMedia(const MediaOptions& opt, const Model& model, const Tokenizer& tok, Context& ctx)
    : opt_(opt), model_(model), tok_(tok), ctx_(ctx) {
  if (!opt.mmproj.empty() || opt.any()) Encoder();
}

const mm::MediaEncoder& ChatMedia::Encoder() {
  if (!enc_) enc_ = mm::MediaEncoder::Create(model_, opt_.mmproj, ctx_.options().math);
  return *enc_;
}

ChatMedia::Attachment ChatMedia::Embed(mm::MediaKind kind, const std::string& path) {
  mm::MediaEmbedding m = opt_.EmbedFile(Encoder(), kind, path, ctx_.pool());
  Attachment a;
  a.part = {{"type", kind == mm::MediaKind::kImage ? "image" : "audio"}, {"file", path}};
  a.summary = path + ": " + m.Describe();
  a.media = mm::ToPromptMedia(tok_, std::move(m));
  return a;
}

std::vector<ChatMedia::Attachment> ChatMedia::EmbedFlags() {
  std::vector<Attachment> out;
  for (const auto& path : opt_.images) out.push_back(Embed(mm::MediaKind::kImage, path));
  for (const auto& path : opt_.audio) out.push_back(Embed(mm::MediaKind::kAudio, path));
  return out;
}

std::vector<std::vector<PromptMedia>> ChatMedia::ForMessages(const chat::Json& messages) {
  if (!messages.is_array()) Fail("a conversation must be a JSON array of messages");
  std::vector<std::vector<PromptMedia>> out(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const chat::Json* content = messages[i].is_object() && messages[i].contains("content") ? &messages[i]["content"] : nullptr;
    if (!content || !content->is_array()) continue;
    for (size_t p = 0; p < content->size(); ++p) {
      const chat::Json& part = (*content)[p];
      const std::string type = part.is_object() ? part.value("type", "") : "";
      if (type != "image" && type != "audio") {
        if (type == "image_url" || type == "input_audio" || type == "audio_url" || type == "video" || type == "video_url") {
          Fail("messages[%zu].content[%zu]: a %s part cannot be loaded here (only {\"type\": \"image\" | \"audio\", "
               "\"file\": PATH})", i, p, type.c_str());
        }
        continue;
      }
      const auto file = part.find("file");
      if (file == part.end() || !file->is_string()) {
        Fail("messages[%zu].content[%zu]: an %s part without its \"file\"", i, p, type.c_str());
      }
      out[i].push_back(Embed(type == "image" ? mm::MediaKind::kImage : mm::MediaKind::kAudio, *file).media);
    }
  }
  return out;
}

chat::Json ChatMedia::Content(const std::string& text, const std::vector<Attachment>& attached) {
  if (attached.empty()) return text;
  chat::Json parts = chat::Json::array();
  for (const auto& a : attached) parts.push_back(a.part);
  parts.push_back({{"type", "text"}, {"text", text}});
  return parts;
}

std::vector<PromptMedia> ChatMedia::Media(std::vector<Attachment> attached) {
  std::vector<PromptMedia> out;
  for (auto& a : attached) out.push_back(std::move(a.media));
  return out;
}

}  // namespace g4::cli
