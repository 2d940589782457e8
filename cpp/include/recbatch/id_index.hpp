// String id -> row: the lookup a job does for every id it reads (a ranking record's itemList
// holds up to 500). A catalogue's ids outgrow the caches, and a Python dict pays three or four
// dependent cache misses per key (its index, its entry, the key object, the value object).
// Here one table slot holds the key's hash tag, its row, and the id itself when it has at most
// 8 bytes (numbers, short codes), else where its bytes are; a batch of lookups prefetches the
// slots and the bytes of the longer keys a few steps ahead, so their misses overlap instead of
// adding up, and a short id costs one miss, not two.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace recbatch {

class IdIndex {
  public:
    // Rows follow the order of `ids`, which must be unique (std::invalid_argument names the
    // first repeat). The bytes are copied: the index does not refer to `ids` afterwards.
    explicit IdIndex(const std::vector<std::string_view>& ids);

    std::size_t size() const { return count_; }

    // The row of `key`, or -1 when it is not an id of the index.
    std::int64_t find(std::string_view key) const;

    // rows[i] = find(keys[i]) for i < n, with the memory accesses of nearby keys overlapped.
    void find_many(const std::string_view* keys, std::size_t n, std::int64_t* rows) const;

  private:
    struct Slot {
        std::uint32_t tag;    // 28 bits of the hash, then the id's length code (a cheap first test)
        std::uint32_t row;    // kEmpty: a free slot
        std::uint64_t where;  // an id of up to 8 bytes: those bytes (short_word); a longer one:
                              // its place in bytes_ (a 4-byte length, then the bytes)
    };
    static constexpr std::uint32_t kEmpty = 0xFFFFFFFFu;

    std::size_t home(std::uint64_t hash) const { return static_cast<std::size_t>(hash) & mask_; }
    bool same_key(const Slot& slot, std::string_view key) const;
    std::int64_t probe(std::uint64_t hash, std::string_view key) const;

    std::vector<Slot> slots_;  // a power of two, at most half full
    std::size_t mask_ = 0;
    std::size_t count_ = 0;
    std::string bytes_;
};

}  // namespace recbatch
