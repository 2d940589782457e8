// What a micro-kernel's epilogue does with a block's scores besides flagging candidates: a
// template parameter of the ISA files' kernels, not a run-time flag. At d = 32 the epilogue is
// a sixth of the kernel's time, and a test per row doubled its code paths and cost registers
// (spilled pointers, eligibility words loaded ahead of the candidate test).
#pragma once

namespace recbatch::kernels {

enum class Epilogue {
    candidates,  // store a block's scores only where a row has a candidate in it
    store_all,   // store every score: the two-pass log-sum-exp rereads them
    lse,         // also fold every eligible score into the row's running log-sum-exp
};

}  // namespace recbatch::kernels
