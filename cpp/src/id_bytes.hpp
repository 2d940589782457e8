// The byte work of IdIndex's lookups (id_index.cpp): a key's hash, and whether two keys of the
// same length are equal. Ids are mostly short, so up to 16 bytes are read as two words that
// cover them (overlapping where the id is shorter), with no loop and no library call: std::hash
// and memcmp were calls for every key, a third of a lookup's time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace recbatch {

// n <= 8 bytes from p as one number (byte order does not matter: only equality does).
inline std::uint64_t load_bytes(const char* p, std::size_t n) {
    std::uint64_t v = 0;
    std::memcpy(&v, p, n);
    return v;
}

// A 64 x 64-bit product folded onto 64 bits: every input bit reaches every output bit.
inline std::uint64_t fold_multiply(std::uint64_t a, std::uint64_t b) {
#if defined(__SIZEOF_INT128__)
    const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
    return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
#else
    const std::uint64_t low = a * b, mixed = (a ^ (a >> 29)) * (b | 1);
    return low ^ (mixed >> 32) ^ (mixed << 32);
#endif
}

// Spreads ids over the table as evenly as std::hash does (mean displacement measured alike on
// sequential, zero-padded, numeric and UUID ids), its low bits the slot, its high bits the tag.
inline std::uint64_t hash_id(std::string_view key) {
    constexpr std::uint64_t k0 = 0x9E3779B97F4A7C15ull, k1 = 0xC2B2AE3D27D4EB4Full, k2 = 0x165667B19E3779F9ull;
    const char* p = key.data();
    const std::size_t n = key.size();
    std::uint64_t a = 0, b = 0, h = k0 ^ n;
    if (n >= 8) {
        for (std::size_t at = 0; at + 16 < n; at += 16)
            h = fold_multiply(load_bytes(p + at, 8) ^ k1, load_bytes(p + at + 8, 8) ^ h);
        a = load_bytes(p + n - (n > 16 ? 16 : n), 8);  // the last 16 bytes, or the first 8 of a shorter id
        b = load_bytes(p + n - 8, 8);
    } else if (n >= 4) {
        a = load_bytes(p, 4);
        b = load_bytes(p + n - 4, 4);
    } else if (n > 0) {
        a = (static_cast<std::uint64_t>(static_cast<unsigned char>(p[0])) << 16) |
            (static_cast<std::uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8) | static_cast<unsigned char>(p[n - 1]);
    }
    return fold_multiply(a ^ k1, b ^ h ^ k2) * k0;
}

// An id of up to 8 bytes as one number: equal for equal bytes, different for different bytes of
// the same length (lengths are compared apart). Fixed-size loads only: a copy of n bytes, n
// known at run time, would be a call to memcpy.
inline std::uint64_t short_word(const char* p, std::size_t n) {
    if (n >= 4) return load_bytes(p, 4) | (load_bytes(p + n - 4, 4) << 32);
    if (n == 0) return 0;
    return static_cast<unsigned char>(p[0]) | (static_cast<std::uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8) |
           (static_cast<std::uint64_t>(static_cast<unsigned char>(p[n - 1])) << 16);
}

// Whether the n bytes at a and at b are equal.
inline bool same_bytes(const char* a, const char* b, std::size_t n) {
    if (n >= 8 && n <= 16) return load_bytes(a, 8) == load_bytes(b, 8) && load_bytes(a + n - 8, 8) == load_bytes(b + n - 8, 8);
    if (n >= 4 && n < 8) return load_bytes(a, 4) == load_bytes(b, 4) && load_bytes(a + n - 4, 4) == load_bytes(b + n - 4, 4);
    return n == 0 || std::memcmp(a, b, n) == 0;
}

}  // namespace recbatch
