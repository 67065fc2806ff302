// bench_summary.hpp: what the benchmark programs print after Google
// Benchmark's own table — one line per comparison, with the figures, their
// ratio and the target. The figures are the fastest repetition (CPU time per
// iteration): on a shared machine noise only ever adds time, so the minimum
// is the best estimate of the cost and the ratio of two minima the most
// stable comparison. Medians are printed next to them to show the spread.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace moss_bench {

// collecting_reporter prints like the console reporter and remembers, per
// benchmark, the fastest and the median CPU time per iteration (in the
// benchmark's time unit, nanoseconds here) and the counters of its last run.
class collecting_reporter : public benchmark::ConsoleReporter {
 public:
  struct figures {
    double min = std::numeric_limits<double>::infinity();
    double median = std::numeric_limits<double>::quiet_NaN();
    benchmark::UserCounters counters;
  };

  // real_time: summarize wall-clock time instead, for comparisons where the
  // other side's cost is latency across threads, not CPU on this one.
  bool real_time = false;

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.error_occurred) {
        errors_.push_back(r.benchmark_name() + ": " + r.error_message);
        continue;
      }
      figures& f = results_[r.run_name.function_name];
      if (r.run_type == Run::RT_Iteration) {
        f.min = std::min(f.min, (real_time ? r.GetAdjustedRealTime() : r.GetAdjustedCPUTime()));
        f.counters = r.counters;
      } else if (r.aggregate_name == "min") {
        f.min = std::min(f.min, (real_time ? r.GetAdjustedRealTime() : r.GetAdjustedCPUTime()));
        f.counters = r.counters;
      } else if (r.aggregate_name == "median") {
        f.median = (real_time ? r.GetAdjustedRealTime() : r.GetAdjustedCPUTime());
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }

  const figures* find(const std::string& name) const {
    auto it = results_.find(name);
    return it == results_.end() || it->second.min == std::numeric_limits<double>::infinity() ? nullptr : &it->second;
  }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::map<std::string, figures> results_;
  std::vector<std::string> errors_;
};

// min_statistic: registered on every benchmark so that the fastest
// repetition survives --benchmark_report_aggregates_only.
inline double min_statistic(const std::vector<double>& v) {
  return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
}

// add() registers a benchmark in nanoseconds whose fastest repetition is
// kept as the "min" aggregate.
inline void add(const char* name, void (*fn)(benchmark::State&)) {
  benchmark::RegisterBenchmark(name, fn)->Unit(benchmark::kNanosecond)->ComputeStatistics("min", &min_statistic);
}

// median() is " (median X)", or nothing for a single repetition.
inline std::string median(const collecting_reporter::figures& f) {
  if (std::isnan(f.median)) return {};
  char buf[48];
  std::snprintf(buf, sizeof buf, " (median %.1f)", f.median);
  return buf;
}
inline std::string median_ratio(const collecting_reporter::figures& a, const collecting_reporter::figures& b) {
  if (std::isnan(a.median) || std::isnan(b.median)) return {};
  char buf[48];
  std::snprintf(buf, sizeof buf, " (medians: %.2f)", a.median / b.median);
  return buf;
}

inline const char* verdict(bool met) { return met ? "met" : "MISSED"; }

// print_ratio() prints "what: a X ns, b Y ns, ratio R (target <= T): met".
// A target of 0 means "for context, no target". Returns false if a target
// was missed; true when a figure is missing (filtered out), so a partial run
// is not reported as a miss.
inline bool print_ratio(const collecting_reporter& rep, const char* what, const std::string& a, const std::string& b,
                        double target) {
  const auto* fa = rep.find(a);
  const auto* fb = rep.find(b);
  if (fa == nullptr || fb == nullptr) return true;
  double ratio = fa->min / fb->min;
  std::printf("summary: %-30s %s %.1f ns%s, %s %.1f ns%s: ratio %.2f%s", what, a.c_str(), fa->min, median(*fa).c_str(),
              b.c_str(), fb->min, median(*fb).c_str(), ratio, median_ratio(*fa, *fb).c_str());
  if (target > 0) std::printf(" target <= %.2f: %s", target, verdict(ratio <= target));
  std::printf("\n");
  return target <= 0 || ratio <= target;
}

// print_absolute() prints "what: a X ns (target <= T ns): met".
inline bool print_absolute(const collecting_reporter& rep, const char* what, const std::string& a, double target_ns) {
  const auto* fa = rep.find(a);
  if (fa == nullptr) return true;
  std::printf("summary: %-30s %s %.1f ns%s", what, a.c_str(), fa->min, median(*fa).c_str());
  if (target_ns > 0) std::printf(" target <= %.0f ns: %s", target_ns, verdict(fa->min <= target_ns));
  std::printf("\n");
  return target_ns <= 0 || fa->min <= target_ns;
}

}  // namespace moss_bench
