/* rocstack_ck_fmha: flash-attention's Composable Kernel (ck_tile) forward attention kernels behind a
 * C ABI, without torch.
 *
 * The kernels are generated and compiled from the pinned flash-attention sdist (which vendors
 * Composable Kernel) for the instance set and arches the build was given; this header is ours.
 * Layout: q [batch, seqlen_q, nhead_q, hdim], k/v [batch, seqlen_k, nhead_k, hdim], o like q, all
 * device pointers, strides in elements (flash-attention's layout: token, head, batch strides).
 * nhead_q must be a multiple of nhead_k (grouped-query attention).
 */
#ifndef ROCSTACK_CK_FMHA_H
#define ROCSTACK_CK_FMHA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ROCSTACK_CK_FMHA_ABI_VERSION 1

typedef enum rocstack_fmha_dtype {
    ROCSTACK_FMHA_FP16 = 1,
    ROCSTACK_FMHA_BF16 = 2
} rocstack_fmha_dtype;

typedef enum rocstack_fmha_mask {
    ROCSTACK_FMHA_NO_MASK = 0,
    ROCSTACK_FMHA_CAUSAL_TOP_LEFT = 1,     /* query i sees keys j <= i */
    ROCSTACK_FMHA_CAUSAL_BOTTOM_RIGHT = 2  /* flash-attention's causal: query i sees j <= i + seqlen_k - seqlen_q */
} rocstack_fmha_mask;

typedef enum rocstack_fmha_status {
    ROCSTACK_FMHA_OK = 0,
    ROCSTACK_FMHA_INVALID_ARGUMENT = 1, /* shapes, strides or pointers that make no sense */
    ROCSTACK_FMHA_UNSUPPORTED = 2,      /* valid, but no compiled instance covers it (see rocstack_ck_fmha_instances) */
    ROCSTACK_FMHA_RUNTIME_ERROR = 3     /* the HIP runtime failed (no GPU, no code object for it, launch error) */
} rocstack_fmha_status;

typedef struct rocstack_fmha_fwd_args {
    const void *q, *k, *v;
    void *o;
    int32_t batch, seqlen_q, seqlen_k, nhead_q, nhead_k, hdim;
    /* element strides: between tokens, heads and batches of each tensor */
    int64_t q_token_stride, q_head_stride, q_batch_stride;
    int64_t k_token_stride, k_head_stride, k_batch_stride;
    int64_t v_token_stride, v_head_stride, v_batch_stride;
    int64_t o_token_stride, o_head_stride, o_batch_stride;
    float softmax_scale; /* usually 1/sqrt(hdim) */
    rocstack_fmha_dtype dtype;
    rocstack_fmha_mask mask;
    /* sliding window for the causal masks: keys further than window_left before / window_right
     * after the diagonal are masked; -1 is unlimited (plain causal is left -1, right 0) */
    int32_t window_left, window_right;
} rocstack_fmha_fwd_args;

int rocstack_ck_fmha_abi_version(void);

/* The arches the library was built for (comma-separated). */
const char *rocstack_ck_fmha_targets(void);

/* The generated kernel instances compiled into the library, one name per line. */
const char *rocstack_ck_fmha_instances(void);

/* One line describing the last error of the calling thread ("" when none). */
const char *rocstack_ck_fmha_last_error(void);

/* o = softmax(q k^T * softmax_scale, masked) v, on stream (a hipStream_t; NULL: default stream). */
int rocstack_ck_fmha_fwd(const rocstack_fmha_fwd_args *args, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* ROCSTACK_CK_FMHA_H */
