// rank_ranking_lines (cpp/include/recbatch/ranking_lines.hpp): which lines it does, and their
// output lines for a batch worked out by hand, then batches of random lines (many tasks, any
// thread count) whose output must not depend on how they are split. Under the sanitizers, every
// read stays within the lines and the model. The Python tests compare every output line with
// the job's other path (tests/jobs/test_ranking_lines.py).
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "expect.hpp"
#include "recbatch/ranking_lines.hpp"

namespace {

using recbatch_test::expect;

struct Model {
    std::vector<std::string> user_ids{"u1", "u2"}, item_ids{"a", "b", "c"};
    std::vector<float> users{1, 0, 0, 1};              // u1 = (1, 0), u2 = (0, 1)
    std::vector<float> items{2, 0, 0, 3, 2, 1};        // a = (2, 0), b = (0, 3), c = (2, 1)
    recbatch::IdIndex user_index{{user_ids.begin(), user_ids.end()}};
    recbatch::IdIndex item_index{{item_ids.begin(), item_ids.end()}};
    std::vector<double> popularity{1, 3, 0};  // a, b, c
    bool with_popularity = false;

    recbatch::RankingModel view() const {
        recbatch::RankingModel model;
        model.users = &user_index;
        model.items = &item_index;
        model.user_factors = users.data();
        model.item_factors = items.data();
        model.dim = 2;
        model.max_id_chars = 8;
        model.max_list = 4;
        if (with_popularity) model.popularity = popularity.data();
        return model;
    }
};

recbatch::RankedLines rank(const Model& model, const std::vector<std::string>& lines, std::size_t threads) {
    std::string buffer;
    std::vector<std::int64_t> ends;
    for (const std::string& line : lines) {
        buffer += line;
        ends.push_back(static_cast<std::int64_t>(buffer.size()));
    }
    const std::vector<char> exact(buffer.begin(), buffer.end());  // no slack past the last line
    recbatch::RankedLines out;
    recbatch::rank_ranking_lines(model.view(), std::string_view(exact.data(), exact.size()), ends.data(), lines.size(),
                                 threads, out);
    return out;
}

std::vector<std::string> written(const recbatch::RankedLines& out) { return {out.lines.begin(), out.lines.end()}; }

std::string score(double value) {  // 7 decimals, trailing zeros dropped (values below 1)
    std::string text = std::to_string(static_cast<long long>(std::nearbyint(value * 1e7)));
    text.insert(0, 7 - text.size(), '0');
    while (text.size() > 1 && text.back() == '0') text.pop_back();
    return "0." + text;
}

void check_by_hand() {
    const Model model;
    const std::vector<std::string> lines = {
        R"({"userId": "u1", "itemList": ["b", "new", "a", "b", "c"]})",  // a list too long: max_list is 4
        R"({"userId":"u1","itemList":["b","new","a","new"]})",
        R"({"itemList": ["c"], "userId": "stranger"})",  // unknown user: left to the caller
        R"({"userId": "u2", "itemList": ["a", "c"], "x": 1})",  // another member: left to the caller
        R"({"itemList":["a","c","b"],"userId":"u2"})",
    };
    const recbatch::RankedLines out = rank(model, lines, 2);
    expect(out.done == std::vector<std::uint8_t>{0, 1, 0, 0, 1}, "which lines are done");
    // u1: a scores 2, b 0 (new is outside, once); u2: b 3, c 1, a 0.
    const double ea = std::exp(2.0), eb = std::exp(0.0);
    const std::string first = "{\"input\":" + lines[1] + R"(,"output":{"recommendedItems":["a","b","new"],"scores":[)" +
                              score(ea / (ea + eb)) + "," + score(eb / (ea + eb)) + ",0.0]},\"error\":null}\n";
    const double e3 = std::exp(3.0), e1 = std::exp(1.0), e0 = std::exp(0.0), sum = e3 + e1 + e0;
    const std::string second = "{\"input\":" + lines[4] + R"(,"output":{"recommendedItems":["b","c","a"],"scores":[)" +
                               score(e3 / sum) + "," + score(e1 / sum) + "," + score(e0 / sum) + "]},\"error\":null}\n";
    expect(written(out) == std::vector<std::string>{first, second}, "the lines done");
}

void check_popularity() {
    Model model;
    model.with_popularity = true;
    const std::vector<std::string> lines = {
        R"({"userId": "stranger", "itemList": ["a", "new", "b", "c"]})",
        R"({"userId": "stranger", "itemList": ["c", "new"]})",  // all 0: equal shares
        R"({"userId": "u2", "itemList": ["c"]})",
    };
    const recbatch::RankedLines out = rank(model, lines, 1);
    expect(out.done == std::vector<std::uint8_t>{1, 1, 1}, "users the model lacks are ranked by popularity");
    const std::vector<std::string> expected = {
        "{\"input\":" + lines[0] + R"(,"output":{"recommendedItems":["b","a","c","new"],"scores":[0.75,0.25,0.0,0.0]},"error":null})" + "\n",
        "{\"input\":" + lines[1] + R"(,"output":{"recommendedItems":["c","new"],"scores":[1.0,0.0]},"error":null})" + "\n",
        "{\"input\":" + lines[2] + R"(,"output":{"recommendedItems":["c"],"scores":[1.0]},"error":null})" + "\n"};
    expect(written(out) == expected, "popularity shares");
}

void check_random_batches() {
    Model model;
    std::mt19937_64 rng(5);
    const std::vector<std::string> users{"u1", "u2", "nobody", "\xc3\xa9"};
    const std::vector<std::string> items{"a", "b", "c", "new", "n\xe2\x82\xac"};
    for (int round = 0; round < 20; ++round) {
        model.with_popularity = round % 2 == 1;  // users the model lacks: left, or ranked by popularity
        std::vector<std::string> lines(1 + rng() % 300);
        for (std::string& line : lines) {
            line = "{\"userId\": \"" + users[rng() % users.size()] + "\", \"itemList\": [";
            const std::size_t count = rng() % 6;  // 0 (refused) to 5 (past max_list)
            for (std::size_t j = 0; j < count; ++j) line += (j ? ",\"" : "\"") + items[rng() % items.size()] + "\"";
            line += "]}";
            if (rng() % 10 == 0) line.resize(rng() % line.size());  // cut short
        }
        const recbatch::RankedLines one = rank(model, lines, 1), many = rank(model, lines, 1 + rng() % 4);
        expect(one.done == many.done && written(one) == written(many),
               "round " + std::to_string(round) + ": the same lines on any thread count");
        std::size_t r = 0;
        for (std::size_t i = 0; i < lines.size(); ++i) {
            if (one.done[i] == 0) continue;
            expect(r < one.lines.size(), "a line for every line done");
            if (r >= one.lines.size()) break;
            const std::string line(one.lines[r++]);
            expect(line.rfind("{\"input\":" + lines[i] + ",\"output\":{\"recommendedItems\":[", 0) == 0 &&
                       line.size() > 20 && line.substr(line.size() - 17) == "]},\"error\":null}\n",
                   "round " + std::to_string(round) + ", line " + std::to_string(i) + ": " + line);
        }
        expect(r == one.lines.size(), "every line done is written once");
    }
}

void check_refused_ends() {
    const Model model;
    const std::string buffer = R"({"userId":"u1","itemList":["a"]})";
    const std::int64_t ends[] = {10, 5};
    recbatch::RankedLines out;
    bool refused = false;
    try {
        recbatch::rank_ranking_lines(model.view(), buffer, ends, 2, 1, out);
    } catch (const std::invalid_argument&) {
        refused = true;
    }
    expect(refused, "decreasing line ends are refused");
}

}  // namespace

int main() {
    check_by_hand();
    check_popularity();
    check_random_batches();
    check_refused_ends();
    return recbatch_test::report("test_ranking_lines");
}
