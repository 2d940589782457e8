#include "recbatch/id_index.hpp"

#include <cstring>
#include <stdexcept>

#include "id_bytes.hpp"
#include "prefetch.hpp"

namespace recbatch {

namespace {

// A slot's tag: 28 bits of the hash and a 4-bit length code, the length of an id kept in its
// slot (up to kInline bytes) or kLong for one kept in bytes_.
constexpr std::size_t kInline = 8;
constexpr std::uint32_t kLong = 15;

std::uint32_t tag_of(std::uint64_t hash, std::size_t length) {
    const auto code = length <= kInline ? static_cast<std::uint32_t>(length) : kLong;
    return (static_cast<std::uint32_t>(hash >> 32) & ~std::uint32_t{15}) | code;
}

bool kept_long(std::uint32_t tag) { return (tag & 15u) == kLong; }

// How far ahead a batch lookup hashes a key and prefetches its slot; it reads that slot (now in
// cache) and prefetches the key's bytes halfway, and compares when the bytes are due.
constexpr std::size_t kAhead = 8;
constexpr std::size_t kRing = 4 * kAhead;  // hashes kept for the keys in flight (> 2 * kAhead)

}  // namespace

IdIndex::IdIndex(const std::vector<std::string_view>& ids) : count_(ids.size()) {
    if (ids.size() >= kEmpty) throw std::length_error("IdIndex holds fewer than 2^32 - 1 ids");
    std::size_t capacity = 8;
    while (capacity < 2 * ids.size()) capacity *= 2;
    slots_.assign(capacity, Slot{0, kEmpty, 0});
    mask_ = capacity - 1;
    std::size_t total = 0;
    for (const std::string_view id : ids)
        if (id.size() > kInline) total += sizeof(std::uint32_t) + id.size();
    bytes_.reserve(total);
    for (std::size_t row = 0; row < ids.size(); ++row) {
        const std::string_view id = ids[row];
        if (id.size() > 0xFFFFFFFFu) throw std::length_error("an id of IdIndex is 4 GiB or longer");
        const std::uint64_t hash = hash_id(id);
        const std::uint32_t tag = tag_of(hash, id.size());
        std::size_t at = home(hash);
        for (; slots_[at].row != kEmpty; at = (at + 1) & mask_) {
            if (slots_[at].tag == tag && same_key(slots_[at], id)) {
                throw std::invalid_argument("ids must be unique: row " + std::to_string(row) +
                                            " repeats row " + std::to_string(slots_[at].row));
            }
        }
        if (!kept_long(tag)) {
            slots_[at] = Slot{tag, static_cast<std::uint32_t>(row), short_word(id.data(), id.size())};
            continue;
        }
        slots_[at] = Slot{tag, static_cast<std::uint32_t>(row), bytes_.size()};
        const auto length = static_cast<std::uint32_t>(id.size());
        bytes_.append(reinterpret_cast<const char*>(&length), sizeof length);
        bytes_.append(id.data(), id.size());
    }
}

bool IdIndex::same_key(const Slot& slot, std::string_view key) const {
    if (!kept_long(slot.tag)) {  // ids of equal length: equal words, equal ids
        return (slot.tag & 15u) == key.size() && slot.where == short_word(key.data(), key.size());
    }
    std::uint32_t length;
    std::memcpy(&length, bytes_.data() + slot.where, sizeof length);
    return length == key.size() && same_bytes(bytes_.data() + slot.where + sizeof length, key.data(), key.size());
}

std::int64_t IdIndex::probe(std::uint64_t hash, std::string_view key) const {
    const std::uint32_t tag = tag_of(hash, key.size());
    for (std::size_t at = home(hash);; at = (at + 1) & mask_) {
        const Slot& slot = slots_[at];
        if (slot.row == kEmpty) return -1;  // the table is at most half full: a free slot comes
        if (slot.tag == tag && same_key(slot, key)) return slot.row;
    }
}

std::int64_t IdIndex::find(std::string_view key) const { return probe(hash_id(key), key); }

void IdIndex::find_many(const std::string_view* keys, std::size_t n, std::int64_t* rows) const {
    std::uint64_t hashes[kRing];
    for (std::size_t step = 0; step < n + 2 * kAhead; ++step) {
        if (step < n) {
            const std::uint64_t hash = hash_id(keys[step]);
            hashes[step % kRing] = hash;
            prefetch(&slots_[home(hash)]);
        }
        if (step >= kAhead && step - kAhead < n) {
            const std::uint64_t hash = hashes[(step - kAhead) % kRing];
            const Slot& slot = slots_[home(hash)];
            const std::uint32_t tag = tag_of(hash, keys[step - kAhead].size());
            if (slot.row != kEmpty && slot.tag == tag && kept_long(tag)) prefetch(bytes_.data() + slot.where);
        }
        if (step >= 2 * kAhead) {
            const std::size_t at = step - 2 * kAhead;
            rows[at] = probe(hashes[at % kRing], keys[at]);
        }
    }
}

}  // namespace recbatch
