// The stats table: columns aligned, the orders --sort names, omitted rows said, a document that
// is not the server's refused in one line.
#include "duplex/client/stats.hpp"

#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "duplex/core/errors.hpp"

namespace duplex::client {
namespace {

std::string row(int id, const std::string& peer, double age, double idle, int in, int out,
                const std::string& command = "") {
  return "{\"id\":" + std::to_string(id) + ",\"peer\":\"" + peer +
         "\",\"listener\":\"tcp://127.0.0.1:8080\",\"transport\":\"tcp\",\"protocol\":\"raw\","
         "\"service\":\"upper\",\"state\":\"open\",\"identity\":\"\",\"command\":\"" +
         command + "\",\"age_s\":" + std::to_string(age) + ",\"idle_s\":" + std::to_string(idle) +
         ",\"bytes_in\":" + std::to_string(in) + ",\"bytes_out\":" + std::to_string(out) + "}";
}

std::string doc(const std::vector<std::string>& rows, int omitted = 0) {
  std::string r;
  for (const auto& x : rows)
    r += (r.empty() ? "" : ",") + x;
  return "{\"counters\":{\"open\":3,\"accepted\":12},\"connections_total\":" +
         std::to_string(rows.size() + static_cast<std::size_t>(omitted)) +
         ",\"connections_omitted\":" + std::to_string(omitted) + ",\"connections\":[" + r + "]}";
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    out.push_back(l);
  return out;
}

const std::string kThree = doc({row(1, "10.0.0.2:1", 300, 1, 10, 10),
                                row(2, "10.0.0.1:2", 200, 150, 9000, 9000, "sleep 30"),
                                row(3, "10.0.0.3:3", 4.5, 20, 1, 1)});

TEST(StatsTable, RowsAreAlignedUnderTheirHeadingsThenTheCounters) {
  const auto t = stats_table(kThree, StatsSort::age);
  ASSERT_TRUE(t) << t.message();
  const auto lines = lines_of(*t);
  ASSERT_GE(lines.size(), 7u) << *t;
  const auto peer = lines[0].find("PEER"), in = lines[0].find("  IN") + 4;
  for (std::size_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(lines[i].substr(peer, 8), "10.0.0." + std::string(1, "213"[i - 1])) << *t;
    EXPECT_EQ(lines[i][in - 1] == ' ', false) << "IN is right-aligned: " << lines[i];
  }
  EXPECT_NE(lines[2].find("2m30s"), std::string::npos) << "idle 150 s: " << lines[2];
  EXPECT_NE(lines[2].find("sleep 30"), std::string::npos);
  EXPECT_EQ(lines[1].back(), '-') << "no command, no trailing blanks: " << lines[1];
  EXPECT_EQ(lines[4], "");
  EXPECT_EQ(lines[5], "open      3");
  EXPECT_EQ(lines[6], "accepted  12") << "counters in the server's order";
}

TEST(StatsTable, SortsAsAsked) {
  const auto first_peer = [](StatsSort s) {
    const auto t = stats_table(kThree, s);
    const auto l = lines_of(*t);
    return l.at(1).substr(l.at(0).find("PEER"), 10);
  };
  EXPECT_EQ(first_peer(StatsSort::age), "10.0.0.2:1");
  EXPECT_EQ(first_peer(StatsSort::id), "10.0.0.2:1");
  EXPECT_EQ(first_peer(StatsSort::idle), "10.0.0.1:2");
  EXPECT_EQ(first_peer(StatsSort::bytes), "10.0.0.1:2");
  EXPECT_EQ(first_peer(StatsSort::peer), "10.0.0.1:2");
  EXPECT_EQ(parse_stats_sort("idle"), StatsSort::idle);
  EXPECT_FALSE(parse_stats_sort("size"));
}

// Behind a balancer the server names it per row: a VIA column after PEER, "-" for a direct row;
// a document without the field (a direct server's rows, or an older server) has no such column.
TEST(StatsTable, AViaColumnOnlyWhenARowCameThroughABalancer) {
  std::string proxied = row(2, "203.0.113.7:4660", 3, 1, 5, 5);
  proxied.insert(proxied.find(",\"listener\""), ",\"via\":\"127.0.0.2:40112\"");
  std::string direct = row(1, "10.0.0.1:1", 9, 1, 5, 5);
  direct.insert(direct.find(",\"listener\""), ",\"via\":\"\"");
  const auto t = stats_table(doc({direct, proxied}), StatsSort::id);
  ASSERT_TRUE(t) << t.message();
  const auto lines = lines_of(*t);
  ASSERT_GE(lines.size(), 3u) << *t;
  const auto peer = lines[0].find("PEER"), via = lines[0].find("VIA"),
             listener = lines[0].find("LISTENER");
  ASSERT_NE(via, std::string::npos) << *t;
  EXPECT_LT(peer, via);
  EXPECT_LT(via, listener);
  EXPECT_EQ(lines[1].substr(via, 2), "- ") << *t;
  EXPECT_EQ(lines[2].substr(via, 15), "127.0.0.2:40112") << *t;
  EXPECT_EQ(lines[2].substr(peer, 16), "203.0.113.7:4660") << *t;
  EXPECT_EQ(lines[2].substr(listener, 20), "tcp://127.0.0.1:8080") << *t;
  const auto in = lines[0].find("  IN") + 4;
  EXPECT_NE(lines[2][in - 1], ' ') << "IN is still right-aligned: " << lines[2];

  const auto plain = stats_table(doc({direct}), StatsSort::id);
  ASSERT_TRUE(plain) << plain.message();
  EXPECT_EQ(plain->find("VIA"), std::string::npos) << *plain;
  EXPECT_EQ(*plain, *stats_table(doc({row(1, "10.0.0.1:1", 9, 1, 5, 5)}), StatsSort::id));
}

TEST(StatsTable, SaysHowManyRowsTheServerLeftOut) {
  const auto t = stats_table(doc({row(1, "a:1", 1, 1, 1, 1)}, 41), StatsSort::age);
  ASSERT_TRUE(t);
  EXPECT_NE(t->find("41 more connections not listed"), std::string::npos) << *t;
}

TEST(StatsTable, ADocumentThatIsNotTheServersIsRefused) {
  for (const std::string bad : {"", "not json", "[]", "{\"counters\":{}}",
                                "{\"counters\":{},\"connections\":[{\"id\":\"x\"}]}"}) {
    const auto t = stats_table(bad, StatsSort::age);
    ASSERT_FALSE(t) << bad;
    EXPECT_EQ(t.error(), errc::bad_message) << bad;
    EXPECT_EQ(t.message().find('\n'), std::string::npos) << t.message();
  }
}

}  // namespace
}  // namespace duplex::client
