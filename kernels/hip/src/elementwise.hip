// The elementwise ops of rocstack's Triton kernels in HIP (see include/rocstack_hip.h for the ABI).
//
// One block per row (RMSNorm) or per token (RoPE); fp32 arithmetic, one rounding to the output
// dtype. Reductions go through shared memory rather than wave shuffles, so the same code is right
// for wave64 (CDNA) and wave32 (RDNA) without asking the device for its wave size.

#include "rocstack_hip.h"

#include <hip/hip_bf16.h>
#include <hip/hip_fp16.h>
#include <hip/hip_runtime.h>

#include <string>
#include <type_traits>

#ifndef ROCSTACK_HIP_TARGETS
#error "ROCSTACK_HIP_TARGETS (the arch list this library is built for) must be defined by the build"
#endif

namespace {

constexpr int kThreads = 256;  // a power of two: the tree reduction halves it

thread_local std::string last_error;

int fail(int status, const std::string &message) {
    last_error = message;
    return status;
}

// Loads and stores in fp32, whatever the storage dtype.
template <typename T> struct Scalar;
template <> struct Scalar<float> {
    __device__ static float load(const float *p) { return *p; }
    __device__ static void store(float *p, float v) { *p = v; }
    __device__ static float round(float v) { return v; }
};
template <> struct Scalar<__half> {
    __device__ static float load(const __half *p) { return __half2float(*p); }
    __device__ static void store(__half *p, float v) { *p = __float2half(v); }
    __device__ static float round(float v) { return __half2float(__float2half(v)); }
};
template <> struct Scalar<__hip_bfloat16> {
    __device__ static float load(const __hip_bfloat16 *p) { return __bfloat162float(*p); }
    __device__ static void store(__hip_bfloat16 *p, float v) { *p = __float2bfloat16(v); }
    __device__ static float round(float v) { return __bfloat162float(__float2bfloat16(v)); }
};

__device__ float block_sum(float value, float *scratch) {
    scratch[threadIdx.x] = value;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) scratch[threadIdx.x] += scratch[threadIdx.x + half];
        __syncthreads();
    }
    float total = scratch[0];
    __syncthreads();  // scratch is reused by the caller's next reduction
    return total;
}

template <typename T, bool kResidual>
__global__ void __launch_bounds__(kThreads) rms_norm_kernel(T *out, const T *x, T *residual, const T *weight,
                                                            int64_t cols, int64_t stride_x, int64_t stride_res,
                                                            int64_t stride_out, float eps) {
    __shared__ float scratch[kThreads];
    const int64_t row = blockIdx.x;
    const T *x_row = x + row * stride_x;
    T *res_row = kResidual ? residual + row * stride_res : nullptr;
    float squares = 0.f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = Scalar<T>::load(x_row + c);
        if (kResidual) {
            // The sum is stored in the residual's dtype and normalized as stored, so the result
            // equals rms_norm(x + residual) exactly.
            v = Scalar<T>::round(v + Scalar<T>::load(res_row + c));
            Scalar<T>::store(res_row + c, v);
        }
        squares += v * v;
    }
    const float rrms = rsqrtf(block_sum(squares, scratch) / static_cast<float>(cols) + eps);
    // Each thread re-reads only the columns it wrote itself: no barrier needed for the residual.
    const T *src = kResidual ? res_row : x_row;
    T *out_row = out + row * stride_out;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        Scalar<T>::store(out_row + c, Scalar<T>::load(src + c) * rrms * Scalar<T>::load(weight + c));
    }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) silu_and_mul_kernel(T *out, const T *x, int64_t d, int64_t stride_x,
                                                                int64_t stride_out) {
    const int64_t row = blockIdx.x;  // rows on x (up to 2^31-1), column blocks on y (up to 65535)
    const int64_t i = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
    if (i >= d) return;
    const float gate = Scalar<T>::load(x + row * stride_x + i);
    const float up = Scalar<T>::load(x + row * stride_x + d + i);
    Scalar<T>::store(out + row * stride_out + i, gate / (1.f + expf(-gate)) * up);
}

template <typename T, typename C>
__global__ void __launch_bounds__(kThreads) rotary_kernel(const int64_t *positions, T *q, T *k, const C *cache,
                                                          int64_t q_heads, int64_t k_heads, int64_t head_size,
                                                          int64_t half, int64_t max_position, int64_t stride_qt,
                                                          int64_t stride_kt, bool gptj) {
    const int64_t token = blockIdx.x;
    const int64_t pos = positions[token];
    if (pos < 0 || pos >= max_position) return;  // never read outside the cache (documented in the header)
    const C *cos_row = cache + pos * 2 * half;
    const int64_t pairs = (q_heads + k_heads) * half;
    for (int64_t p = threadIdx.x; p < pairs; p += blockDim.x) {
        const int64_t head = p / half, i = p % half;
        T *base = head < q_heads ? q + token * stride_qt + head * head_size
                                 : k + token * stride_kt + (head - q_heads) * head_size;
        T *first = gptj ? base + 2 * i : base + i;
        T *second = gptj ? first + 1 : first + half;
        const float c = Scalar<C>::load(cos_row + i), s = Scalar<C>::load(cos_row + half + i);
        const float x1 = Scalar<T>::load(first), x2 = Scalar<T>::load(second);
        Scalar<T>::store(first, x1 * c - x2 * s);
        Scalar<T>::store(second, x2 * c + x1 * s);
    }
}

