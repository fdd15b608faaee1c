// The ISA-independent part of the kernels: choosing the instruction set, checking MatMul's
// arguments, the activation workspace, and splitting output rows over the thread pool.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ops.h"
#include "kernels/panel.h"
#include "kernels/scratch.h"
#include "kernels/elementwise.h"
#include "util/cpu_features.h"
#include "util/error.h"

namespace g4::kernels {

namespace {

const IsaOps* TableOf(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return ScalarOps();
    case Isa::kAvx2: return Avx2Ops();
    case Isa::kAvx512: return Avx512Ops();
  }
  return nullptr;
}

bool CpuCanRun(Isa isa) {
  const CpuFeatures& f = GetCpuFeatures();
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return f.avx2;
    case Isa::kAvx512: return f.avx512 && f.avx512_vnni;
  }
  return false;
}

Isa ChooseIsa() {
  Isa best = Isa::kScalar;
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
    if (IsaSupported(isa)) best = isa;
  }
  const char* env = std::getenv("GEMMA4_ISA");
  if (env == nullptr || *env == '\0') return best;
  const std::string want = env;
  Isa forced;
  if (want == "scalar") {
    forced = Isa::kScalar;
  } else if (want == "avx2") {
    forced = Isa::kAvx2;
  } else if (want == "avx512") {
    forced = Isa::kAvx512;
  } else {
    Fail("GEMMA4_ISA=%s: expected scalar, avx2 or avx512", env);
  }
  if (!IsaSupported(forced)) {
    Fail("GEMMA4_ISA=%s: this CPU or build cannot run %s (CPU has: %s)", env, IsaName(forced),
         GetCpuFeatures().Describe().c_str());
  }
  return forced;
}

const IsaOps& Active() {
  static const IsaOps& ops = OpsFor(ActiveIsaLevel());
  return ops;
}

// Sizes a QuantActs for n tokens of `cols` values for weight type t and points it into buffers.
void LayoutQuantActs(GgmlType t, int64_t n, int64_t cols, OwnedQuantActs* o) {
  QuantActs* a = &o->acts;
  a->wtype = t;
  a->n = n;
  a->cols = cols;
  a->group = ActGroup(t);
  a->q_stride = (cols + 63) / 64 * 64;
  a->g_stride = (cols / a->group + 15) / 16 * 16;
  const size_t ng = static_cast<size_t>(n * a->g_stride);
  a->q = o->q.Get<int8_t>(static_cast<size_t>(n * a->q_stride));
  a->d = o->d.Get<float>(ng);
  a->sum = o->sum.Get<int32_t>(ng);
  a->bias = o->bias.Get<int32_t>(ng);
  a->dsum = o->dsum.Get<float>(ng);
  a->sp = o->sp.Get<int32_t>(ng / 2);
}

bool IsQuantizedMatMulType(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q8_0:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

// Scratch memory per (thread pool, task slot of RunOnAll). A pool's slots never run concurrently
// with themselves, whichever OS threads run them, and a slot that has run a shape before does not
// allocate again. Entries of pools that no longer exist are dropped once unused when the table
// grows past a few dozen pools.
using SlotScratch = std::vector<std::unique_ptr<KernelScratch>>;
std::shared_ptr<SlotScratch> ScratchFor(const ThreadPool& pool) {
  static std::mutex mu;
  static std::map<const ThreadPool*, std::shared_ptr<SlotScratch>> table;
  std::lock_guard<std::mutex> lock(mu);
  auto& entry = table[&pool];
  if (!entry || entry->size() != static_cast<size_t>(pool.size())) {
    entry = std::make_shared<SlotScratch>();
    for (int i = 0; i < pool.size(); ++i) entry->push_back(std::make_unique<KernelScratch>());
  }
  std::shared_ptr<SlotScratch> result = entry;
  if (table.size() > 64) {
    for (auto it = table.begin(); it != table.end();) {
      it = it->second.use_count() == 1 ? table.erase(it) : std::next(it);
    }
  }
  return result;
}

// One matrix of a job: its arguments and how its panels are dealt. Tasks [first_task, first_task +
// n_big) are `big` panels each; the rest of the matrix (about the threads' last task each) goes in
// tasks of `small` panels, so that the threads finish together.
struct JobPart {
  MatMulArgs args;
  int64_t panels;
  int64_t big, small, n_big;
  int64_t first_task, n_tasks;
};

// Work shared by the threads of one MatMul or MatMulMany (captured by pointer so std::function does
// not allocate).
struct Job {
  const IsaOps* ops;
  JobPart parts[kMaxMatMulParts];
  int n_parts = 0;
  const float* x;
  QuantActs* acts[kMaxMatMulParts] = {};  // distinct activation layouts to quantize (one per type)
  int n_acts = 0;
  int64_t n_tasks = 0;
  SlotScratch* scratch;
  std::atomic<int64_t> next_task{0};
  std::atomic<int64_t> next_token{0};
};

// The panels of task `task` of part p (first_task <= task < first_task + n_tasks).
void TaskPanels(const JobPart& p, int64_t task, int64_t* p0, int64_t* p1) {
  const int64_t i = task - p.first_task;
  *p0 = i < p.n_big ? i * p.big : p.n_big * p.big + (i - p.n_big) * p.small;
  *p1 = std::min(p.panels, *p0 + (i < p.n_big ? p.big : p.small));
}

}  // namespace

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512-vnni";
  }
  return "?";
}

