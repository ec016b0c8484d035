// The exposition writer: a counter's names in each format, labels escaped, histogram lines in
// order, numbers as Prometheus reads them, and which format an Accept header gets.
#include "duplex/wire/metrics_text.hpp"

#include <gtest/gtest.h>

namespace duplex::wire {
namespace {

std::vector<MetricFamily> families() {
  MetricFamily c{"x_requests", "Requests \\ seen\nso far", MetricType::counter, {}};
  MetricSeries one;
  one.value = 3;
  c.series.push_back(one);
  MetricFamily g{"x_open", "Open", MetricType::gauge, {}};
  MetricSeries labelled;
  labelled.labels = {{"mode", "a\"b\\c\nd"}};
  labelled.value = 0.5;
  g.series.push_back(labelled);
  MetricFamily h{"x_seconds", "Time", MetricType::histogram, {}};
  MetricSeries hs;
  hs.bounds = {0.00005, 1};
  hs.buckets = {1, 2, 3};
  hs.sum = 2.25;
  h.series.push_back(hs);
  return {c, g, h};
}

TEST(MetricsText, PrometheusFormat) {
  EXPECT_EQ(write_metrics(families(), MetricsFormat::prometheus),
            "# HELP x_requests_total Requests \\\\ seen\\nso far\n"
            "# TYPE x_requests_total counter\n"
            "x_requests_total 3\n"
            "# HELP x_open Open\n"
            "# TYPE x_open gauge\n"
            "x_open{mode=\"a\\\"b\\\\c\\nd\"} 0.5\n"
            "# HELP x_seconds Time\n"
            "# TYPE x_seconds histogram\n"
            "x_seconds_bucket{le=\"5e-05\"} 1\n"
            "x_seconds_bucket{le=\"1.0\"} 2\n"
            "x_seconds_bucket{le=\"+Inf\"} 3\n"
            "x_seconds_count 3\n"
            "x_seconds_sum 2.25\n");
}

TEST(MetricsText, OpenMetricsNamesTheCounterFamilyWithoutTotalAndEnds) {
  const std::string t = write_metrics(families(), MetricsFormat::openmetrics);
  EXPECT_NE(t.find("# TYPE x_requests counter\nx_requests_total 3\n"), std::string::npos) << t;
  EXPECT_EQ(t.substr(t.size() - 6), "# EOF\n");
}

TEST(MetricsText, FormatFromAccept) {
  EXPECT_EQ(choose_metrics_format(""), MetricsFormat::prometheus);
  EXPECT_EQ(choose_metrics_format("text/plain;version=0.0.4;q=0.3,*/*;q=0.1"),
            MetricsFormat::prometheus);
  EXPECT_EQ(choose_metrics_format("application/openmetrics-text;version=1.0.0;q=0.5"),
            MetricsFormat::openmetrics);
  EXPECT_EQ(metrics_content_type(MetricsFormat::prometheus),
            "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace
}  // namespace duplex::wire
