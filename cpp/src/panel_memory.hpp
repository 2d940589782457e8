// Memory for an index's panels: 64-byte aligned, and where a panel spans megabytes, on 2 MB
// boundaries with transparent huge pages asked for (Linux's `madvise` mode gives them only to
// regions that ask). Released with std::free.
#pragma once

#include <cstddef>

namespace recbatch {

// At least `bytes` (rounded up to a multiple of the alignment); throws std::bad_alloc.
void* allocate_panel_memory(std::size_t bytes);

}  // namespace recbatch
