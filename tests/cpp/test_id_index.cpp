// IdIndex (cpp/include/recbatch/id_index.hpp) against std::unordered_map on random ids: every id
// finds its row, every other key finds -1, one at a time and in batches of every length around
// the prefetch pipeline's depth; ids that share prefixes, lengths or bytes up to the last; an
// empty index; duplicates refused. The byte helpers (id_bytes.hpp) on their own: a lookup only
// compares bytes when two keys' 32-bit tags collide, too rarely for the checks above to reach
// every way two keys of one length can differ; and the hash's spread over a table.
#include <algorithm>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "expect.hpp"
#include "id_bytes.hpp"
#include "recbatch/id_index.hpp"

namespace {

using recbatch_test::expect;

std::string random_id(std::mt19937_64& rng) {
    // Mostly short ids over a small alphabet (many near-collisions), some long, some with any byte.
    const std::size_t length = rng() % 10 == 0 ? 1 + rng() % 300 : 1 + rng() % 8;
    const bool any_byte = rng() % 8 == 0;
    std::string id(length, 'a');
    for (char& c : id) c = any_byte ? static_cast<char>(rng() % 256) : static_cast<char>('a' + rng() % 3);
    return id;
}

void check(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::string> ids;
    std::unordered_map<std::string, std::int64_t> reference;
    while (ids.size() < n) {
        std::string id = random_id(rng);
        if (reference.emplace(id, static_cast<std::int64_t>(ids.size())).second) ids.push_back(std::move(id));
    }
    std::vector<std::string_view> views(ids.begin(), ids.end());
    const recbatch::IdIndex index(views);
    expect(index.size() == n, "size");

    // Keys: every id, ids with one byte changed or one byte more or less, and fresh random ones.
    std::vector<std::string> keys(ids.begin(), ids.end());
    for (std::size_t i = 0; i < ids.size(); ++i) {
        std::string changed = ids[i];
        changed.back() = static_cast<char>(changed.back() + 1);
        keys.push_back(changed);
        keys.push_back(ids[i] + "a");
        keys.push_back(ids[i].substr(0, ids[i].size() - 1));
    }
    for (std::size_t i = 0; i < n + 50; ++i) keys.push_back(random_id(rng));
    keys.emplace_back();  // the empty key
    std::shuffle(keys.begin(), keys.end(), rng);

    std::vector<std::string_view> key_views(keys.begin(), keys.end());
    std::vector<std::int64_t> expected(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
        const auto found = reference.find(keys[i]);
        expected[i] = found == reference.end() ? -1 : found->second;
        expect(index.find(keys[i]) == expected[i], "find n=" + std::to_string(n) + " key " + std::to_string(i));
    }
    // Batches of every length from 0 to 40 (the pipeline is 16 keys deep), then all at once.
    for (std::size_t length = 0; length <= 40 && length <= keys.size(); ++length) {
        std::vector<std::int64_t> rows(length + 1, -7);
        index.find_many(key_views.data(), length, rows.data());
        for (std::size_t i = 0; i < length; ++i) {
            expect(rows[i] == expected[i], "find_many n=" + std::to_string(n) + " length " + std::to_string(length));
        }
        expect(rows[length] == -7, "find_many wrote past its end");
    }
    std::vector<std::int64_t> rows(keys.size());
    index.find_many(key_views.data(), keys.size(), rows.data());
    for (std::size_t i = 0; i < keys.size(); ++i) {
        expect(rows[i] == expected[i], "find_many all, n=" + std::to_string(n) + " key " + std::to_string(i));
    }
}

void check_duplicates() {
    for (const std::vector<std::string_view>& ids :
         {std::vector<std::string_view>{"a", "b", "a"}, std::vector<std::string_view>{"x", "x"}}) {
        bool refused = false;
        try {
            recbatch::IdIndex index(ids);
        } catch (const std::invalid_argument&) {
            refused = true;
        }
        expect(refused, "a repeated id is refused");
    }
}

// Ids kept in their slot (up to 8 bytes, zero-padded) against ids that differ only by trailing
// zero bytes or by crossing the 8-byte line: all distinct, each found, the near ones not.
void check_short_ids() {
    using namespace std::string_literals;
    const std::vector<std::string> ids = {""s,         "\0"s,         "\0\0"s,        "a"s,          "a\0"s,
                                          "12345678"s, "1234567\0"s, "123456789"s, "12345678\0"s, "\0\0\0\0\0\0\0\0"s};
    const std::vector<std::string_view> views(ids.begin(), ids.end());
    const recbatch::IdIndex index(views);
    for (std::size_t row = 0; row < ids.size(); ++row) {
        expect(index.find(ids[row]) == static_cast<std::int64_t>(row), "short id " + std::to_string(row) + " found");
    }
    for (const std::string& other : {"a\0\0"s, "\0\0\0"s, "1234567"s, "12345679"s, "\0\0\0\0\0\0\0\0\0"s, "b"s}) {
        expect(index.find(other) == -1, "a near id of length " + std::to_string(other.size()) + " is not found");
    }
    std::int64_t rows[10];
    index.find_many(views.data(), views.size(), rows);
    bool all = true;
    for (std::size_t row = 0; row < ids.size(); ++row) all &= rows[row] == static_cast<std::int64_t>(row);
    expect(all, "short ids through find_many");
}

void check_empty() {
    const recbatch::IdIndex index(std::vector<std::string_view>{});
    expect(index.size() == 0, "empty size");
    expect(index.find("a") == -1 && index.find("") == -1, "empty find");
    const std::string_view keys[3] = {"a", "", "b"};
    std::int64_t rows[3] = {5, 5, 5};
    index.find_many(keys, 3, rows);
    expect(rows[0] == -1 && rows[1] == -1 && rows[2] == -1, "empty find_many");
}

// same_bytes against memcmp for every length up to 40: equal keys, and each byte changed in turn
// (every byte of a short key lies in one of the two words it reads, or in both).
void check_same_bytes(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (std::size_t n = 0; n <= 40; ++n) {
        std::string a(n, '\0');
        for (char& c : a) c = static_cast<char>(rng() % 256);
        const std::string b = a;
        bool ok = recbatch::same_bytes(a.data(), b.data(), n);
        for (std::size_t at = 0; at < n; ++at) {
            std::string changed = a;
            changed[at] = static_cast<char>(changed[at] ^ (1 << (rng() % 8)));
            ok &= !recbatch::same_bytes(a.data(), changed.data(), n) && !recbatch::same_bytes(changed.data(), a.data(), n);
        }
        expect(ok, "same_bytes, length " + std::to_string(n));
    }
}

// Sequential ids, as catalogues number them, fill a half-full table's slots as random ones would:
// few keys displaced, none far (a hash that kept the digits' patterns would pile them up).
void check_hash_spread() {
    for (const char* prefix : {"", "u", "item-", "user_000000000"}) {
        const std::size_t n = 100000, capacity = 262144;
        std::vector<char> used(capacity, 0);
        std::size_t displaced = 0, farthest = 0;
        std::uint32_t tag_bits_seen = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const std::string id = prefix + std::to_string(i);
            const std::uint64_t hash = recbatch::hash_id(id);
            tag_bits_seen |= static_cast<std::uint32_t>(hash >> 32);
            std::size_t at = hash & (capacity - 1), distance = 0;
            for (; used[at] != 0; at = (at + 1) & (capacity - 1)) ++distance;
            used[at] = 1;
            displaced += distance;
            farthest = std::max(farthest, distance);
        }
        // Linear probing at load 0.38 with a random hash: about 0.3 slots on average.
        expect(static_cast<double>(displaced) / n < 0.5 && farthest < 64, std::string("hash spread, prefix '") + prefix + "'");
        expect(tag_bits_seen == 0xFFFFFFFFu, std::string("every tag bit used, prefix '") + prefix + "'");
    }
}

}  // namespace

int main() {
    check_same_bytes(99);
    check_short_ids();
    check_hash_spread();
    check_empty();
    check_duplicates();
    std::uint64_t seed = 1;
    for (std::size_t n : {1, 2, 3, 7, 8, 9, 15, 16, 17, 100, 1000, 5000, 40000}) check(n, seed++);
    return recbatch_test::report("test_id_index");
}
