// The tally the C++ tests share: each check counts, the first 20 failures are printed, and the
// test's main prints "<name>: N checks, M failed" (what tests/scoring/test_sanitized_kernel.py reads).
#pragma once

#include <cstdio>
#include <string>

namespace recbatch_test {

inline int checks = 0;
inline int failures = 0;

inline void expect(bool ok, const std::string& what) {
    ++checks;
    if (ok) return;
    ++failures;
    if (failures <= 20) std::fprintf(stderr, "FAIL: %s\n", what.c_str());
}

// Prints the tally; the process's exit status.
inline int report(const char* name) {
    std::printf("%s: %d checks, %d failed\n", name, checks, failures);
    return failures == 0 ? 0 : 1;
}

}  // namespace recbatch_test
