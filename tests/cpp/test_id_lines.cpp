// scan_id_lines (cpp/include/recbatch/id_lines.hpp): which lines it accepts and where their ids
// are. Every rule of the shape is broken once, at each place in a line it can be; every
// accepted line's spans are checked byte for byte; a refused line adds no entries even after
// part of its list was read; UTF-8 at the edges of RFC 3629's table; a batch of random lines of
// many lengths (under the sanitizers, every read stays within its line). The Python tests check
// that the lines accepted read as a JSON parser reads them (tests/jobs/test_record_batches.py).
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "expect.hpp"
#include "recbatch/id_lines.hpp"

namespace {

using recbatch_test::expect;

const recbatch::IdLineShape kRanking{"userId", "itemList", 4, 3};
const recbatch::IdLineShape kUsers{"userId", "", 4, 3};

struct Read {
    bool accepted;
    std::string id;
    std::vector<std::string> list;
};

// Scans `lines` as one batch, each line in its own heap block so that the sanitizers see a read
// past a line's end; returns what each line gave.
std::vector<Read> scan(const std::vector<std::string>& lines, const recbatch::IdLineShape& shape) {
    std::string buffer;
    std::vector<std::int64_t> ends;
    for (const std::string& line : lines) {
        buffer += line;
        ends.push_back(static_cast<std::int64_t>(buffer.size()));
    }
    const std::vector<char> exact(buffer.begin(), buffer.end());  // no slack past the last byte
    const std::string_view view(exact.data(), exact.size());
    const recbatch::IdLineScan result = recbatch::scan_id_lines(view, ends.data(), ends.size(), shape);
    std::vector<Read> reads;
    expect(result.list_offsets.size() == lines.size() + 1 && result.list_offsets[0] == 0, "offsets' size");
    for (std::size_t i = 0; i < lines.size(); ++i) {
        Read read{result.accepted[i] != 0, std::string(view.substr(result.id_start[i], result.id_length[i])), {}};
        for (std::int64_t e = result.list_offsets[i]; e < result.list_offsets[i + 1]; ++e) {
            read.list.emplace_back(view.substr(result.entry_start[e], result.entry_length[e]));
        }
        reads.push_back(read);
    }
    return reads;
}

void accepts(const std::string& line, const std::string& id, const std::vector<std::string>& list,
             const recbatch::IdLineShape& shape = kRanking) {
    const Read read = scan({line}, shape)[0];
    expect(read.accepted && read.id == id && read.list == list, "accepts " + line);
}

void refuses(const std::string& line, const recbatch::IdLineShape& shape = kRanking) {
    // Alone and between two good lines: a refused line adds nothing, and its neighbours' spans
    // stay right.
    const std::string good = R"({"userId":"g","itemList":["h"]})";
    const std::string good_users = R"({"userId":"g"})";
    const std::string& neighbour = shape.list_field.empty() ? good_users : good;
    const std::vector<Read> reads = scan({neighbour, line, neighbour}, shape);
    const std::vector<std::string> neighbour_list =
        shape.list_field.empty() ? std::vector<std::string>{} : std::vector<std::string>{"h"};
    expect(!reads[1].accepted && reads[1].id.empty() && reads[1].list.empty(), "refuses " + line);
    for (const std::size_t i : {0, 2}) {
        expect(reads[i].accepted && reads[i].id == "g" && reads[i].list == neighbour_list, "neighbour of " + line);
    }
}

void shapes() {
    accepts(R"({"userId":"u1","itemList":["a","bc"]})", "u1", {"a", "bc"});
    accepts(R"({"itemList":["a"],"userId":"u1"})", "u1", {"a"});
    accepts(" {\t\"userId\" \r:\n\"u\" , \"itemList\" : [ \"a\" , \"b\" ] } ", "u", {"a", "b"});
    accepts(R"({"userId":"u"})", "u", {}, kUsers);
    accepts(R"({"userId":"abcd","itemList":["abcd","a","b"]})", "abcd", {"abcd", "a", "b"});  // the limits
    accepts("{\"userId\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f\",\"itemList\":[\"a\"]}",
            "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f", {"a"});  // four code points, DEL included
    // The shape broken, one rule at a time.
    refuses(R"({"userId":"u"})");                                     // no list
    refuses(R"({"itemList":["a"]})");                                 // no id
    refuses(R"({"userId":"u","itemList":["a"],"x":1})");              // another member
    refuses(R"({"userId":"u","userId":"v","itemList":["a"]})");       // a member twice
    refuses(R"({"userId":"u","itemList":["a"],"itemList":["b"]})");
    refuses(R"({"userId":"u","itemList":[]})");                       // an empty list
    refuses(R"({"userId":"u","itemList":["a","b","c","d"]})");        // too long a list
    refuses(R"({"userId":"abcde","itemList":["a"]})");                // too long an id
    refuses(R"({"userId":"u","itemList":["a","abcde"]})");
    refuses(R"({"userId":"","itemList":["a"]})");                     // empty ids
    refuses(R"({"userId":"u","itemList":["a",""]})");
    refuses(R"({"userId":"u\u0031","itemList":["a"]})");             // escapes
    refuses(R"({"userId":"u","itemList":["a\"b"]})");
    refuses(R"({"user\u0049d":"u","itemList":["a"]})");
    refuses("{\"userId\":\"u\tv\",\"itemList\":[\"a\"]}");            // a control character
    refuses(R"({"userId":7,"itemList":["a"]})");                      // other types
    refuses(R"({"userId":"u","itemList":"a"})");
    refuses(R"({"userId":"u","itemList":["a",1]})");
    refuses(R"({"userId":null,"itemList":["a"]})");
    refuses(R"({"userId":"u","itemList":["a",]})");                   // invalid JSON
    refuses(R"({"userId":"u","itemList":["a"],})");
    refuses(R"({"userId":"u" "itemList":["a"]})");
    refuses(R"({"userId":"u","itemList":["a"]} x)");
    refuses(R"({"userId":"u","itemList":["a"]}})");
    refuses(R"([{"userId":"u","itemList":["a"]}])");
    refuses("{}");
    refuses("");
    refuses("{\"userId\":\"u\"}\v", kUsers);  // \v is not JSON whitespace
    refuses(R"({"userId":"u","itemList":["a"]})", kUsers);  // a list the shape does not have
    // Every cut of a good line is refused (and read nothing past its end).
    const std::string good = R"({"userId":"u1","itemList":["a","bc"]})";
    for (std::size_t n = 0; n < good.size(); ++n) refuses(good.substr(0, n));
}

