#include "sampling/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "util/error.h"

namespace g4 {
namespace {

TEST(Sampler, GreedyTakesArgmaxLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p, 5);
  const float l[5] = {1, 3, 3, 2, -1};
  EXPECT_EQ(s.Sample(l), 1);
}

TEST(Sampler, SameSeedSameTokens) {
  SamplingParams p;
  p.seed = 42;
  p.top_k = 0;
  p.top_p = 1;
  std::vector<float> l(100);
  for (int i = 0; i < 100; ++i) l[i] = std::sin(i * 0.37f) * 2;
  Sampler a(p, 100), b(p, 100);
  std::vector<int> x, y;
  for (int i = 0; i < 50; ++i) {
    x.push_back(a.Sample(l.data()));
    y.push_back(b.Sample(l.data()));
  }
  EXPECT_EQ(x, y);
  p.seed = 43;
  Sampler c(p, 100);
  std::vector<int> z;
  for (int i = 0; i < 50; ++i) z.push_back(c.Sample(l.data()));
  EXPECT_NE(x, z);
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 1;
  p.temperature = 0.5f;
  const float l[3] = {0.0f, 0.5f, 1.0f};
  Sampler s(p, 3);
  std::map<int, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) counts[s.Sample(l)]++;
  double z = std::exp(0.0) + std::exp(1.0) + std::exp(2.0);
  for (int t = 0; t < 3; ++t) {
    const double want = std::exp(2.0 * l[t]) / z;
    EXPECT_NEAR(counts[t] / double(n), want, 0.015) << "token " << t;
  }
}

TEST(Sampler, TopKTopPMinPFilter) {
  const float l[6] = {5, 4, 3, 2, 1, 0};
  std::vector<TokenProb> d;
  {
    SamplingParams p;
    p.top_k = 2;
    p.top_p = 1;
    Sampler s(p, 6);
    s.Distribution(l, &d);
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[0].token, 0);
    EXPECT_NEAR(d[0].prob + d[1].prob, 1.0, 1e-6);
  }
  {
    SamplingParams p;
    p.top_k = 0;
    p.top_p = 0.7f;  // p0 = 0.636 < 0.7, p0 + p1 = 0.87 >= 0.7
    Sampler s(p, 6);
    s.Distribution(l, &d);
    EXPECT_EQ(d.size(), 2u);
  }
  {
    SamplingParams p;
    p.top_k = 0;
    p.top_p = 1;
    p.min_p = 0.3f;  // keeps p >= 0.3 * p0: tokens 0 (1.0) and 1 (e^-1 = 0.37)
    Sampler s(p, 6);
    s.Distribution(l, &d);
    EXPECT_EQ(d.size(), 2u);
  }
}

TEST(Sampler, PenaltiesAndBias) {
  SamplingParams p;
  p.temperature = 0;
  p.repeat_penalty = 2.0f;
  const float l[3] = {2.0f, 1.5f, 0.0f};
  Sampler s(p, 3);
  EXPECT_EQ(s.Sample(l), 0);
  s.Accept(0);  // 2.0 / 2 = 1.0 < 1.5
  EXPECT_EQ(s.Sample(l), 1);
  SamplingParams q;
  q.temperature = 0;
  q.frequency_penalty = 0.4f;
  Sampler f(q, 3);
  f.Accept(0);
  EXPECT_EQ(f.Sample(l), 0);  // 1.6 > 1.5
  f.Accept(0);
  EXPECT_EQ(f.Sample(l), 1);  // 1.2 < 1.5
  SamplingParams r;
  r.temperature = 0;
  r.logit_bias[2] = 10;
  Sampler b(r, 3);
  EXPECT_EQ(b.Sample(l), 2);
  r.logit_bias.clear();
  r.suppress = {0, 1};
  Sampler u(r, 3);
  EXPECT_EQ(u.Sample(l), 2);
}

TEST(Sampler, InvalidParametersAreErrors) {
  SamplingParams p;
  p.top_p = 0;
  EXPECT_THROW(Sampler(p, 10), g4::Error);
  p.top_p = 1;
  p.logit_bias[11] = 1;
  EXPECT_THROW(Sampler(p, 10), g4::Error);
}

}  // namespace
}  // namespace g4
