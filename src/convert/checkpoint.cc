#include "convert/checkpoint.h"

#include <sys/stat.h>

#include <fstream>
#include <set>
#include <sstream>

#include "util/error.h"

namespace g4::convert {

bool Checkpoint::HasFile(const std::string& name) const {
  struct stat st;
  return stat(Path(name).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

nlohmann::json Checkpoint::ReadJson(const std::string& name, bool required) const {
  const std::string path = Path(name);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (required) Fail("%s: cannot open (the checkpoint folder needs it)", path.c_str());
    return nullptr;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    Fail("%s: not valid JSON: %s", path.c_str(), e.what());
  }
}

std::unique_ptr<Checkpoint> Checkpoint::Open(const std::string& dir) {
  std::unique_ptr<Checkpoint> c(new Checkpoint);
  c->dir_ = dir;
  while (c->dir_.size() > 1 && c->dir_.back() == '/') c->dir_.pop_back();
  struct stat st;
  if (stat(c->dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) Fail("%s: not a folder", dir.c_str());
  c->config_ = c->ReadJson("config.json", true);
  if (!c->config_.is_object()) Fail("%s: must hold a JSON object", c->Path("config.json").c_str());

  // Which files hold the weights.
  std::vector<std::string> files;
  std::map<std::string, std::string> index;  // tensor -> shard, from the index
  const std::string index_name = "model.safetensors.index.json";
  if (c->HasFile(index_name)) {
    const nlohmann::json idx = c->ReadJson(index_name, true);
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object()) {
      Fail("%s: needs a \"weight_map\" object", c->Path(index_name).c_str());
    }
    std::set<std::string> seen;
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      if (!it.value().is_string()) Fail("%s: weight_map['%s'] is not a file name", c->Path(index_name).c_str(), it.key().c_str());
      const std::string shard = it.value().get<std::string>();
      if (shard.find('/') != std::string::npos || shard == "." || shard == "..") {
        Fail("%s: weight_map['%s'] names '%s', which is not a file in the folder", c->Path(index_name).c_str(),
             it.key().c_str(), shard.c_str());
      }
      index[it.key()] = shard;
      if (seen.insert(shard).second) files.push_back(shard);
    }
    for (const auto& f : files) {
      if (!c->HasFile(f)) Fail("%s: missing shard (listed in %s)", c->Path(f).c_str(), index_name.c_str());
    }
  } else if (c->HasFile("model.safetensors")) {
    files.push_back("model.safetensors");
  } else {
    Fail("%s: no model.safetensors and no %s", dir.c_str(), index_name.c_str());
  }
  for (const auto& f : files) {
    c->shards_.push_back(SafetensorsFile::Open(c->Path(f)));
    for (const auto& [name, t] : c->shards_.back()->tensors()) {
      auto [it, inserted] = c->tensors_.emplace(name, &t);
      if (!inserted) Fail("%s: tensor '%s' is also stored in %s", c->Path(f).c_str(), name.c_str(), it->second->file->c_str());
    }
  }
  for (const auto& [name, shard] : index) {
    auto it = c->tensors_.find(name);
    if (it == c->tensors_.end() || *it->second->file != c->Path(shard)) {
      Fail("%s: the index puts tensor '%s' in this shard, but it is not there", c->Path(shard).c_str(), name.c_str());
    }
  }
  return c;
}

const StTensor* Checkpoint::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second;
}

std::vector<std::string> Checkpoint::Names() const {
  std::vector<std::string> v;
  for (const auto& [n, t] : tensors_) v.push_back(n);
  return v;
}

}  // namespace g4::convert
