// The chat page served at GET /: static files compiled into the binary (web/*, embedded by
// embed_web.cmake at build time), so the server needs no files on disk and no web build step.
#pragma once

#include <string_view>
#include <vector>

namespace g4::server {

struct WebAsset {
  const char* path;          // URL path: "/", "/chat.js", "/chat.css"
  const char* content_type;
  std::string_view body;
};

const std::vector<WebAsset>& WebAssets();

}  // namespace g4::server