int launched(const char *op) {
    const hipError_t err = hipGetLastError();
    if (err != hipSuccess) {
        return fail(ROCSTACK_HIP_RUNTIME_ERROR,
                    std::string(op) + ": kernel launch failed: " + hipGetErrorName(err) + " (" + hipGetErrorString(err) +
                        "); built for " ROCSTACK_HIP_TARGETS);
    }
    last_error.clear();
    return ROCSTACK_HIP_OK;
}

bool known_dtype(rocstack_dtype dtype) {
    return dtype == ROCSTACK_FLOAT32 || dtype == ROCSTACK_FLOAT16 || dtype == ROCSTACK_BFLOAT16;
}

// Calls fn.operator()<T>() with T the storage type of dtype.
template <typename Fn> int with_dtype(rocstack_dtype dtype, Fn &&fn) {
    switch (dtype) {
    case ROCSTACK_FLOAT32: return fn(static_cast<float *>(nullptr));
    case ROCSTACK_FLOAT16: return fn(static_cast<__half *>(nullptr));
    case ROCSTACK_BFLOAT16: return fn(static_cast<__hip_bfloat16 *>(nullptr));
    }
    return fail(ROCSTACK_HIP_INVALID_ARGUMENT, "unknown dtype " + std::to_string(static_cast<int>(dtype)));
}

constexpr int64_t kMaxGridY = 65535;

}  // namespace