bool IsaSupported(Isa isa) { return TableOf(isa) != nullptr && CpuCanRun(isa); }

Isa ActiveIsaLevel() {
  static const Isa isa = ChooseIsa();
  return isa;
}

const IsaOps& OpsFor(Isa isa) {
  if (!IsaSupported(isa)) Fail("instruction set %s is not available on this CPU or build", IsaName(isa));
  return *TableOf(isa);
}

const char* ActiveIsa() { return IsaName(ActiveIsaLevel()); }

bool SupportsMatMul(GgmlType t) { return IsFloatType(t) || IsQuantizedMatMulType(t); }

void FinishQuantActs(QuantActs* a, int64_t t0, int64_t t1, int offset) {
  const int64_t ng = a->groups();
  for (int64_t t = t0; t < t1; ++t) {
    const int32_t* sum = a->sumt(t);
    const float* d = a->dt(t);
    int32_t* bias = a->bias + t * a->g_stride;
    float* dsum = a->dsum + t * a->g_stride;
    int32_t* sp = a->sp + t * (a->g_stride / 2);
    for (int64_t g = 0; g < ng; ++g) {
      bias[g] = -offset * sum[g];
      dsum[g] = d[g] * static_cast<float>(sum[g]);
    }
    for (int64_t g = ng; g < a->g_stride; ++g) {
      bias[g] = 0;
      dsum[g] = 0;
    }
    for (int64_t i = 0; i < a->g_stride / 2; ++i) {
      const int32_t lo = 2 * i < ng ? sum[2 * i] : 0, hi = 2 * i + 1 < ng ? sum[2 * i + 1] : 0;
      sp[i] = static_cast<int32_t>((static_cast<uint32_t>(lo) & 0xffffu) | (static_cast<uint32_t>(hi) << 16));
    }
  }
}

