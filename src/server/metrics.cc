#include "server/metrics.h"

#include <cmath>
#include <cstdio>

namespace g4::server {

namespace {

std::string Num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

void Header(std::string* out, const char* name, const char* type, const char* help) {
  *out += "# HELP ";
  *out += name;
  *out += ' ';
  *out += help;
  *out += "\n# TYPE ";
  *out += name;
  *out += ' ';
  *out += type;
  *out += '\n';
}

void Sample(std::string* out, const char* name, double v, const std::string& labels = "") {
  *out += name;
  if (!labels.empty()) {
    *out += '{';
    *out += labels;
    *out += '}';
  }
  *out += ' ';
  *out += Num(v);
  *out += '\n';
}

void Metric(std::string* out, const char* name, const char* type, const char* help, double v) {
  Header(out, name, type, help);
  Sample(out, name, v);
}

const std::vector<double> kLatencyBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
const std::vector<double> kTokenBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

}  // namespace

std::string EndpointLabel(const std::string& path) {
  static const char* kKnown[] = {"/",           "/health",       "/metrics",     "/v1/models",    "/v1/chat/completions",
                                 "/v1/completions", "/api/chat", "/api/generate", "/api/tags",     "/api/show",
                                 "/api/version", "/api/ps",       "/favicon.ico"};
  for (const char* k : kKnown) {
    if (path == k) return path;
  }
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
  if (path.rfind("/static/", 0) == 0) return "/static";
  return "other";
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::Render(const std::string& name, std::string* out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    std::string le = "le=\"";
    le += i < bounds_.size() ? Num(bounds_[i]) : "+Inf";
    le += '"';
    Sample(out, (name + "_bucket").c_str(), static_cast<double>(cumulative), le);
  }
  Sample(out, (name + "_sum").c_str(), sum_);
  Sample(out, (name + "_count").c_str(), static_cast<double>(count_));
}

Metrics::Metrics()
    : ttft_(kLatencyBuckets), tpot_(kTokenBuckets), duration_(kLatencyBuckets), queue_wait_(kLatencyBuckets) {}

void Metrics::CountRequest(const std::string& path, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{EndpointLabel(path), status}];
}

void Metrics::ObserveGeneration(const RequestResult& r) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!r.tokens.empty()) ttft_.Observe(r.t_first_token);
  if (r.tokens.size() > 1) tpot_.Observe((r.t_total - r.t_first_token) / static_cast<double>(r.tokens.size() - 1));
  duration_.Observe(r.t_total);
  queue_wait_.Observe(r.t_queue);
}

void Metrics::CountTokens(int n, double now) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto sec = static_cast<int64_t>(std::floor(now));
  const int slot = static_cast<int>(sec % kWindow);
  if (token_second_[slot] != sec) {
    token_second_[slot] = sec;
    token_count_[slot] = 0;
  }
  token_count_[slot] += static_cast<uint64_t>(n);
}

void Metrics::CountQueueFull() {
  std::lock_guard<std::mutex> lock(mu_);
  ++queue_full_;
}

double Metrics::RecentTokensPerSecond(double now) const {
  // The last kWindow whole seconds before the current one.
  const auto sec = static_cast<int64_t>(std::floor(now));
  uint64_t sum = 0;
  for (int i = 0; i < kWindow; ++i) {
    if (token_second_[i] < sec && token_second_[i] >= sec - kWindow) sum += token_count_[i];
  }
  return static_cast<double>(sum) / kWindow;
}

