#include "recbatch/row_texts.hpp"

#include <cstring>
#include <stdexcept>

namespace recbatch {

RowTexts::RowTexts(const std::vector<std::string_view>& texts) {
    offsets_.reserve(texts.size() + 1);
    offsets_.push_back(0);
    std::size_t total = 0;
    for (const std::string_view text : texts) total += text.size();
    bytes_.reserve(total);
    for (const std::string_view text : texts) {
        bytes_.append(text.data(), text.size());
        offsets_.push_back(bytes_.size());
    }
}

void RowTexts::append_array(const std::int64_t* rows, std::size_t n, std::string& out,
                            const RowTexts* extra) const {
    const std::size_t limit = size() + (extra != nullptr ? extra->size() : 0);
    out.push_back('[');
    bool first = true;
    for (std::size_t j = 0; j < n; ++j) {
        if (rows[j] < 0) continue;
        const auto row = static_cast<std::size_t>(rows[j]);
        if (row >= limit) {
            throw std::out_of_range("row " + std::to_string(rows[j]) + " is past the last of " +
                                    std::to_string(limit) + " texts");
        }
        if (!first) out.push_back(',');
        first = false;
        out.append(row < size() ? text(row) : extra->text(row - size()));
    }
    out.push_back(']');
}

void append_json_string(std::string_view utf8, std::string& out) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.push_back('"');
    for (const char c : utf8) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte >= 0x20 && c != '"' && c != '\\') {
            out.push_back(c);
            continue;
        }
        out.push_back('\\');
        switch (c) {
            case '"': out.push_back('"'); break;
            case '\\': out.push_back('\\'); break;
            case '\b': out.push_back('b'); break;
            case '\t': out.push_back('t'); break;
            case '\n': out.push_back('n'); break;
            case '\f': out.push_back('f'); break;
            case '\r': out.push_back('r'); break;
            default:
                out.append("u00");
                out.push_back(kHex[byte >> 4]);
                out.push_back(kHex[byte & 15]);
        }
    }
    out.push_back('"');
}

namespace {

// "00" to "99": a score's decimals are written two at a time.
constexpr struct DigitPairs {
    char text[200] = {};
    constexpr DigitPairs() {
        for (int i = 0; i < 100; ++i) {
            text[2 * i] = static_cast<char>('0' + i / 10);
            text[2 * i + 1] = static_cast<char>('0' + i % 10);
        }
    }
} kDigitPairs;

}  // namespace

void append_score(double score, std::string& out) {
    if (!(score >= 0 && score < 9.99999995)) {  // NaN fails too
        throw std::invalid_argument("scores must be finite, >= 0 and below 10 (they are probabilities)");
    }
    // score * 1e7 rounded half to even, as NumPy's rint does. A value in [0, 2^52) plus 2^52
    // lands where the doubles are the integers, so the addition itself rounds it in the default
    // rounding mode (half to even); std::nearbyint is a library call on baseline x86-64.
    constexpr double kIntegers = 4503599627370496.0;  // 2^52
    const auto units = static_cast<std::uint32_t>((score * 1e7 + kIntegers) - kIntegers);
    const std::uint32_t fraction = units % 10000000, rest = fraction % 1000000;
    // The digits from independent divisions (not a chain of them), the decimals in pairs.
    char text[9] = {static_cast<char>('0' + units / 10000000), '.', static_cast<char>('0' + fraction / 1000000)};
    std::memcpy(text + 3, kDigitPairs.text + 2 * (rest / 10000), 2);
    std::memcpy(text + 5, kDigitPairs.text + 2 * (rest / 100 % 100), 2);
    std::memcpy(text + 7, kDigitPairs.text + 2 * (rest % 100), 2);
    // Trailing zeros dropped, one decimal kept: counted without a branch per digit.
    const std::size_t zeros = (fraction % 10 == 0) + (fraction % 100 == 0) + (fraction % 1000 == 0) +
                              (fraction % 10000 == 0) + (fraction % 100000 == 0) + (rest == 0);
    out.append(text, 9 - zeros);
}

void append_score_array(const double* scores, const std::int64_t* rows, std::size_t n, std::string& out) {
    out.push_back('[');
    bool first = true;
    for (std::size_t j = 0; j < n; ++j) {
        if (rows[j] < 0) continue;
        if (!first) out.push_back(',');
        first = false;
        append_score(scores[j], out);
    }
    out.push_back(']');
}

}  // namespace recbatch
