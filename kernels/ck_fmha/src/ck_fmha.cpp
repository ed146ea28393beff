// The C ABI of rocstack_ck_fmha over ck_tile's fmha_fwd API (fmha_fwd.hpp and the generated
// fmha_fwd_api.cpp, both from the flash-attention sdist at build time; nothing of them is copied here).
//
// Compiled as HIP together with the generated instances. The build defines
// ROCSTACK_CK_FMHA_TARGETS (arch list) and ROCSTACK_CK_FMHA_INSTANCES (instance names, "\n"-joined).

#include "rocstack_ck_fmha.h"

#include "fmha_fwd.hpp"

#include <hip/hip_runtime.h>

#include <climits>
#include <string>

#if !defined(ROCSTACK_CK_FMHA_TARGETS) || !defined(ROCSTACK_CK_FMHA_INSTANCES)
#error "the build must define ROCSTACK_CK_FMHA_TARGETS and ROCSTACK_CK_FMHA_INSTANCES"
#endif

namespace {

thread_local std::string last_error;

int fail(int status, const std::string &message) {
    last_error = message;
    return status;
}

bool fits_index(int64_t v) { return v >= 0 && v <= INT_MAX; }

std::string describe(const rocstack_fmha_fwd_args &a) {
    return std::string(a.dtype == ROCSTACK_FMHA_FP16 ? "fp16" : "bf16") + " hdim " + std::to_string(a.hdim) +
           " seqlen_q " + std::to_string(a.seqlen_q) + " seqlen_k " + std::to_string(a.seqlen_k) + " mask " +
           std::to_string(static_cast<int>(a.mask));
}

int check(const rocstack_fmha_fwd_args *a) {
    if (!a) return fail(ROCSTACK_FMHA_INVALID_ARGUMENT, "fmha_fwd: null args");
    if (!a->q || !a->k || !a->v || !a->o) return fail(ROCSTACK_FMHA_INVALID_ARGUMENT, "fmha_fwd: null tensor pointer");
    if (a->dtype != ROCSTACK_FMHA_FP16 && a->dtype != ROCSTACK_FMHA_BF16)
        return fail(ROCSTACK_FMHA_INVALID_ARGUMENT, "fmha_fwd: dtype must be FP16 or BF16");
    if (a->mask != ROCSTACK_FMHA_NO_MASK && a->mask != ROCSTACK_FMHA_CAUSAL_TOP_LEFT &&
        a->mask != ROCSTACK_FMHA_CAUSAL_BOTTOM_RIGHT)
        return fail(ROCSTACK_FMHA_INVALID_ARGUMENT, "fmha_fwd: unknown mask");
    if (a->batch <= 0 || a->seqlen_q <= 0 || a->seqlen_k <= 0 || a->nhead_q <= 0 || a->nhead_k <= 0 || a->hdim <= 0)
        return fail(ROCSTACK_FMHA_INVALID_ARGUMENT, "fmha_fwd: batch, seqlens, head counts and hdim must be > 0");
    if (a->nhead_q % a->nhead_k)
        return fail(ROCSTACK_FMHA_INVALID_ARGUMENT, "fmha_fwd: nhead_q must be a multiple of nhead_k");
    if (a->window_left < -1 || a->window_right < -1)
        return fail(ROCSTACK_FMHA_INVALID_ARGUMENT, "fmha_fwd: window sizes are >= 0, or -1 for unlimited");
    const int64_t strides[] = {a->q_token_stride, a->q_head_stride, a->q_batch_stride, a->k_token_stride,
                               a->k_head_stride,  a->k_batch_stride, a->v_token_stride, a->v_head_stride,
                               a->v_batch_stride, a->o_token_stride, a->o_head_stride,  a->o_batch_stride};
    for (int64_t s : strides)
        if (!fits_index(s)) return fail(ROCSTACK_FMHA_INVALID_ARGUMENT, "fmha_fwd: strides must be in [0, 2^31)");
    if (!(a->softmax_scale > 0.f)) return fail(ROCSTACK_FMHA_INVALID_ARGUMENT, "fmha_fwd: softmax_scale must be > 0");
    return ROCSTACK_FMHA_OK;
}

}  // namespace

