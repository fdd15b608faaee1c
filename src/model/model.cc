#include "model/model.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "util/error.h"
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
  // A tied head is the embedding table: rows are looked up in its packed copy (EmbeddingRow).
  if (weights_.token_embd.data == weights_.output.data) weights_.token_embd.packed = weights_.output.packed;
  // The vectors move to private memory as well (a few MB), and then the whole file is dropped from
  // the process: a fault on a 15 KB norm vector in the mapping made its whole read-ahead window
  // resident (157 MB of the 12B's file for 2.9 MB of vectors on a machine with an 8 MB read-ahead).
  // What is still read from the file afterwards (untied embedding rows) is copied with pread.
  size_t floats = 0;
  ForEachVec(weights_, [&](const Vec& v) { floats += v.data ? static_cast<size_t>(v.n) : 0; });
  vectors_.resize(floats);
  size_t at = 0;
  ForEachVec(weights_, [&](Vec& v) {
    if (v.data == nullptr) return;
    std::copy(v.data, v.data + v.n, vectors_.data() + at);
    v.data = vectors_.data() + at;
    at += static_cast<size_t>(v.n);
  });
  // (The mapping is whole pages, so its last, partial page is released too.)
  ::madvise(const_cast<uint8_t*>(file_->base()), (file_->file_size() + page - 1) / page * page, MADV_DONTNEED);
}

void Model::EmbeddingRow(const kernels::Matrix& table, int32_t id, float* out) const {
  if (id < 0 || id >= table.rows) {
    Fail("%sembedding row %d is outside the table of %lld rows", file_->Where().c_str(), id, (long long)table.rows);
  }
  if (table.packed != nullptr) {
    kernels::GetRows(table, &id, 1, out, table.cols);
    return;
  }
  thread_local std::vector<uint8_t> row;  // [row_bytes] one row in the file's layout
  row.resize(table.row_bytes());
  file_->Read(table.row(id), row.size(), row.data());
  kernels::DequantizeRow(table.type, row.data(), out, table.cols);
}

uint64_t Model::PackedBytes() const {
  uint64_t total = 0;
  for (const auto& b : packed_) total += b->size();
  return total;
}

std::vector<kernels::ByteRange> Model::PackedRanges() const {
  std::vector<kernels::ByteRange> ranges;
  for (const auto& b : packed_) ranges.push_back({b->data(), b->size()});
  return ranges;
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
