// format_rows (cpp/include/recbatch/row_texts.hpp) against a reference written the plain way:
// texts of every length around the 16-byte moves, padding, entries from `extra`, prefixes,
// scores at the rounding ties and the edges of their range, and the errors. Under the
// sanitizers, the fixed-size moves stay within the texts' padding and the buffer's slack.
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "expect.hpp"
#include "recbatch/row_texts.hpp"

namespace {

using recbatch_test::expect;

// A score as the header specifies it, digit by digit: round half to even at 7 decimals of the
// float64 product score * 1e7 (std::nearbyint in the default rounding mode), trailing zeros
// dropped, one decimal kept.
std::string score_text(double score) {
    const auto units = static_cast<long long>(std::nearbyint(score * 1e7));
    std::string decimals = std::to_string(units % 10000000);
    decimals.insert(0, 7 - decimals.size(), '0');
    while (decimals.size() > 1 && decimals.back() == '0') decimals.pop_back();
    return std::to_string(units / 10000000) + "." + decimals;
}

std::string random_text(std::mt19937_64& rng, std::size_t length) {
    std::string text(length, ' ');
    for (char& c : text) c = static_cast<char>('a' + rng() % 26);
    return text;
}

void check_random_batches() {
    std::mt19937_64 rng(11);
    for (int round = 0; round < 200; ++round) {
        // Lengths 0 to 40: below, at and past the 16-byte move.
        std::vector<std::string> own(1 + rng() % 30), more(rng() % 4);
        for (auto& text : own) text = random_text(rng, rng() % 41);
        for (auto& text : more) text = random_text(rng, rng() % 41);
        const std::vector<std::string_view> own_views(own.begin(), own.end()), more_views(more.begin(), more.end());
        const recbatch::RowTexts texts(own_views), extra(more_views);
        const std::size_t n = rng() % 8, k = 1 + rng() % 9, limit = own.size() + more.size();
        std::vector<std::int64_t> rows(n * k);
        std::vector<double> scores(n * k);
        for (std::size_t e = 0; e < n * k; ++e) {
            rows[e] = static_cast<std::int64_t>(rng() % (limit + 1)) - 1;  // -1 (padding) to limit - 1
            std::uint64_t units = rng() % 100000000, unit = 1;
            for (std::uint64_t zeros = rng() % 8; zeros > 0; --zeros) unit *= 10;
            switch (rng() % 4) {
                case 0: scores[e] = static_cast<double>(units - units % unit) / 1e7; break;  // 0-7 trailing zeros
                case 1: scores[e] = (static_cast<double>(rng() % 99999999) + 0.5) / 1e7; break;  // near ties
                case 2: scores[e] = std::uniform_real_distribution<double>(0, 1e-6)(rng); break;
                default: scores[e] = std::uniform_real_distribution<double>(0, 9.99999994)(rng);
            }
        }
        std::vector<std::string> prefixes(n);
        for (auto& prefix : prefixes) prefix = random_text(rng, rng() % 60);
        const std::vector<std::string_view> prefix_views(prefixes.begin(), prefixes.end());
        const recbatch::RowFormat format{"<", "(", "|", ")>"};
        for (const bool with_scores : {false, true}) {
            for (const bool with_prefixes : {false, true}) {
                std::string out = "left over";
                std::vector<std::size_t> ends(n);
                recbatch::format_rows(texts, more.empty() ? nullptr : &extra, rows.data(),
                                      with_scores ? scores.data() : nullptr, n, k, format,
                                      with_prefixes ? prefix_views.data() : nullptr, out, ends.data());
                std::string expected;
                for (std::size_t i = 0; i < n; ++i) {
                    std::string ids, values;
                    bool first = true;
                    for (std::size_t j = 0; j < k; ++j) {
                        const std::int64_t row = rows[i * k + j];
                        if (row < 0) continue;
                        const auto entry = static_cast<std::size_t>(row);
                        ids += (first ? "" : ",") + (entry < own.size() ? own[entry] : more[entry - own.size()]);
                        values += (first ? "" : ",") + score_text(scores[i * k + j]);
                        first = false;
                    }
                    expected += "<" + (with_prefixes ? prefixes[i] : std::string()) + "([" + ids + "]";
                    if (with_scores) expected += "|[" + values + "]";
                    expected += ")>";
                    expect(ends[i] == expected.size(), "row " + std::to_string(i) + "'s end");
                }
                expect(out == expected, "batch of round " + std::to_string(round) + ": " + out + " != " + expected);
            }
        }
    }
}

void check_scores_at_the_edges() {
    const recbatch::RowTexts texts(std::vector<std::string_view>{"a"});
    const struct {
        double score;
        const char* text;
    } cases[] = {
        {0.0, "0.0"},         {1.0, "1.0"},           {0.1, "0.1"},          {3.4e-06, "0.0000034"},
        {1e-08, "0.0"},       {5e-08, "0.0"},         {1.5e-07, "0.0000002"}, {2.5e-07, "0.0000002"},
        {9.9999999, "9.9999999"}, {9.99999994, "9.9999999"}, {0.12345675, "0.1234568"}, {0.5, "0.5"},
        {0.12, "0.12"},       {0.123, "0.123"},       {0.1234, "0.1234"},     {0.12345, "0.12345"},
        {0.123456, "0.123456"}, {2.0000001, "2.0000001"}, {0.00001, "0.00001"}, {0.0002, "0.0002"},
    };
    for (const auto& c : cases) {
        const std::int64_t row = 0;
        std::string out;
        std::size_t end = 0;
        recbatch::format_rows(texts, nullptr, &row, &c.score, 1, 1, {"", "", "", ""}, nullptr, out, &end);
        expect(out == std::string("[a][") + c.text + "]", std::string("score ") + c.text + ": " + out);
    }
}

void check_errors() {
    const recbatch::RowTexts texts(std::vector<std::string_view>{"a", "b"});
    const std::int64_t rows[] = {0, 2};
    std::string out;
    std::size_t end = 0;
    bool refused = false;
    try {
        recbatch::format_rows(texts, nullptr, rows, nullptr, 1, 2, {}, nullptr, out, &end);
    } catch (const std::out_of_range&) {
        refused = true;
    }
    expect(refused, "a row past the texts is refused");
    for (const double bad : {std::nan(""), -0.5, 10.0, 9.99999995, HUGE_VAL}) {
        const double scores[] = {0.5, bad};
        refused = false;
        const std::int64_t both[] = {0, 1};
        try {
            recbatch::format_rows(texts, nullptr, both, scores, 1, 2, {}, nullptr, out, &end);
        } catch (const std::invalid_argument&) {
            refused = true;
        }
        expect(refused, "score " + std::to_string(bad) + " is refused");
    }
}

void check_empty() {
    const recbatch::RowTexts none(std::vector<std::string_view>{});
    const std::int64_t padding[] = {-1, -1};
    std::string out = "left over";
    std::size_t end = 7;
    recbatch::format_rows(none, nullptr, padding, nullptr, 1, 2, {"", "", "", ""}, nullptr, out, &end);
    expect(out == "[]" && end == 2, "a row of padding: " + out);
    recbatch::format_rows(none, nullptr, padding, nullptr, 0, 2, {}, nullptr, out, &end);
    expect(out.empty(), "no rows: " + out);
}

}  // namespace

int main() {
    check_random_batches();
    check_scores_at_the_edges();
    check_errors();
    check_empty();
    return recbatch_test::report("test_row_texts");
}
