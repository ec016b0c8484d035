// The exposition formats: https://prometheus.io/docs/instrumenting/exposition_formats/ and the
// OpenMetrics 1.0 specification. They differ for us in a counter's family name (OpenMetrics
// names the family without _total), the content type and the closing "# EOF".
#include "duplex/wire/metrics_text.hpp"

#include <cmath>

#include <fmt/format.h>

namespace duplex::wire {
namespace {

void append_escaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (quote && c == '"')
      out += "\\\"";
    else
      out += c;
  }
}

// Shortest text that reads back as the same double; integral values as "1.0", which OpenMetrics
// asks of `le` and both formats accept everywhere.
std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// A counter's or gauge's value: a whole number as one ("42"), anything else as number() does.
std::string value_text(double v) {
  if (std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < 9.0e15)
    return fmt::format("{}", static_cast<long long>(v));
  return number(v);
}

void append_labels(std::string& out, const MetricLabels& labels, std::string_view le = {}) {
  if (labels.empty() && le.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    append_escaped(out, v, true);
    out += '"';
  }
  if (!le.empty()) {
    if (!first) out += ',';
    out += "le=\"";
    out += le;
    out += '"';
  }
  out += '}';
}

void append_sample(std::string& out, std::string_view name, std::string_view suffix,
                   const MetricLabels& labels, std::string_view value, std::string_view le = {}) {
  out += name;
  out += suffix;
  append_labels(out, labels, le);
  out += ' ';
  out += value;
  out += '\n';
}

const char* type_name(MetricType t) {
  switch (t) {
    case MetricType::counter: return "counter";
    case MetricType::gauge: return "gauge";
    case MetricType::histogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

MetricsFormat choose_metrics_format(std::string_view accept) noexcept {
  return accept.find("application/openmetrics-text") != std::string_view::npos
             ? MetricsFormat::openmetrics
             : MetricsFormat::prometheus;
}

std::string_view metrics_content_type(MetricsFormat format) noexcept {
  return format == MetricsFormat::openmetrics
             ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8";
}

std::string write_metrics(const std::vector<MetricFamily>& families, MetricsFormat format) {
  std::string out;
  for (const auto& f : families) {
    const bool counter = f.type == MetricType::counter;
    // Prometheus's text format names a counter's family as its samples (with _total).
    const std::string family =
        counter && format == MetricsFormat::prometheus ? f.name + "_total" : f.name;
    out += "# HELP ";
    out += family;
    out += ' ';
    append_escaped(out, f.help, false);
    out += "\n# TYPE ";
    out += family;
    out += ' ';
    out += type_name(f.type);
    out += '\n';
    for (const auto& s : f.series) {
      if (f.type != MetricType::histogram) {
        append_sample(out, f.name, counter ? "_total" : "", s.labels, value_text(s.value));
        continue;
      }
      for (std::size_t i = 0; i < s.buckets.size(); ++i) {
        const std::string le = i < s.bounds.size() ? number(s.bounds[i]) : "+Inf";
        append_sample(out, f.name, "_bucket", s.labels, fmt::format("{}", s.buckets[i]), le);
      }
      const std::uint64_t count = s.buckets.empty() ? 0 : s.buckets.back();
      append_sample(out, f.name, "_count", s.labels, fmt::format("{}", count));
      append_sample(out, f.name, "_sum", s.labels, number(s.sum));
    }
  }
  if (format == MetricsFormat::openmetrics) out += "# EOF\n";
  return out;
}

}  // namespace duplex::wire
