#include "chi_square.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

namespace g4::testing {
namespace {

// The regularized upper incomplete gamma function Q(a, x): a series for P = 1 - Q below a + 1, a
// continued fraction (modified Lentz) above (Numerical Recipes, 6.2).
double GammaQ(double a, double x) {
  if (x <= 0) return 1;
  const double front = std::exp(-x + a * std::log(x) - std::lgamma(a));
  if (x < a + 1) {
    double term = 1 / a, sum = term;
    for (double ap = a + 1; std::fabs(term) > std::fabs(sum) * 1e-16; ap += 1) {
      term *= x / ap;
      sum += term;
    }
    return std::max(0.0, 1 - front * sum);
  }
  constexpr double kTiny = 1e-300;
  double b = x + 1 - a, c = 1 / kTiny, d = 1 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    h *= d * c;
    if (std::fabs(d * c - 1) < 1e-16) break;
  }
  return front * h;
}

// (observed, expected) cells: the small ones pooled, a pool still too small merged into the smallest
// other cell.
using Cells = std::vector<std::pair<double, double>>;

Cells Pool(const Cells& all, double min_expected) {
  Cells cells;
  std::pair<double, double> pool{0, 0};
  for (const auto& c : all) {
    if (c.second >= min_expected) {
      cells.push_back(c);
    } else {
      pool.first += c.first;
      pool.second += c.second;
    }
  }
  if (pool.second >= min_expected || cells.empty()) {
    if (pool.first > 0 || pool.second > 0) cells.push_back(pool);
  } else if (pool.first > 0 || pool.second > 0) {
    auto by_expected = [](const auto& x, const auto& y) { return x.second < y.second; };
    auto smallest = std::min_element(cells.begin(), cells.end(), by_expected);
    smallest->first += pool.first;
    smallest->second += pool.second;
  }
  return cells;
}

ChiSquare Finish(double stat, int dof) {
  ChiSquare r;
  r.stat = stat;
  r.dof = dof;
  r.p = dof > 0 ? ChiSquareSurvival(stat, dof) : 1;
  return r;
}

}  // namespace

std::string ChiSquare::ToString() const {
  char buf[96];
  std::snprintf(buf, sizeof buf, "chi2 = %.2f, dof %d, p = %.3g", stat, dof, p);
  return buf;
}

double ChiSquareSurvival(double x, int dof) { return GammaQ(dof / 2.0, x / 2.0); }

ChiSquare GoodnessOfFit(const Counts& counts, const Probs& probs, double min_expected) {
  double n = 0;
  for (const auto& [k, c] : counts) {
    n += c;
    // An outcome the target never gives: no test needed.
    if (c > 0 && probs.count(k) == 0) return {std::numeric_limits<double>::infinity(), 0, 0};
  }
  Cells all;
  for (const auto& [k, p] : probs) {
    const auto it = counts.find(k);
    all.push_back({it == counts.end() ? 0.0 : it->second, n * p});
  }
  const Cells cells = Pool(all, min_expected);
  double stat = 0;
  for (const auto& [o, e] : cells) stat += (o - e) * (o - e) / e;
  return Finish(stat, static_cast<int>(cells.size()) - 1);
}

ChiSquare Homogeneity(const Counts& a, const Counts& b, int min_total) {
  Counts both = a;
  for (const auto& [k, c] : b) both[k] += c;
  double na = 0, nb = 0;
  for (const auto& [k, c] : a) na += c;
  for (const auto& [k, c] : b) nb += c;
  // Cells of the outcome totals, observed = the count in a; expected = its share of the total.
  Cells totals;
  for (const auto& [k, t] : both) {
    const auto it = a.find(k);
    totals.push_back({it == a.end() ? 0.0 : it->second, t});
  }
  const Cells cells = Pool(totals, min_total);
  double stat = 0;
  for (const auto& [oa, t] : cells) {
    const double ea = t * na / (na + nb), eb = t * nb / (na + nb), ob = t - oa;
    stat += (oa - ea) * (oa - ea) / ea + (ob - eb) * (ob - eb) / eb;
  }
  return Finish(stat, static_cast<int>(cells.size()) - 1);
}

}  // namespace g4::testing