extern "C" {

int rocstack_ck_fmha_abi_version(void) { return ROCSTACK_CK_FMHA_ABI_VERSION; }

const char *rocstack_ck_fmha_targets(void) { return ROCSTACK_CK_FMHA_TARGETS; }

const char *rocstack_ck_fmha_instances(void) { return ROCSTACK_CK_FMHA_INSTANCES; }

const char *rocstack_ck_fmha_last_error(void) { return last_error.c_str(); }

int rocstack_ck_fmha_fwd(const rocstack_fmha_fwd_args *args, void *stream) {
    if (int status = check(args)) return status;
    const rocstack_fmha_fwd_args &a = *args;

    fmha_fwd_traits traits{};
    traits.hdim_q = a.hdim;
    traits.hdim_v = a.hdim;
    traits.data_type = a.dtype == ROCSTACK_FMHA_FP16 ? "fp16" : "bf16";
    traits.is_group_mode = false;
    traits.is_v_rowmajor = true;
    traits.has_logits_soft_cap = false;
    traits.mask_type = static_cast<mask_enum>(a.mask);  // same numbering as mask_enum: none, top-left, bottom-right
    traits.bias_type = bias_enum::no_bias;
    traits.has_lse = false;
    traits.has_dropout = false;
    traits.do_fp8_static_quant = false;
    traits.skip_min_seqlen_q = false;

    fmha_fwd_args f{};
    f.q_ptr = a.q;
    f.k_ptr = a.k;
    f.v_ptr = a.v;
    f.o_ptr = a.o;
    f.seqlen_q = a.seqlen_q;
    f.seqlen_k = a.seqlen_k;
    f.batch = a.batch;
    f.max_seqlen_q = a.seqlen_q;
    f.hdim_q = a.hdim;
    f.hdim_v = a.hdim;
    f.nhead_q = a.nhead_q;
    f.nhead_k = a.nhead_k;
    f.scale_s = a.softmax_scale;
    f.scale_p = 1.f;
    f.scale_o = 1.f;
    f.stride_q = static_cast<ck_tile::index_t>(a.q_token_stride);
    f.stride_k = static_cast<ck_tile::index_t>(a.k_token_stride);
    f.stride_v = static_cast<ck_tile::index_t>(a.v_token_stride);
    f.stride_o = static_cast<ck_tile::index_t>(a.o_token_stride);
    f.nhead_stride_q = static_cast<ck_tile::index_t>(a.q_head_stride);
    f.nhead_stride_k = static_cast<ck_tile::index_t>(a.k_head_stride);
    f.nhead_stride_v = static_cast<ck_tile::index_t>(a.v_head_stride);
    f.nhead_stride_o = static_cast<ck_tile::index_t>(a.o_head_stride);
    f.batch_stride_q = static_cast<ck_tile::index_t>(a.q_batch_stride);
    f.batch_stride_k = static_cast<ck_tile::index_t>(a.k_batch_stride);
    f.batch_stride_v = static_cast<ck_tile::index_t>(a.v_batch_stride);
    f.batch_stride_o = static_cast<ck_tile::index_t>(a.o_batch_stride);
    f.window_size_left = a.mask == ROCSTACK_FMHA_NO_MASK ? -1 : a.window_left;
    f.window_size_right = a.mask == ROCSTACK_FMHA_NO_MASK ? -1 : a.window_right;
    f.mask_type = static_cast<ck_tile::index_t>(a.mask);
    f.p_drop = 0.f;
    f.s_randval = false;
    f.drop_seed_offset = std::make_pair(uint64_t{0}, uint64_t{0});

    // fmha_fwd asks the runtime for the device first: make its failure (no GPU) ours, not a -1.
    int device = 0;
    hipError_t err = hipGetDevice(&device);
    if (err != hipSuccess)
        return fail(ROCSTACK_FMHA_RUNTIME_ERROR, std::string("fmha_fwd: no HIP device: ") + hipGetErrorString(err));

    const ck_tile::stream_config config{static_cast<hipStream_t>(stream), false, 0};
    const float result = fmha_fwd(traits, f, config);
    if (result < 0) {
        return fail(ROCSTACK_FMHA_UNSUPPORTED, "fmha_fwd: no compiled instance covers " + describe(a) +
                                                   " (hdim must be a multiple of 8; rocstack_ck_fmha_instances() lists them)");
    }
    err = hipGetLastError();
    if (err != hipSuccess) {
        return fail(ROCSTACK_FMHA_RUNTIME_ERROR, std::string("fmha_fwd: launch failed: ") + hipGetErrorName(err) + " (" +
                                                     hipGetErrorString(err) + "); built for " ROCSTACK_CK_FMHA_TARGETS);
    }
    last_error.clear();
    return ROCSTACK_FMHA_OK;
}

}  // extern "C"
