/* rocstack_hip: the elementwise ops of rocstack's Triton kernels, written in HIP, behind a C ABI.
 *
 * Same math as kernels/rocstack_kernels/{rms_norm,silu_and_mul,rotary}.py: every op reads its
 * inputs, computes in fp32 and rounds once to the output dtype. Tensors are device pointers with
 * row strides in elements; the last dimension is contiguous. A plain C header so that any
 * language with a C FFI (ctypes, cffi, Rust, C) can call it without HIP's headers: the stream is
 * passed as `void *` (a hipStream_t, NULL for the default stream).
 *
 * Every function returns ROCSTACK_HIP_OK or an error code; rocstack_hip_last_error() describes
 * the most recent failure of the calling thread in one line.
 */
#ifndef ROCSTACK_HIP_H
#define ROCSTACK_HIP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ROCSTACK_HIP_ABI_VERSION 1

typedef enum rocstack_dtype {
    ROCSTACK_FLOAT32 = 0,
    ROCSTACK_FLOAT16 = 1,
    ROCSTACK_BFLOAT16 = 2
} rocstack_dtype;

typedef enum rocstack_rope_style {
    ROCSTACK_ROPE_NEOX = 0, /* feature i pairs with i + rot_dim/2 */
    ROCSTACK_ROPE_GPTJ = 1  /* feature 2i pairs with 2i + 1 */
} rocstack_rope_style;

typedef enum rocstack_hip_status {
    ROCSTACK_HIP_OK = 0,
    ROCSTACK_HIP_INVALID_ARGUMENT = 1, /* a shape, stride, dtype or pointer the op cannot take */
    ROCSTACK_HIP_RUNTIME_ERROR = 2     /* the HIP runtime refused the launch (e.g. no code object for this GPU) */
} rocstack_hip_status;

/* ROCSTACK_HIP_ABI_VERSION of the library actually loaded. */
int rocstack_hip_abi_version(void);

/* The arches this library was compiled for, as the build passed them (comma-separated). */
const char *rocstack_hip_targets(void);

/* One line describing the last error of the calling thread ("" when none). */
const char *rocstack_hip_last_error(void);

/* out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight, for r < rows. */
int rocstack_rms_norm(void *out, const void *x, const void *weight, int64_t rows, int64_t cols,
                      int64_t stride_x, int64_t stride_out, float eps, rocstack_dtype dtype, void *stream);

/* residual[r, :] = x[r, :] + residual[r, :] (stored in place, rounded to dtype), then
 * out[r, :] = rms_norm(residual[r, :]) * weight: equals rms_norm(x + residual) exactly. */
int rocstack_add_rms_norm(void *out, const void *x, void *residual, const void *weight, int64_t rows,
                          int64_t cols, int64_t stride_x, int64_t stride_residual, int64_t stride_out,
                          float eps, rocstack_dtype dtype, void *stream);

/* x is [rows, 2*d] (gate half, then up half); out[r, i] = silu(x[r, i]) * x[r, d + i]. */
int rocstack_silu_and_mul(void *out, const void *x, int64_t rows, int64_t d, int64_t stride_x,
                          int64_t stride_out, rocstack_dtype dtype, void *stream);

/* Rotates q [tokens, q_heads, head_size] and k [tokens, k_heads, head_size] in place by each
 * token's position. cos_sin_cache is [max_position, rot_dim] (cos half, then sin half), contiguous,
 * of cache_dtype; positions are int64 and must lie in [0, max_position). Heads are contiguous
 * within a token (head stride = head_size); the token strides are free (views into fused qkv). */
int rocstack_rotary_embedding(const int64_t *positions, void *q, void *k, const void *cos_sin_cache,
                              int64_t tokens, int64_t q_heads, int64_t k_heads, int64_t head_size,
                              int64_t rot_dim, int64_t max_position, int64_t stride_q_token,
                              int64_t stride_k_token, rocstack_rope_style style, rocstack_dtype dtype,
                              rocstack_dtype cache_dtype, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* ROCSTACK_HIP_H */
