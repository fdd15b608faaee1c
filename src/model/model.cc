#include "model/model.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>

#include "util/thread_pool.h"

namespace g4 {


bool Model::PackingEnabled() {
  const char* no_pack = std::getenv("GEMMA4_NO_PACK");
  return no_pack == nullptr || *no_pack == '\0' || *no_pack == '0';
}

std::unique_ptr<Model> Model::Load(const std::string& path) { return Load(path, PackingEnabled()); }

std::unique_ptr<Model> Model::Load(const std::string& path, bool pack) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = gguf::File::Open(path);
  m->config_ = ReadModelConfig(*m->file_);
  m->weights_ = BindWeights(*m->file_, m->config_);
  if (pack) m->PackWeights();
  return m;
}

void Model::PackWeights() {
  ThreadPool pool;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  // Drops the file pages of a consumed range from this process (the mapping is read-only and
  // shared, so they stay in the page cache and are read back on demand, e.g. by GetRows).
  auto release = [page](const uint8_t* p, size_t n) {
    const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
    const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
    if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
  };
  ForEachMatrix(weights_, [&](Matrix& w) {
    if (w.data == nullptr || w.rows == 0) return;
    packed_.push_back(std::make_unique<kernels::PackedBuffer>(static_cast<size_t>(kernels::PackedBytes(w))));
    kernels::PackMatrix(w, packed_.back()->data(), pool, release);
    w.packed = packed_.back()->data();
  });
}

uint64_t Model::PackedBytes() const {
  uint64_t total = 0;
  for (const auto& b : packed_) total += b->size();
  return total;
}

void Model::Prefault(const std::function<void(double)>& progress) const {
  if (!packed_.empty()) {
    if (progress) progress(1.0);
    return;
  }
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
