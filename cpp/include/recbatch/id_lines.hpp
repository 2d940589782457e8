// A batch job's input lines read in one pass, without a JSON library, when they have the shape
// nearly every line has:
//
//   {"userId": "u1"}    {"itemId": "i1"}    {"userId": "u1", "itemList": ["i1", "i2"]}
//
// A JSON parser makes a Python object per member and per id (a ranking line holds up to 500
// ids); this scan only finds where each id's bytes are, so that the ids can be looked up where
// they lie (IdIndex) and only the record's own id becomes a Python string.
//
// A line is accepted only when it is exactly such an object: the id member and, where the shape
// has one, the list member, each once, in either order, JSON whitespace between tokens; every
// id a string with no escape and no control character, valid UTF-8 of 1 to max_id_chars code
// points; a list of 1 to max_list of them. Anything else (another member, an escape, a number,
// a bad length, invalid JSON) is not accepted, and the caller hands that line to a full JSON
// parser, which gives it the same meaning or the right error. So accepting never guesses: an
// accepted line means to a JSON parser exactly what the scan read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace recbatch {

struct IdLineShape {
    std::string_view id_field;    // the record's id member, e.g. "userId"
    std::string_view list_field;  // its list of ids, e.g. "itemList"; empty when there is none
    std::size_t max_id_chars;     // an id's most code points
    std::size_t max_list;         // a list's most ids
};

// Where each accepted line's ids are: spans of the scanned buffer. A line not accepted has
// id_length 0 and an empty list.
struct IdLineScan {
    std::vector<std::uint8_t> accepted;      // per line: 1 when the line has the shape
    std::vector<std::int64_t> id_start;      // per line
    std::vector<std::int64_t> id_length;     // per line
    std::vector<std::int64_t> list_offsets;  // lines + 1: line i's list is entries [list_offsets[i], list_offsets[i + 1])
    std::vector<std::int64_t> entry_start;   // per list entry
    std::vector<std::int64_t> entry_length;  // per list entry
};

// Line i is buffer[line_ends[i - 1], line_ends[i]) (line 0 starts at 0); line_ends must be
// non-decreasing and at most buffer.size() (std::invalid_argument otherwise).
IdLineScan scan_id_lines(std::string_view buffer, const std::int64_t* line_ends, std::size_t lines,
                         const IdLineShape& shape);

}  // namespace recbatch
