// Metric families written in the Prometheus text format (0.0.4) or OpenMetrics 1.0.0: pure,
// values in, text out. The names and help are ours (checked by the tests with promtool).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace duplex::wire {

enum class MetricsFormat { prometheus, openmetrics };

enum class MetricType { counter, gauge, histogram };

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

/// One series of a family: a value (counter, gauge), or a histogram's buckets.
struct MetricSeries {
  MetricLabels labels;
  double value = 0;
  std::vector<double> bounds;          // histogram: upper bounds, without +Inf
  std::vector<std::uint64_t> buckets;  // histogram: cumulative, bounds.size() + 1 (last: +Inf)
  double sum = 0;                      // histogram
};

struct MetricFamily {
  std::string name;  // without _total: a counter's samples get it added
  std::string help;
  MetricType type = MetricType::gauge;
  std::vector<MetricSeries> series;
};

/// The format an Accept header asks for: OpenMetrics when it names application/openmetrics-text,
/// else the Prometheus text format (what every scraper understands).
MetricsFormat choose_metrics_format(std::string_view accept) noexcept;
/// The Content-Type of a response in `format`.
std::string_view metrics_content_type(MetricsFormat format) noexcept;
/// The whole exposition (OpenMetrics' ends with "# EOF").
std::string write_metrics(const std::vector<MetricFamily>& families, MetricsFormat format);

}  // namespace duplex::wire