extern "C" {

int rocstack_hip_abi_version(void) { return ROCSTACK_HIP_ABI_VERSION; }

const char *rocstack_hip_targets(void) { return ROCSTACK_HIP_TARGETS; }

const char *rocstack_hip_last_error(void) { return last_error.c_str(); }

static int rms_norm_common(const char *op, void *out, const void *x, void *residual, const void *weight,
                           int64_t rows, int64_t cols, int64_t stride_x, int64_t stride_res, int64_t stride_out,
                           float eps, rocstack_dtype dtype, void *stream) {
    if (!known_dtype(dtype)) return fail(ROCSTACK_HIP_INVALID_ARGUMENT, std::string(op) + ": unknown dtype");
    if (rows < 0 || cols <= 0) return fail(ROCSTACK_HIP_INVALID_ARGUMENT, std::string(op) + ": need rows >= 0 and cols > 0");
    if (stride_x < cols || stride_out < cols || (residual && stride_res < cols))
        return fail(ROCSTACK_HIP_INVALID_ARGUMENT, std::string(op) + ": a row stride is smaller than cols");
    if (!(eps >= 0.f)) return fail(ROCSTACK_HIP_INVALID_ARGUMENT, std::string(op) + ": eps must be >= 0");
    if (!out || !x || !weight) return fail(ROCSTACK_HIP_INVALID_ARGUMENT, std::string(op) + ": null pointer");
    if (rows == 0) return ROCSTACK_HIP_OK;
    if (rows > 0x7fffffff) return fail(ROCSTACK_HIP_INVALID_ARGUMENT, std::string(op) + ": more than 2^31-1 rows");
    auto s = static_cast<hipStream_t>(stream);
    with_dtype(dtype, [&](auto *tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        if (residual) {
            rms_norm_kernel<T, true><<<dim3(rows), dim3(kThreads), 0, s>>>(
                static_cast<T *>(out), static_cast<const T *>(x), static_cast<T *>(residual),
                static_cast<const T *>(weight), cols, stride_x, stride_res, stride_out, eps);
        } else {
            rms_norm_kernel<T, false><<<dim3(rows), dim3(kThreads), 0, s>>>(
                static_cast<T *>(out), static_cast<const T *>(x), nullptr, static_cast<const T *>(weight), cols,
                stride_x, 0, stride_out, eps);
        }
        return 0;
    });
    return launched(op);
}

int rocstack_rms_norm(void *out, const void *x, const void *weight, int64_t rows, int64_t cols, int64_t stride_x,
                      int64_t stride_out, float eps, rocstack_dtype dtype, void *stream) {
    return rms_norm_common("rms_norm", out, x, nullptr, weight, rows, cols, stride_x, 0, stride_out, eps, dtype,
                           stream);
}

int rocstack_add_rms_norm(void *out, const void *x, void *residual, const void *weight, int64_t rows, int64_t cols,
                          int64_t stride_x, int64_t stride_residual, int64_t stride_out, float eps,
                          rocstack_dtype dtype, void *stream) {
    if (!residual) return fail(ROCSTACK_HIP_INVALID_ARGUMENT, "add_rms_norm: null residual");
    return rms_norm_common("add_rms_norm", out, x, residual, weight, rows, cols, stride_x, stride_residual,
                           stride_out, eps, dtype, stream);
}

int rocstack_silu_and_mul(void *out, const void *x, int64_t rows, int64_t d, int64_t stride_x, int64_t stride_out,
                          rocstack_dtype dtype, void *stream) {
    if (!known_dtype(dtype)) return fail(ROCSTACK_HIP_INVALID_ARGUMENT, "silu_and_mul: unknown dtype");
    if (rows < 0 || d < 0) return fail(ROCSTACK_HIP_INVALID_ARGUMENT, "silu_and_mul: need rows >= 0 and d >= 0");
    if (stride_x < 2 * d || stride_out < d)
        return fail(ROCSTACK_HIP_INVALID_ARGUMENT, "silu_and_mul: stride_x must be >= 2*d and stride_out >= d");
    if (!out || !x) return fail(ROCSTACK_HIP_INVALID_ARGUMENT, "silu_and_mul: null pointer");
    if (rows == 0 || d == 0) return ROCSTACK_HIP_OK;
    if (rows > 0x7fffffff) return fail(ROCSTACK_HIP_INVALID_ARGUMENT, "silu_and_mul: more than 2^31-1 rows");
    if ((d + kThreads - 1) / kThreads > kMaxGridY)
        return fail(ROCSTACK_HIP_INVALID_ARGUMENT, "silu_and_mul: d larger than 65535*256");
    auto s = static_cast<hipStream_t>(stream);
    const dim3 grid(rows, (d + kThreads - 1) / kThreads);
    with_dtype(dtype, [&](auto *tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        silu_and_mul_kernel<T><<<grid, dim3(kThreads), 0, s>>>(static_cast<T *>(out), static_cast<const T *>(x), d,
                                                                stride_x, stride_out);
        return 0;
    });
    return launched("silu_and_mul");
}

int rocstack_rotary_embedding(const int64_t *positions, void *q, void *k, const void *cos_sin_cache, int64_t tokens,
                              int64_t q_heads, int64_t k_heads, int64_t head_size, int64_t rot_dim,
                              int64_t max_position, int64_t stride_q_token, int64_t stride_k_token,
                              rocstack_rope_style style, rocstack_dtype dtype, rocstack_dtype cache_dtype,
                              void *stream) {
    if (!known_dtype(dtype) || !known_dtype(cache_dtype))
        return fail(ROCSTACK_HIP_INVALID_ARGUMENT, "rotary_embedding: unknown dtype");
    if (style != ROCSTACK_ROPE_NEOX && style != ROCSTACK_ROPE_GPTJ)
        return fail(ROCSTACK_HIP_INVALID_ARGUMENT, "rotary_embedding: style must be NEOX or GPTJ");
    if (tokens < 0 || q_heads < 0 || k_heads < 0 || head_size <= 0 || max_position <= 0)
        return fail(ROCSTACK_HIP_INVALID_ARGUMENT, "rotary_embedding: negative count or empty head/cache");
    if (rot_dim <= 0 || rot_dim % 2 || rot_dim > head_size)
        return fail(ROCSTACK_HIP_INVALID_ARGUMENT, "rotary_embedding: rot_dim must be even, > 0 and <= head_size");
    if ((q_heads && stride_q_token < q_heads * head_size) || (k_heads && stride_k_token < k_heads * head_size))
        return fail(ROCSTACK_HIP_INVALID_ARGUMENT, "rotary_embedding: a token stride is smaller than heads*head_size");
    if (!positions || !cos_sin_cache || (q_heads && !q) || (k_heads && !k))
        return fail(ROCSTACK_HIP_INVALID_ARGUMENT, "rotary_embedding: null pointer");
    if (tokens == 0 || q_heads + k_heads == 0) return ROCSTACK_HIP_OK;
    if (tokens > 0x7fffffff) return fail(ROCSTACK_HIP_INVALID_ARGUMENT, "rotary_embedding: more than 2^31-1 tokens");
    auto s = static_cast<hipStream_t>(stream);
    const bool gptj = style == ROCSTACK_ROPE_GPTJ;
    with_dtype(dtype, [&](auto *tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        return with_dtype(cache_dtype, [&](auto *cache_tag) {
            using C = std::remove_pointer_t<decltype(cache_tag)>;
            rotary_kernel<T, C><<<dim3(tokens), dim3(kThreads), 0, s>>>(
                positions, static_cast<T *>(q), static_cast<T *>(k), static_cast<const C *>(cos_sin_cache), q_heads,
                k_heads, head_size, rot_dim / 2, max_position, stride_q_token, stride_k_token, gptj);
            return 0;
        });
    });
    return launched("rotary_embedding");
}

}  // extern "C"