void utf8() {
    const auto line = [](const std::string& id) { return "{\"userId\":\"" + id + "\",\"itemList\":[\"a\"]}"; };
    for (const std::string& id : {"\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80",
                                  "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf"}) {
        accepts(line(id), id, {"a"});  // the edges of each row of the table
    }
    for (const std::string& id : {"\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xe0\x9f\xbf", "\xed\xa0\x80",
                                  "\xed\xbf\xbf", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
                                  "\xff", "\xc3", "\xe2\x82", "\xc3\x28", "\xe2\x28\xa1", "\xf0\x9f\x98\x28"}) {
        refuses(line(id));  // continuation bytes alone, overlong forms, surrogates, past U+10FFFF, cut
    }
    refuses("{\"userId\":\"u\",\"itemList\":[\"\xc3\"]}");  // a sequence cut by the closing quote
    refuses("{\"userId\":\"\xe2\x82");                     // ... and by the line's end
}

// Random lines from pieces, good and bad, many at once: the spans of each accepted line match
// the ids the line was built from.
void random_batches() {
    std::mt19937_64 rng(7);
    const std::vector<std::string> bad = {"\\", "\"", "\x01", "\xff", ",", "]", "}", "x"};
    for (int round = 0; round < 200; ++round) {
        std::vector<std::string> lines;
        std::vector<Read> expected;
        const std::size_t n = 1 + rng() % 40;
        for (std::size_t i = 0; i < n; ++i) {
            const auto random_id = [&] {
                std::string id(1 + rng() % 4, 'a');
                for (char& c : id) c = static_cast<char>('a' + rng() % 26);
                return id;
            };
            Read read{true, random_id(), {}};
            const std::size_t count = 1 + rng() % 3;
            std::string list = "[";
            for (std::size_t j = 0; j < count; ++j) {
                read.list.push_back(random_id());
                list += (j ? ",\"" : "\"") + read.list.back() + "\"";
            }
            list += "]";
            std::string line = "{\"userId\":\"" + read.id + "\",\"itemList\":" + list + "}";
            if (rng() % 3 == 0) {  // damage: one byte inserted somewhere
                line.insert(rng() % (line.size() + 1), bad[rng() % bad.size()]);
                read = Read{false, "", {}};
            }
            lines.push_back(line);
            expected.push_back(read);
        }
        const std::vector<Read> reads = scan(lines, kRanking);
        for (std::size_t i = 0; i < n; ++i) {
            // A damaged line may still have the shape (an "x" or a "]" inside an id): then the
            // line written back from what was read must be the line itself.
            if (!expected[i].accepted) {
                if (!reads[i].accepted) continue;
                std::string again = "{\"userId\":\"" + reads[i].id + "\",\"itemList\":[";
                for (std::size_t j = 0; j < reads[i].list.size(); ++j) {
                    again += (j ? ",\"" : "\"") + reads[i].list[j] + "\"";
                }
                expect(again + "]}" == lines[i], "damaged line read back: " + lines[i]);
                continue;
            }
            expect(reads[i].accepted && reads[i].id == expected[i].id && reads[i].list == expected[i].list,
                   "random line " + lines[i]);
        }
    }
}

void bad_ends() {
    const std::string buffer = "{\"userId\":\"u\"}";
    const std::int64_t decreasing[] = {10, 5};
    const std::int64_t past[] = {100};
    for (const auto& [ends, count] : {std::pair{decreasing, 2}, std::pair{past, 1}}) {
        bool thrown = false;
        try {
            recbatch::scan_id_lines(buffer, ends, static_cast<std::size_t>(count), kUsers);
        } catch (const std::invalid_argument&) {
            thrown = true;
        }
        expect(thrown, "line_ends checked");
    }
}

}  // namespace

int main() {
    shapes();
    utf8();
    random_batches();
    bad_ends();
    return recbatch_test::report("test_id_lines");
}
