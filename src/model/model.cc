#include "model/model.h"

#include <unistd.h>

namespace g4 {

std::unique_ptr<Model> Model::Load(const std::string& path) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = gguf::File::Open(path);
  m->config_ = ReadModelConfig(*m->file_);
  m->weights_ = BindWeights(*m->file_, m->config_);
  return m;
}

void Model::Prefault(const std::function<void(double)>& progress) const {
  const size_t begin = static_cast<size_t>(file_->data_offset());
  const size_t end = file_->file_size();
  if (end <= begin) return;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  constexpr size_t kChunk = size_t{64} << 20;
  volatile uint8_t sink = 0;
  for (size_t off = begin; off < end; off += kChunk) {
    const size_t n = std::min(kChunk, end - off);
    for (size_t p = 0; p < n; p += page) sink = sink + file_->base()[off + p];
    if (progress) progress(static_cast<double>(off + n - begin) / static_cast<double>(end - begin));
  }
  (void)sink;
}

GgmlType Model::DefaultCacheType() const {
  for (const auto& l : weights_.layers) {
    if (l.wk.data) return l.wk.type == GgmlType::F32 ? GgmlType::F32 : GgmlType::F16;
  }
  return GgmlType::F16;
}

}  // namespace g4
