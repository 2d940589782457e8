#include "recbatch/row_texts.hpp"

#include <cmath>
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

void RowTexts::append_array(const std::int64_t* rows, std::size_t n, std::string& out) const {
    out.push_back('[');
    bool first = true;
    for (std::size_t j = 0; j < n; ++j) {
        if (rows[j] < 0) continue;
        if (static_cast<std::uint64_t>(rows[j]) >= size()) {
            throw std::out_of_range("row " + std::to_string(rows[j]) + " is past the last of " +
                                    std::to_string(size()) + " texts");
        }
        if (!first) out.push_back(',');
        first = false;
        out.append(text(static_cast<std::size_t>(rows[j])));
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

void append_score(double score, std::string& out) {
    if (!std::isfinite(score) || score < 0 || score >= 9.99999995) {
        throw std::invalid_argument("scores must be finite, >= 0 and below 10 (they are probabilities)");
    }
    // The default rounding mode rounds half to even, as NumPy's rint does.
    const auto units = static_cast<std::int64_t>(std::nearbyint(score * 1e7));
    char text[10] = {static_cast<char>('0' + units / 10000000), '.'};
    std::int64_t fraction = units % 10000000;
    for (int position = 8; position >= 2; --position, fraction /= 10) {
        text[position] = static_cast<char>('0' + fraction % 10);
    }
    int end = 9;
    while (end > 3 && text[end - 1] == '0') --end;  // keep "d.d" at least
    out.append(text, static_cast<std::size_t>(end));
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