std::string Metrics::Render(const SchedulerStats* s, double now) const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  Header(&out, "gemma4_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
  for (const auto& [key, n] : requests_) {
    std::string labels = "endpoint=\"";
    labels += key.first;
    labels += "\",status=\"";
    labels += std::to_string(key.second);
    labels += '"';
    Sample(&out, "gemma4_requests_total", static_cast<double>(n), labels);
  }
  Metric(&out, "gemma4_requests_rejected_queue_full_total", "counter",
         "Requests refused with 429 because the queue was full.", static_cast<double>(queue_full_));
  Metric(&out, "gemma4_model_loaded", "gauge", "1 once the model is loaded and requests are served.", s ? 1 : 0);
  if (s) {
    Metric(&out, "gemma4_generations_started_total", "counter", "Generations that got a slot.",
           static_cast<double>(s->requests_started));
    Metric(&out, "gemma4_generations_finished_total", "counter", "Generations that ended normally.",
           static_cast<double>(s->requests_finished));
    Metric(&out, "gemma4_generations_cancelled_total", "counter",
           "Generations cancelled (client gone, shutdown) while queued or running.",
           static_cast<double>(s->requests_cancelled));
    Metric(&out, "gemma4_generations_failed_total", "counter", "Generations that failed.",
           static_cast<double>(s->requests_failed));
    Metric(&out, "gemma4_prompt_tokens_total", "counter", "Prompt tokens (positions) submitted.",
           static_cast<double>(s->prompt_positions));
    Metric(&out, "gemma4_prompt_tokens_evaluated_total", "counter",
           "Prompt tokens actually evaluated; the rest came from the prefix cache.",
           static_cast<double>(s->prompt_evaluated));
    Metric(&out, "gemma4_generated_tokens_total", "counter", "Tokens generated.",
           static_cast<double>(s->generated_tokens));
    Metric(&out, "gemma4_forward_steps_total", "counter", "Forward passes (each decodes every active request).",
           static_cast<double>(s->forward_steps));
    Metric(&out, "gemma4_busy_seconds_total", "counter", "Seconds spent in forward passes.", s->busy_seconds);
    Metric(&out, "gemma4_speculative_decoding", "gauge", "1 when the server drafts tokens (--draft / --draft-mode).",
           s->drafting ? 1 : 0);
    Metric(&out, "gemma4_draft_tokens_total", "counter", "Tokens drafted (speculative decoding).",
           static_cast<double>(s->draft_tokens));
    Metric(&out, "gemma4_draft_accepted_tokens_total", "counter", "Drafted tokens the target accepted.",
           static_cast<double>(s->draft_accepted));
    Metric(&out, "gemma4_draft_acceptance_ratio", "gauge", "Accepted over drafted tokens, since start.",
           s->draft_tokens > 0 ? static_cast<double>(s->draft_accepted) / static_cast<double>(s->draft_tokens) : 0);
    Metric(&out, "gemma4_target_decode_steps_total", "counter",
           "Decode steps of generating requests (one request in one forward pass).",
           static_cast<double>(s->decode_steps));
    Metric(&out, "gemma4_tokens_per_target_forward", "gauge",
           "Tokens a generating request gets per forward pass of the target (1 without drafting), since start.",
           s->decode_steps > 0 ? static_cast<double>(s->decode_tokens) / static_cast<double>(s->decode_steps) : 0);
    Metric(&out, "gemma4_queue_depth", "gauge", "Requests waiting for a slot.", s->queued);
    Metric(&out, "gemma4_slots_active", "gauge", "Slots generating or reading a prompt.", s->active);
    Metric(&out, "gemma4_slots_total", "gauge", "Slots (--parallel).", s->n_slots);
    Metric(&out, "gemma4_kv_cache_tokens", "gauge", "Positions held in the KV cache, all slots (kept for reuse too).",
           static_cast<double>(s->kv_positions));
    Metric(&out, "gemma4_kv_cache_capacity_tokens", "gauge", "Positions the KV cache can hold (slots x context).",
           static_cast<double>(s->kv_capacity));
    Metric(&out, "gemma4_kv_cache_usage_ratio", "gauge", "KV cache positions used over capacity.",
           s->kv_capacity > 0 ? static_cast<double>(s->kv_positions) / static_cast<double>(s->kv_capacity) : 0);
    Metric(&out, "gemma4_kv_cache_bytes", "gauge", "KV cache memory allocated.", static_cast<double>(s->kv_bytes));
    Metric(&out, "gemma4_decode_tokens_per_second", "gauge",
           "Generated tokens per second of forward passes, since start.",
           s->busy_seconds > 0 ? static_cast<double>(s->generated_tokens) / s->busy_seconds : 0);
  }
  Metric(&out, "gemma4_recent_tokens_per_second", "gauge", "Tokens delivered per second over the last 10 seconds.",
         RecentTokensPerSecond(now));
  Header(&out, "gemma4_time_to_first_token_seconds", "histogram", "Seconds from submission to the first token.");
  ttft_.Render("gemma4_time_to_first_token_seconds", &out);
  Header(&out, "gemma4_time_per_output_token_seconds", "histogram", "Seconds per generated token after the first.");
  tpot_.Render("gemma4_time_per_output_token_seconds", &out);
  Header(&out, "gemma4_generation_duration_seconds", "histogram", "Seconds from submission to the last token.");
  duration_.Render("gemma4_generation_duration_seconds", &out);
  Header(&out, "gemma4_queue_wait_seconds", "histogram", "Seconds waiting for a slot.");
  queue_wait_.Render("gemma4_queue_wait_seconds", &out);
  return out;
}

}  // namespace g4::server
