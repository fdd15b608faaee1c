#include "convert/quantize.h"

#include <cstring>
#include <map>
#include <memory>
#include <unistd.h>

#include "convert/convert.h"
#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace g4::convert {

std::string QuantizeGguf(const std::string& in_path, const std::string& out_path, FileType ftype, int n_threads,
                         bool quiet) {
  auto in = gguf::File::Open(in_path);
  const std::string arch = in->GetString("general.architecture");
  const int n_layer = static_cast<int>(in->GetUIntOpt(arch + ".block_count").value_or(0));
  const int n_expert = static_cast<int>(in->GetUIntOpt(arch + ".expert_count").value_or(0));
  gguf::Writer w;
  w.SetAlignment(in->alignment());
  for (const auto& kv : in->kvs()) {
    if (kv.key == "general.file_type" || kv.key == "general.alignment") continue;
    w.CopyValue(kv.key, kv.value);
  }
  w.SetUInt32("general.file_type", static_cast<uint32_t>(ftype));
  std::vector<QuantMix::TensorDesc> descs;
  for (const auto& t : in->tensors()) descs.push_back({t.name, std::vector<int64_t>(t.ne, t.ne + std::max(1, t.n_dims))});
  QuantMix mix(ftype, descs, n_layer, n_expert);
  auto pool = std::make_shared<ThreadPool>(n_threads);
  std::map<std::string, int> counts;
  uint64_t in_bytes = 0, out_bytes = 0;
  for (size_t k = 0; k < in->tensors().size(); ++k) {
    const gguf::TensorInfo* t = &in->tensors()[k];
    const GgmlType type = mix.TypeFor(k);
    if (t->ne[0] % Traits(t->type).block_size != 0) Fail("%s: tensor '%s' has a bad row length", in_path.c_str(), t->name.c_str());
    counts[TypeName(type)]++;
    in_bytes += t->nbytes;
    out_bytes += static_cast<uint64_t>(RowBytes(type, t->ne[0]) * t->Rows());
    w.AddTensor(t->name, type, descs[k].ne, [t, type, pool](uint8_t* dst, size_t nbytes) {
      if (type == t->type) {
        std::memcpy(dst, t->data, nbytes);  // unchanged: copied bit for bit
        return;
      }
      const int64_t cols = t->ne[0];
      const size_t src_row = static_cast<size_t>(RowBytes(t->type, cols));
      const size_t dst_row = static_cast<size_t>(RowBytes(type, cols));
      pool->ParallelFor(t->Rows(), 8, [&](int64_t r0, int64_t r1) {
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = r0; r < r1; ++r) {
          kernels::DequantizeRow(t->type, t->data + static_cast<size_t>(r) * src_row, row.data(), cols);
          uint8_t* out = dst + static_cast<size_t>(r) * dst_row;
          if (type == GgmlType::F32) {
            std::memcpy(out, row.data(), static_cast<size_t>(cols) * 4);
          } else {
            kernels::QuantizeRow(type, row.data(), out, cols);
          }
        }
      });
    });
  }
  const bool tty = !quiet && isatty(2);
  w.Write(out_path, [&](size_t done, size_t n) {
    if (tty || (!quiet && done == n)) DrawProgress(done, n, done < n ? in->tensors()[done].name : "done");
  });
  std::string s = FileTypeName(ftype);
  s += ":";
  for (const auto& [name, n] : counts) {
    s += " ";
    s += std::to_string(n);
    s += " ";
    s += name;
  }
  char buf[96];
  std::snprintf(buf, sizeof(buf), "; tensor data %.2f MiB -> %.2f MiB", in_bytes / 1048576.0, out_bytes / 1048576.0);
  s += buf;
  return s;
}

}  // namespace g4::convert
