// allocate_panel_memory (cpp/src/panel_memory.cpp): every size gives 64-byte aligned memory that
// holds it, a panel of 8 MB or more starts on a 2 MB boundary (where transparent huge pages can
// back it; whether the kernel grants them is its own choice, so it is not checked), and
// std::free releases it (the sanitizers' build checks the pairing and the bounds).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "expect.hpp"
#include "panel_memory.hpp"

int main() {
    using recbatch_test::expect;
    constexpr std::size_t kMiB = std::size_t{1} << 20;
    for (std::size_t bytes : {std::size_t{0}, std::size_t{1}, std::size_t{63}, std::size_t{64}, std::size_t{1000},
                              8 * kMiB - 1, 8 * kMiB, 8 * kMiB + 3, 20 * kMiB + 64}) {
        auto* data = static_cast<unsigned char*>(recbatch::allocate_panel_memory(bytes));
        const auto address = reinterpret_cast<std::uintptr_t>(data);
        const std::string name = std::to_string(bytes) + " bytes";
        expect(data != nullptr && address % 64 == 0, name + ": 64-byte aligned");
        if (bytes >= 8 * kMiB) expect(address % (2 * kMiB) == 0, name + ": on a 2 MB boundary");
        // Every byte is there to write and read back.
        for (std::size_t i = 0; i < bytes; ++i) data[i] = static_cast<unsigned char>(i * 131u + 7u);
        bool same = true;
        for (std::size_t i = 0; i < bytes; ++i) same = same && data[i] == static_cast<unsigned char>(i * 131u + 7u);
        expect(same, name + ": holds its bytes");
        std::free(data);
    }
    return recbatch_test::report("test_panel_memory");
}
