#include "recbatch/row_texts.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <stdexcept>

namespace recbatch {

RowTexts::RowTexts(const std::vector<std::string_view>& texts) {
    offsets_.reserve(texts.size() + 1);
    offsets_.push_back(0);
    std::size_t total = 0;
    for (const std::string_view text : texts) total += text.size();
    bytes_.reserve(total + kPadding);
    for (const std::string_view text : texts) {
        bytes_.append(text.data(), text.size());
        offsets_.push_back(bytes_.size());
        longest_ = std::max(longest_, text.size());
    }
    bytes_.append(kPadding, '\0');
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

// "00" to "99": a score's decimals are written two at a time; and each pair's trailing zeros
// (1 for "10" ... "90", 2 for "00").
constexpr struct DigitPairs {
    char text[200] = {};
    unsigned char zeros[100] = {};
    constexpr DigitPairs() {
        for (int i = 0; i < 100; ++i) {
            text[2 * i] = static_cast<char>('0' + i / 10);
            text[2 * i + 1] = static_cast<char>('0' + i % 10);
            zeros[i] = static_cast<unsigned char>(i == 0 ? 2 : i % 10 == 0 ? 1 : 0);
        }
    }
} kDigitPairs;

// The most bytes a score takes ("d.ddddddd"), and how far past a written text the writes below
// may reach: they move fixed sizes and then step back over what the text did not need.
constexpr std::size_t kScoreBytes = 9;
constexpr std::size_t kSlack = 16;

char* put(char* at, std::string_view text) {
    if (!text.empty()) std::memcpy(at, text.data(), text.size());  // an empty view's data may be null
    return at + text.size();
}

// A RowTexts text: one 16-byte move for the short ones (their source is padded, see kPadding).
char* put_text(char* at, std::string_view text) {
    static_assert(RowTexts::kPadding >= 16 && kSlack >= 16, "a short text is moved as 16 bytes");
    // Two calls, each with its own size: a copy of the constant 16 is one load and one store,
    // where a size picked at run time is a call to memcpy for every text.
    if (text.size() <= 16)
        std::memcpy(at, text.data(), 16);
    else
        std::memcpy(at, text.data(), text.size());
    return at + text.size();
}

char* put_score(double score, char* at) {
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
    const std::uint32_t first = rest / 10000, second = rest / 100 % 100, third = rest % 100;
    at[0] = static_cast<char>('0' + units / 10000000);
    at[1] = '.';
    at[2] = static_cast<char>('0' + fraction / 1000000);
    std::memcpy(at + 3, kDigitPairs.text + 2 * first, 2);
    std::memcpy(at + 5, kDigitPairs.text + 2 * second, 2);
    std::memcpy(at + 7, kDigitPairs.text + 2 * third, 2);
    // Trailing zeros dropped, one decimal kept. Counted from the numbers, not read back from the
    // text: where the next score goes must not wait on these stores.
    const std::size_t zeros = third != 0    ? kDigitPairs.zeros[third]
                              : second != 0 ? 2 + kDigitPairs.zeros[second]
                              : first != 0  ? 4 + kDigitPairs.zeros[first]
                                            : 6;
    return at + kScoreBytes - zeros;
}

}  // namespace

void format_rows(const RowTexts& texts, const RowTexts* extra, const std::int64_t* rows, const double* scores,
                 std::size_t n, std::size_t k, const RowFormat& format, const std::string_view* prefixes,
                 std::string& out, std::size_t* ends) {
    const std::size_t own = texts.size(), limit = own + (extra != nullptr ? extra->size() : 0);
    const std::size_t longest = std::max(texts.longest(), extra != nullptr ? extra->longest() : 0);
    const std::size_t fixed = format.lead.size() + format.head.size() + format.middle.size() + format.tail.size();
    // Per row, what it can take at most: the fixed parts, its prefix, two arrays' brackets, k
    // texts and scores with their commas, and the slack of the last move.
    const std::size_t per_entry = longest + 1 + (scores != nullptr ? kScoreBytes + 1 : 0);
    out.clear();
    std::size_t used = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t need = fixed + (prefixes != nullptr ? prefixes[i].size() : 0) + 4 + k * per_entry + kSlack;
        if (used + need > out.size()) out.resize(std::max(used + need, 2 * out.size()));
        char* const start = out.data() + used;
        char* at = put(start, format.lead);
        if (prefixes != nullptr) at = put(at, prefixes[i]);
        at = put(at, format.head);
        const std::int64_t* row = rows + i * k;
        *at++ = '[';
        for (std::size_t j = 0; j < k; ++j) {
            if (row[j] < 0) continue;
            const auto entry = static_cast<std::size_t>(row[j]);
            if (entry >= limit) {
                throw std::out_of_range("row " + std::to_string(row[j]) + " is past the last of " +
                                        std::to_string(limit) + " texts");
            }
            at = put_text(at, entry < own ? texts.text(entry) : extra->text(entry - own));
            *at++ = ',';
        }
        if (at[-1] == ',') --at;  // the last comma; a '[' there means an empty array
        *at++ = ']';
        if (scores != nullptr) {
            at = put(at, format.middle);
            const double* score = scores + i * k;
            *at++ = '[';
            for (std::size_t j = 0; j < k; ++j) {
                if (row[j] < 0) continue;
                at = put_score(score[j], at);
                *at++ = ',';
            }
            if (at[-1] == ',') --at;
            *at++ = ']';
        }
        at = put(at, format.tail);
        used += static_cast<std::size_t>(at - start);
        ends[i] = used;
    }
    out.resize(used);
}

}  // namespace recbatch
