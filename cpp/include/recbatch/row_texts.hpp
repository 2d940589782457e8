// A job's output lines, row by row: each result row's ids (their JSON texts, encoded once per
// catalogue) joined by commas, and its scores as fixed-point text. The job layer built these in
// Python, one object per id and per score; here a whole batch is one pass over contiguous bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace recbatch {

class RowTexts {
  public:
    // One text per row (copied).
    explicit RowTexts(const std::vector<std::string_view>& texts);

    std::size_t size() const { return offsets_.size() - 1; }

    // All the texts' bytes together.
    std::size_t total_bytes() const { return offsets_.back(); }

    // The longest text's length.
    std::size_t longest() const { return longest_; }

    // Row's text. At least kPadding bytes can be read from its start, whatever its length.
    std::string_view text(std::size_t row) const {
        return {bytes_.data() + offsets_[row], static_cast<std::size_t>(offsets_[row + 1] - offsets_[row])};
    }

    // The bytes after the last text: a short text is then copied with one fixed-size move.
    static constexpr std::size_t kPadding = 16;

  private:
    std::string bytes_;
    std::vector<std::uint64_t> offsets_;
    std::size_t longest_ = 0;
};

// The fixed parts of each formatted row: lead, the row's own prefix (if any), head, the ids'
// array, then with scores middle and the scores' array, then tail.
struct RowFormat {
    std::string_view lead, head, middle, tail;
};

// Writes rows [0, n) of `rows` (n x k; entries below 0 are padding, left out with their scores)
// one after another into `out` (replaced), row i ending at ends[i]. `scores` (n x k) may be null
// (no middle and scores' array), and so may `prefixes` (n views: a job's input lines, say).
// An entry e >= texts.size() is extra's text e - texts.size(): texts that only some rows use,
// such as ids from the input that the catalogue lacks, without copying the catalogue's.
// std::out_of_range for an entry past both.
// A score is written in fixed point, rounded half to even at 7 decimals (of the float64 product
// score * 1e7), trailing zeros dropped, at least one decimal: 0.1 -> "0.1", 3.4e-06 ->
// "0.0000034", 1 -> "1.0", 1e-08 -> "0.0". Scores must be finite, >= 0 and below 9.99999995
// (std::invalid_argument otherwise): they are probabilities.
void format_rows(const RowTexts& texts, const RowTexts* extra, const std::int64_t* rows, const double* scores,
                 std::size_t n, std::size_t k, const RowFormat& format, const std::string_view* prefixes,
                 std::string& out, std::size_t* ends);

// Appends UTF-8 text as a JSON string, quotes included, escaped as orjson writes it (so that a
// job's ids read the same wherever they are written): \" \\ \b \t \n \f \r, the other control
// characters as \u00xx, every other byte as it is.
void append_json_string(std::string_view utf8, std::string& out);

}  // namespace recbatch