void MatMulManyIsa(Isa isa, const MatMulPart* parts, int n_parts, const float* x, int64_t ldx, int64_t n, Math math,
                   ThreadPool& pool) {
  if (n_parts < 1 || n_parts > kMaxMatMulParts) {
    Fail("MatMulMany: %d parts, expected 1 to %d", n_parts, kMaxMatMulParts);
  }
  for (int k = 0; k < n_parts; ++k) {
    const Matrix& w = parts[k].w;
    if (!SupportsMatMul(w.type)) Fail("MatMul: weight type %s is not supported", TypeName(w.type));
    const int64_t bs = Traits(w.type).block_size;
    if (w.rows < 0 || w.cols <= 0 || w.cols % bs != 0) {
      Fail("MatMul: a %s matrix needs cols a positive multiple of %lld, got %lld x %lld", TypeName(w.type),
           static_cast<long long>(bs), static_cast<long long>(w.rows), static_cast<long long>(w.cols));
    }
    if (w.cols != parts[0].w.cols) {
      Fail("MatMulMany: part %d has %lld cols, part 0 %lld", k, static_cast<long long>(w.cols),
           static_cast<long long>(parts[0].w.cols));
    }
    if (n < 0 || ldx < w.cols || parts[k].ldy < w.rows) {
      Fail("MatMul: bad shapes: n=%lld ldx=%lld (cols %lld) ldy=%lld (rows %lld)", static_cast<long long>(n),
           static_cast<long long>(ldx), static_cast<long long>(w.cols), static_cast<long long>(parts[k].ldy),
           static_cast<long long>(w.rows));
    }
    if (n > 0 && w.rows > 0 && (w.data == nullptr || x == nullptr || parts[k].y == nullptr)) {
      Fail("MatMul: null data pointer");
    }
  }
  if (n == 0) return;

  Job job;
  job.ops = &OpsFor(isa);
  job.x = x;

  // The activation workspaces belong to the calling thread (MatMul may be called from several
  // threads with different pools); they grow to the largest call and are then reused. Parts of one
  // weight type share one.
  thread_local OwnedQuantActs workspace[kMaxMatMulParts];
  GgmlType act_type[kMaxMatMulParts] = {};
  const int threads = pool.size();
  for (int k = 0; k < n_parts; ++k) {
    const Matrix& w = parts[k].w;
    if (w.rows == 0) continue;
    JobPart& p = job.parts[job.n_parts++];
    p.args = MatMulArgs{w, x, ldx, n, parts[k].y, parts[k].ldy, math, nullptr};
    if (math == Math::kFast && IsQuantizedMatMulType(w.type)) {
      int a = 0;
      while (a < job.n_acts && act_type[a] != w.type) ++a;
      if (a == job.n_acts) {
        act_type[a] = w.type;
        LayoutQuantActs(w.type, n, w.cols, &workspace[a]);
        job.acts[job.n_acts++] = &workspace[a].acts;
      }
      p.args.acts = job.acts[a];
    }
    p.panels = (w.rows + kPanelRows - 1) / kPanelRows;
    p.big = std::max<int64_t>(1, job.ops->panels_per_task(p.args, false));
    p.small = std::max<int64_t>(1, std::min(p.big, job.ops->panels_per_task(p.args, true)));
    p.n_big = std::max<int64_t>(0, p.panels - threads * p.big) / p.big;
    p.first_task = job.n_tasks;
    p.n_tasks = p.n_big + (p.panels - p.n_big * p.big + p.small - 1) / p.small;
    job.n_tasks += p.n_tasks;
  }
  if (job.n_parts == 0) return;

  const std::shared_ptr<SlotScratch> scratch = ScratchFor(pool);
  job.scratch = scratch.get();
  Job* jp = &job;
  if (n <= 8) {
    for (int a = 0; a < job.n_acts; ++a) job.ops->quantize_acts(x, ldx, 0, n, job.acts[a]);  // too little work to wake the pool for
  } else if (job.n_acts > 0) {
    pool.RunOnAll([jp](int, int) {
      // Quantize the activations, 16 tokens per grab.
      for (;;) {
        const int64_t t0 = jp->next_token.fetch_add(16, std::memory_order_relaxed);
        if (t0 >= jp->parts[0].args.n) break;
        for (int a = 0; a < jp->n_acts; ++a) {
          jp->ops->quantize_acts(jp->x, jp->parts[0].args.ldx, t0, std::min(jp->parts[0].args.n, t0 + 16), jp->acts[a]);
        }
      }
    });
  }
  pool.RunOnAll([jp](int slot, int) {
    KernelScratch* s = (*jp->scratch)[static_cast<size_t>(slot)].get();
    for (int k = 0; k < jp->n_parts; ++k) jp->ops->reserve_scratch(jp->parts[k].args, s);
    int k = 0;
    for (;;) {
      const int64_t task = jp->next_task.fetch_add(1, std::memory_order_relaxed);
      if (task >= jp->n_tasks) break;
      while (task >= jp->parts[k].first_task + jp->parts[k].n_tasks) ++k;  // tasks are claimed in order
      int64_t p0, p1;
      TaskPanels(jp->parts[k], task, &p0, &p1);
      jp->ops->matmul_panels(jp->parts[k].args, p0, p1, s);
    }
  });
}

void MatMulIsa(Isa isa, const Matrix& w, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy, Math math,
               ThreadPool& pool) {
  const MatMulPart part{w, y, ldy};
  MatMulManyIsa(isa, &part, 1, x, ldx, n, math, pool);
}

void MatMul(const Matrix& w, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy, Math math,
            ThreadPool& pool) {
  MatMulIsa(ActiveIsaLevel(), w, x, ldx, n, y, ldy, math, pool);
}

