#include "model/model.h"

namespace g4 {

std::unique_ptr<Model> Model::Load(const std::string& path) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = gguf::File::Open(path);
  m->config_ = ReadModelConfig(*m->file_);
  m->weights_ = BindWeights(*m->file_, m->config_);
  return m;
}

GgmlType Model::DefaultCacheType() const {
  for (const auto& l : weights_.layers) {
    if (l.wk.data) return l.wk.type == GgmlType::F32 ? GgmlType::F32 : GgmlType::F16;
  }
  return GgmlType::F16;
}

}  // namespace g4
