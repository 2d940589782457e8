#include "recbatch/id_lines.hpp"

#include <algorithm>
#include <stdexcept>

namespace recbatch {

namespace {

// The bytes a string can hold as they are in ASCII: printable, neither the quote nor the
// backslash.
constexpr struct PlainAscii {
    bool table[256] = {};
    constexpr PlainAscii() {
        for (int c = 0x20; c < 0x80; ++c) table[c] = c != '"' && c != '\\';
    }
    constexpr bool operator[](unsigned char c) const { return table[c]; }
} kPlainAscii;

// One line's tokens, left to right. Every method returns false as soon as the line leaves the
// accepted shape; the caller then drops what the line had added.
class LineReader {
  public:
    LineReader(const char* begin, const char* end) : at_(begin), end_(end) {}

    bool take(char token) {
        skip_space();
        if (at_ == end_ || *at_ != token) return false;
        ++at_;
        return true;
    }

    bool next_is(char token) {
        skip_space();
        return at_ != end_ && *at_ == token;
    }

    bool at_end() {
        skip_space();
        return at_ == end_;
    }

    // A string with no escape and no control character, in valid UTF-8: its bytes (between the
    // quotes) and its number of code points. The checks are the strict ones of RFC 3629 (no
    // overlong forms, no surrogates, nothing past U+10FFFF), so a JSON parser that refuses a
    // line for its encoding never sees it accepted here.
    bool string(const char*& content, std::size_t& length, std::size_t& code_points) {
        if (!take('"')) return false;
        content = at_;
        code_points = 0;
        while (at_ != end_) {
            // Ids are nearly always plain ASCII: one table lookup per byte until something else.
            const char* const plain_start = at_;
            while (at_ != end_ && kPlainAscii[static_cast<unsigned char>(*at_)]) ++at_;
            code_points += static_cast<std::size_t>(at_ - plain_start);
            if (at_ == end_) break;
            const auto byte = static_cast<unsigned char>(*at_);
            if (byte == '"') {
                length = static_cast<std::size_t>(at_ - content);
                ++at_;
                return true;
            }
            ++code_points;
            if (byte < 0x80) {
                if (byte < 0x20 || byte == '\\') return false;
                ++at_;
                continue;
            }
            const std::size_t size = sequence_size(byte);
            if (size == 0 || static_cast<std::size_t>(end_ - at_) < size) return false;
            const auto second = static_cast<unsigned char>(at_[1]);
            if (second < low_second(byte) || second > high_second(byte)) return false;
            for (std::size_t i = 2; i < size; ++i) {
                if ((static_cast<unsigned char>(at_[i]) & 0xC0) != 0x80) return false;
            }
            at_ += size;
        }
        return false;  // no closing quote
    }

  private:
    void skip_space() {
        while (at_ != end_ && (*at_ == ' ' || *at_ == '\t' || *at_ == '\n' || *at_ == '\r')) ++at_;
    }

    // RFC 3629's table: the bytes a sequence has from its lead byte, and its second byte's range.
    static std::size_t sequence_size(unsigned char lead) {
        if (lead >= 0xC2 && lead <= 0xDF) return 2;
        if (lead >= 0xE0 && lead <= 0xEF) return 3;
        if (lead >= 0xF0 && lead <= 0xF4) return 4;
        return 0;
    }
    static unsigned char low_second(unsigned char lead) {
        if (lead == 0xE0) return 0xA0;  // no overlong three-byte forms
        if (lead == 0xF0) return 0x90;  // no overlong four-byte forms
        return 0x80;
    }
    static unsigned char high_second(unsigned char lead) {
        if (lead == 0xED) return 0x9F;  // no surrogates
        if (lead == 0xF4) return 0x8F;  // nothing past U+10FFFF
        return 0xBF;
    }

    const char* at_;
    const char* end_;
};

class LineScanner {
  public:
    LineScanner(std::string_view buffer, const IdLineShape& shape, IdLineScan& out)
        : base_(buffer.data()), shape_(shape), out_(out) {}

    // Appends line [begin, end)'s results to out_; a line not accepted adds nothing but its
    // per-line entries.
    void scan(const char* begin, const char* end) {
        const std::size_t entries = out_.entry_start.size();
        std::int64_t id_start = 0, id_length = 0;
        const bool ok = read(LineReader(begin, end), id_start, id_length);
        if (!ok) {
            out_.entry_start.resize(entries);
            out_.entry_length.resize(entries);
            id_start = id_length = 0;
        }
        out_.accepted.push_back(ok ? 1 : 0);
        out_.id_start.push_back(id_start);
        out_.id_length.push_back(id_length);
        out_.list_offsets.push_back(static_cast<std::int64_t>(out_.entry_start.size()));
    }

  private:
    bool id(LineReader& line, std::int64_t& start, std::int64_t& length) {
        const char* content = nullptr;
        std::size_t size = 0, code_points = 0;
        if (!line.string(content, size, code_points)) return false;
        if (code_points < 1 || code_points > shape_.max_id_chars) return false;
        start = content - base_;
        length = static_cast<std::int64_t>(size);
        return true;
    }

    bool list(LineReader& line) {
        if (!line.take('[')) return false;
        std::size_t count = 0;
        do {
            std::int64_t start = 0, length = 0;
            if (++count > shape_.max_list || !id(line, start, length)) return false;
            out_.entry_start.push_back(start);
            out_.entry_length.push_back(length);
        } while (line.take(','));
        return line.take(']');
    }

    bool read(LineReader line, std::int64_t& id_start, std::int64_t& id_length) {
        if (!line.take('{')) return false;
        bool seen_id = false, seen_list = false;
        do {
            const char* key = nullptr;
            std::size_t size = 0, code_points = 0;
            if (!line.string(key, size, code_points) || !line.take(':')) return false;
            const std::string_view name(key, size);
            if (name == shape_.id_field && !seen_id) {
                if (!id(line, id_start, id_length)) return false;
                seen_id = true;
            } else if (!shape_.list_field.empty() && name == shape_.list_field && !seen_list) {
                if (!list(line)) return false;
                seen_list = true;
            } else {
                return false;  // another member, or one given twice: a JSON parser decides
            }
        } while (line.take(','));
        if (!line.take('}') || !line.at_end()) return false;
        return seen_id && (seen_list || shape_.list_field.empty());
    }

    const char* base_;
    const IdLineShape& shape_;
    IdLineScan& out_;
};

}  // namespace

IdLineScan scan_id_lines(std::string_view buffer, const std::int64_t* line_ends, std::size_t lines,
                         const IdLineShape& shape) {
    IdLineScan out;
    out.accepted.reserve(lines);
    out.id_start.reserve(lines);
    out.id_length.reserve(lines);
    out.list_offsets.reserve(lines + 1);
    out.list_offsets.push_back(0);
    if (!shape.list_field.empty()) {
        // Room for every entry the lines can hold, so that the lists never move while they grow:
        // a list has one entry more than its commas.
        const auto bound = static_cast<std::size_t>(std::count(buffer.begin(), buffer.end(), ',')) + lines;
        out.entry_start.reserve(bound);
        out.entry_length.reserve(bound);
    }
    LineScanner scanner(buffer, shape, out);
    std::int64_t begin = 0;
    for (std::size_t i = 0; i < lines; ++i) {
        const std::int64_t end = line_ends[i];
        if (end < begin || end > static_cast<std::int64_t>(buffer.size())) {
            throw std::invalid_argument("line_ends must be non-decreasing and within the buffer");
        }
        scanner.scan(buffer.data() + begin, buffer.data() + end);
        begin = end;
    }
    return out;
}

}  // namespace recbatch
