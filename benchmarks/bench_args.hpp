// The command line the C++ benchmark tools share: a workload's shape and the run's size.
//   <tool> W1|W2|W3 [queries] [repeat] [threads] ...   (empty or zero arguments keep defaults)
// W1: 100,000 items, d 64, k 25, 1,920 queries; W2: 1,000,000, 128, 100, 480; W3: 20,000, 32,
// 10, 9,600 (the workloads of benchmarks/workloads.py at a tenth or less of their queries).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <string>

namespace bench {

struct Args {
    std::string shape;
    std::size_t m = 20000, d = 32, k = 10, n = 9600;  // W3's
    int repeat;
    std::size_t threads = 1;
};

inline Args parse_args(int argc, char** argv, int default_repeat) {
    Args a;
    a.shape = argv[1];
    if (a.shape == "W1") a.m = 100000, a.d = 64, a.k = 25, a.n = 1920;
    if (a.shape == "W2") a.m = 1000000, a.d = 128, a.k = 100, a.n = 480;
    if (argc > 2 && std::strtoul(argv[2], nullptr, 10) > 0) a.n = std::strtoul(argv[2], nullptr, 10);
    a.repeat = argc > 3 && std::atoi(argv[3]) > 0 ? std::atoi(argv[3]) : default_repeat;
    if (argc > 4 && std::atoi(argv[4]) > 0) a.threads = std::strtoul(argv[4], nullptr, 10);
    return a;
}

}  // namespace bench
