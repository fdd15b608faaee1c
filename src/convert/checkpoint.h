// A Hugging Face checkpoint folder: config.json, the weights (model.safetensors, or shards listed in
// model.safetensors.index.json), and the tokenizer files. All shards are opened up front, so a missing
// or unreadable shard is reported before anything is written.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "convert/safetensors.h"

namespace g4::convert {

class Checkpoint {
 public:
  // Opens `dir`. Throws g4::Error naming the file on a missing config.json, a missing shard, an index
  // that names a tensor its shard does not hold, or a tensor stored twice.
  static std::unique_ptr<Checkpoint> Open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const nlohmann::json& config() const { return config_; }
  // The tensor, or nullptr.
  const StTensor* Find(const std::string& name) const;
  // All tensor names, sorted.
  std::vector<std::string> Names() const;

  // Reads DIR/NAME as JSON; nullopt-like empty json (null) when the file does not exist.
  nlohmann::json ReadJson(const std::string& name, bool required) const;
  bool HasFile(const std::string& name) const;
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  std::string dir_;
  nlohmann::json config_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, const StTensor*> tensors_;
};

}  // namespace g4::convert
