// Pearson chi-square tests for the statistical tests of sampling: counts of outcomes (token tuples,
// or (position, token) pairs) against exact probabilities, or two samples against each other.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace g4::testing {

using Outcome = std::vector<int32_t>;
using Counts = std::map<Outcome, int>;
using Probs = std::map<Outcome, double>;

struct ChiSquare {
  double stat = 0;
  int dof = 0;
  double p = 1;  // P(X >= stat) for X ~ chi-square(dof); 0 when an outcome of probability 0 was seen
  std::string ToString() const;
};

// The upper tail of the chi-square distribution with `dof` degrees of freedom at x.
double ChiSquareSurvival(double x, int dof);

// Goodness of fit of the counts to the probabilities (summing to 1). Outcomes expected fewer than
// `min_expected` times are pooled into one cell (merged into the smallest other cell if the pool is
// still below it), so the statistic is close to its chi-square distribution.
ChiSquare GoodnessOfFit(const Counts& counts, const Probs& probs, double min_expected = 5);

// Homogeneity of two samples (a 2 x k table): are they drawn from the same distribution? Outcomes
// seen fewer than `min_total` times in both samples together are pooled into one cell.
ChiSquare Homogeneity(const Counts& a, const Counts& b, int min_total = 10);

}  // namespace g4::testing