void MatMulMany(const MatMulPart* parts, int n_parts, const float* x, int64_t ldx, int64_t n, Math math,
                ThreadPool& pool) {
  MatMulManyIsa(ActiveIsaLevel(), parts, n_parts, x, ldx, n, math, pool);
}

void QuantizeActsForTest(Isa isa, GgmlType wtype, const float* x, int64_t ldx, int64_t n, int64_t cols,
                         OwnedQuantActs* out) {
  if (!IsQuantizedMatMulType(wtype)) Fail("QuantizeActsForTest: %s is not a quantized weight type", TypeName(wtype));
  if (cols % Traits(wtype).block_size != 0) Fail("QuantizeActsForTest: cols %lld", static_cast<long long>(cols));
  LayoutQuantActs(wtype, n, cols, out);
  OpsFor(isa).quantize_acts(x, ldx, 0, n, &out->acts);
}

void GetRows(const Matrix& w, const int32_t* ids, int64_t n, float* out, int64_t ldo) {
  if (ldo < w.cols) Fail("GetRows: ldo %lld < cols %lld", static_cast<long long>(ldo), static_cast<long long>(w.cols));
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= w.rows) {
      Fail("GetRows: row id %d at position %lld is outside [0, %lld)", ids[i], static_cast<long long>(i),
           static_cast<long long>(w.rows));
    }
    if (w.packed == nullptr) {
      DequantizeRow(w.type, w.row(ids[i]), out + i * ldo, w.cols);
      continue;
    }
    thread_local std::vector<uint8_t> row;  // [row_bytes] the row's blocks in the file's layout
    row.resize(w.row_bytes());
    const int64_t panel = ids[i] / kPanelRows;
    UnpackPanelRow(w.type, w.packed + panel * PanelBytes(w), w.cols / TileCols(w.type),
                   static_cast<int>(ids[i] % kPanelRows), row.data());
    DequantizeRow(w.type, row.data(), out + i * ldo, w.cols);
  }
}

float DotF32(const float* a, const float* b, int64_t n) { return Active().dot_f32(a, b, n); }

namespace {
void CheckAttn(GgmlType t, int hd) {
  if (t != GgmlType::F32 && t != GgmlType::F16 && t != GgmlType::BF16 && t != GgmlType::Q8_0 && t != GgmlType::Q4_0) {
    Fail("attention: KV cache type %s is not supported", TypeName(t));
  }
  if (hd <= 0 || hd % 32 != 0) Fail("attention: head size %d is not a positive multiple of 32", hd);
}
}  // namespace

void AttnScores(const float* q, int64_t ldq, int nq, GgmlType kt, const uint8_t* k, int64_t k_stride, int nk, int hd,
                float* s, int64_t lds, const uint8_t* also, int64_t also_stride, int64_t also_bytes) {
  CheckAttn(kt, hd);
  Active().attn_scores(q, ldq, nq, kt, k, k_stride, nk, hd, s, lds, also, also_stride, also_bytes);
}
void AttnAccumulate(const float* p, int64_t ldp, int nq, GgmlType vt, const uint8_t* v, int64_t v_stride, int nk,
                    int hd, float* acc, int64_t ldacc) {
  CheckAttn(vt, hd);
  Active().attn_accumulate(p, ldp, nq, vt, v, v_stride, nk, hd, acc, ldacc);
}
void ExpShifted(const float* x, int64_t n, float scale, float shift, float* out) {
  Active().exp_shifted(x, n, scale, shift, out);
}
void GeGluTanh(const float* gate, const float* up, int64_t n, float* out) { Active().geglu_tanh(gate, up, n, out); }
void SoftCap(const float* x, int64_t n, float cap, float* out) { Active().soft_cap(x, n, cap, out); }
void F16ToF32Row(const uint16_t* src, float* dst, int64_t n) { Active().f16_to_f32(src, dst, n); }
void F32ToF16Row(const float* src, uint16_t* dst, int64_t n) { Active().f32_to_f16(src, dst, n); }
void Bf16ToF32Row(const uint16_t* src, float* dst, int64_t n) { Active().bf16_to_f32(src, dst, n); }
void F32ToBf16Row(const float* src, uint16_t* dst, int64_t n) { Active().f32_to_bf16(src, dst, n); }

}  // namespace g4::kernels
