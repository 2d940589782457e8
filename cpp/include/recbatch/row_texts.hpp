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
    std::size_t total_bytes() const { return bytes_.size(); }

    std::string_view text(std::size_t row) const {
        return {bytes_.data() + offsets_[row], static_cast<std::size_t>(offsets_[row + 1] - offsets_[row])};
    }

    // Appends "[" + the texts of rows[0..n), comma-separated, + "]"; rows below 0 are skipped.
    // A row >= size() is extra's row - size() (texts that only some rows use, such as ids from
    // the input that the catalogue lacks, without copying the catalogue's). std::out_of_range
    // for a row past both.
    void append_array(const std::int64_t* rows, std::size_t n, std::string& out,
                      const RowTexts* extra = nullptr) const;

  private:
    std::string bytes_;
    std::vector<std::uint64_t> offsets_;
};

// Appends UTF-8 text as a JSON string, quotes included, escaped as orjson writes it (so that a
// job's ids read the same wherever they are written): \" \\ \b \t \n \f \r, the other control
// characters as \u00xx, every other byte as it is.
void append_json_string(std::string_view utf8, std::string& out);

// A score as JSON text: fixed point, rounded half to even at 7 decimals (of the float64 product
// score * 1e7), trailing zeros dropped, at least one decimal: 0.1 -> "0.1", 3.4e-06 ->
// "0.0000034", 1 -> "1.0", 1e-08 -> "0.0". Scores must be finite, >= 0 and below 9.99999995
// (std::invalid_argument otherwise): they are probabilities.
void append_score(double score, std::string& out);

// Appends "[" + the scores whose rows[j] >= 0, comma-separated, + "]".
void append_score_array(const double* scores, const std::int64_t* rows, std::size_t n, std::string& out);

}  // namespace recbatch
