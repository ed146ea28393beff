// Checks every op of librocstack_hip against a CPU reference (double precision, inputs as stored,
// one rounding), on the first GPU. Exit status: 0 all passed, 1 a check failed, 77 skipped: no GPU
// (the argument checks, which need none, still run and must pass first).
//
// Usage: rocstack_hip_test            (the status line "skip: no GPU ..." is printed when skipping)

#include "rocstack_hip.h"
#include "rocstack_test.h"

#include <hip/hip_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using rocstack_test::bf16_to_float;
using rocstack_test::check;
using rocstack_test::f16_to_float;
using rocstack_test::failures;
using rocstack_test::float_to_bf16;
using rocstack_test::float_to_f16;
using rocstack_test::hip_ok;

struct DType {
    rocstack_dtype id;
    const char *name;
    size_t size;
    double rtol;  // one unit in the last place of the dtype: the reference is rounded once too
    double atol;
};
const DType kDTypes[] = {
    {ROCSTACK_FLOAT32, "float32", 4, 1e-5, 1e-6},
    {ROCSTACK_FLOAT16, "float16", 2, 1.0 / 1024, 1e-4},
    {ROCSTACK_BFLOAT16, "bfloat16", 2, 1.0 / 128, 1e-3},
};

// A host tensor of one dtype, values kept as float (exactly representable in the dtype).
struct Tensor {
    DType dt;
    std::vector<float> v;
    Tensor(DType d, size_t n) : dt(d), v(n, 0.f) {}
    float round(float x) const {
        if (dt.id == ROCSTACK_FLOAT16) return f16_to_float(float_to_f16(x));
        if (dt.id == ROCSTACK_BFLOAT16) return bf16_to_float(float_to_bf16(x));
        return x;
    }
    void fill(std::mt19937 &rng, float lo, float hi) {
        std::uniform_real_distribution<float> dist(lo, hi);
        for (auto &x : v) x = round(dist(rng));
    }
    std::vector<unsigned char> bytes() const {
        std::vector<unsigned char> out(v.size() * dt.size);
        for (size_t i = 0; i < v.size(); ++i) {
            if (dt.size == 4) {
                std::memcpy(&out[4 * i], &v[i], 4);
            } else {
                uint16_t h = dt.id == ROCSTACK_FLOAT16 ? float_to_f16(v[i]) : float_to_bf16(v[i]);
                std::memcpy(&out[2 * i], &h, 2);
            }
        }
        return out;
    }
    void from_bytes(const std::vector<unsigned char> &in) {
        for (size_t i = 0; i < v.size(); ++i) {
            if (dt.size == 4) {
                std::memcpy(&v[i], &in[4 * i], 4);
            } else {
                uint16_t h;
                std::memcpy(&h, &in[2 * i], 2);
                v[i] = dt.id == ROCSTACK_FLOAT16 ? f16_to_float(h) : bf16_to_float(h);
            }
        }
    }
};

// Device copy of a host tensor; copied back by download().
struct Device {
    void *ptr = nullptr;
    size_t bytes = 0;
    explicit Device(const Tensor &t) : bytes(t.v.size() * t.dt.size) {
        auto host = t.bytes();
        if (hip_ok(hipMalloc(&ptr, bytes), "hipMalloc")) hip_ok(hipMemcpy(ptr, host.data(), bytes, hipMemcpyHostToDevice), "upload");
    }
    Device(const void *data, size_t n) : bytes(n) {
        if (hip_ok(hipMalloc(&ptr, bytes), "hipMalloc")) hip_ok(hipMemcpy(ptr, data, bytes, hipMemcpyHostToDevice), "upload");
    }
    ~Device() { (void)hipFree(ptr); }
    void download(Tensor &t) const {
        std::vector<unsigned char> host(bytes);
        if (hip_ok(hipMemcpy(host.data(), ptr, bytes, hipMemcpyDeviceToHost), "download")) t.from_bytes(host);
    }
};

// Largest violation of |got - want| <= atol + rtol*|want| over the listed elements, as a ratio (<= 1 passes).
struct Compare {
    double worst = 0;
    size_t where = 0;
    void add(double got, double want, const DType &dt, size_t index) {
        double ratio = std::fabs(got - want) / (dt.atol + dt.rtol * std::fabs(want));
        if (!(ratio <= worst)) {  // also catches NaN
            worst = std::isnan(ratio) ? INFINITY : ratio;
            where = index;
        }
    }
    std::string verdict() const { return "worst error " + std::to_string(worst) + " of tolerance at " + std::to_string(where); }
    bool ok() const { return worst <= 1.0; }
};

bool call_ok(int status, const char *op) {
    if (status != ROCSTACK_HIP_OK) {
        std::printf("FAIL: %s returned %d: %s\n", op, status, rocstack_hip_last_error());
        ++failures;
        return false;
    }
    return hip_ok(hipDeviceSynchronize(), op);
}

void test_rms_norm(const DType &dt, bool residual, int64_t rows, int64_t cols, std::mt19937 &rng) {
    const int64_t sx = cols + 3, sr = cols + 5, so = cols + 1;  // padded rows: strides are honoured
    Tensor x(dt, rows * sx), r(dt, rows * sr), w(dt, cols), out(dt, rows * so);
    x.fill(rng, -2.f, 2.f);
    r.fill(rng, -2.f, 2.f);
    w.fill(rng, 0.5f, 1.5f);
    out.fill(rng, -9.f, 9.f);
    Device dx(x), dr(r), dw(w), dout(out);
    const float eps = 1e-6f;
    int status = residual ? rocstack_add_rms_norm(dout.ptr, dx.ptr, dr.ptr, dw.ptr, rows, cols, sx, sr, so, eps, dt.id, nullptr)
                          : rocstack_rms_norm(dout.ptr, dx.ptr, dw.ptr, rows, cols, sx, so, eps, dt.id, nullptr);
    const std::string name = std::string(residual ? "add_rms_norm " : "rms_norm ") + dt.name + " " +
                             std::to_string(rows) + "x" + std::to_string(cols);
    if (!call_ok(status, name.c_str())) return;
    Tensor got(dt, out.v.size()), got_r(dt, r.v.size());
    dout.download(got);
    dr.download(got_r);
    Compare cmp, cmp_r;
    bool padding_kept = true;
    for (int64_t i = 0; i < rows; ++i) {
        std::vector<double> row(cols);
        double squares = 0;
        for (int64_t c = 0; c < cols; ++c) {
            double v = x.v[i * sx + c];
            if (residual) {
                v = x.round(static_cast<float>(v + r.v[i * sr + c]));  // the sum is stored in dtype
                cmp_r.add(got_r.v[i * sr + c], v, dt, i * sr + c);
            }
            row[c] = v;
            squares += v * v;
        }
        const double rrms = 1.0 / std::sqrt(squares / cols + eps);
        for (int64_t c = 0; c < cols; ++c) cmp.add(got.v[i * so + c], row[c] * rrms * w.v[c], dt, i * so + c);
        for (int64_t c = cols; c < so; ++c) padding_kept &= got.v[i * so + c] == out.v[i * so + c];
    }
    check(cmp.ok(), name + ": " + cmp.verdict());
    if (residual) check(cmp_r.ok(), name + " residual = x + residual: " + cmp_r.verdict());
    check(padding_kept, name + ": bytes between rows untouched");
}

void test_silu_and_mul(const DType &dt, int64_t rows, int64_t d, std::mt19937 &rng) {
    const int64_t sx = 2 * d + 2, so = d + 4;
    Tensor x(dt, rows * sx), out(dt, rows * so);
    x.fill(rng, -6.f, 6.f);
    Device dx(x), dout(out);
    const std::string name = std::string("silu_and_mul ") + dt.name + " " + std::to_string(rows) + "x" + std::to_string(2 * d);
    if (!call_ok(rocstack_silu_and_mul(dout.ptr, dx.ptr, rows, d, sx, so, dt.id, nullptr), name.c_str())) return;
    Tensor got(dt, out.v.size());
    dout.download(got);
    Compare cmp;
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t c = 0; c < d; ++c) {
            const double g = x.v[i * sx + c], u = x.v[i * sx + d + c];
            cmp.add(got.v[i * so + c], g / (1.0 + std::exp(-g)) * u, dt, i * so + c);
        }
    check(cmp.ok(), name + ": " + cmp.verdict());
}

void test_rotary(const DType &dt, const DType &cache_dt, rocstack_rope_style style, std::mt19937 &rng) {
    const int64_t tokens = 13, q_heads = 4, k_heads = 2, head = 128, rot = 64, max_pos = 40;
    const int64_t stride_q = (q_heads + 2 * k_heads) * head, stride_k = stride_q;  // q and k are views of a fused qkv
    Tensor qkv(dt, tokens * stride_q), cache(cache_dt, max_pos * rot);
    qkv.fill(rng, -3.f, 3.f);
    for (int64_t p = 0; p < max_pos; ++p)
        for (int64_t i = 0; i < rot / 2; ++i) {
            const double angle = p * std::pow(10000.0, -2.0 * i / rot);
            cache.v[p * rot + i] = cache.round(static_cast<float>(std::cos(angle)));
            cache.v[p * rot + rot / 2 + i] = cache.round(static_cast<float>(std::sin(angle)));
        }
    std::vector<int64_t> positions(tokens);
    std::uniform_int_distribution<int64_t> pick(0, max_pos - 1);
    for (auto &p : positions) p = pick(rng);
    Device dqkv(qkv), dcache(cache), dpos(positions.data(), positions.size() * sizeof(int64_t));
    auto *q = static_cast<unsigned char *>(dqkv.ptr);
    auto *k = q + q_heads * head * dt.size;
    const std::string name = std::string("rotary_embedding ") + (style == ROCSTACK_ROPE_GPTJ ? "gptj " : "neox ") +
                             dt.name + " cache " + cache_dt.name;
    int status = rocstack_rotary_embedding(static_cast<int64_t *>(dpos.ptr), q, k, dcache.ptr, tokens, q_heads, k_heads,
                                           head, rot, max_pos, stride_q, stride_k, style, dt.id, cache_dt.id, nullptr);
    if (!call_ok(status, name.c_str())) return;
    Tensor got(dt, qkv.v.size());
    dqkv.download(got);
    Compare cmp;
    bool rest_kept = true;
    for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t h = 0; h < q_heads + 2 * k_heads; ++h) {
            const int64_t base = t * stride_q + h * head;
            const bool rotated = h < q_heads + k_heads;  // the v heads after k must stay as they were
            for (int64_t i = 0; i < head; ++i) {
                if (!rotated || i >= rot) rest_kept &= got.v[base + i] == qkv.v[base + i];
            }
            if (!rotated) continue;
            for (int64_t i = 0; i < rot / 2; ++i) {
                const int64_t a = style == ROCSTACK_ROPE_GPTJ ? 2 * i : i, b = style == ROCSTACK_ROPE_GPTJ ? 2 * i + 1 : i + rot / 2;
                const double c = cache.v[positions[t] * rot + i], s = cache.v[positions[t] * rot + rot / 2 + i];
                const double x1 = qkv.v[base + a], x2 = qkv.v[base + b];
                cmp.add(got.v[base + a], x1 * c - x2 * s, dt, base + a);
                cmp.add(got.v[base + b], x2 * c + x1 * s, dt, base + b);
            }
        }
    }
    check(cmp.ok(), name + ": " + cmp.verdict());
    check(rest_kept, name + ": features past rot_dim and the v heads untouched");
}

// Argument checks return before any HIP call, so they run without a GPU.
void test_arguments() {
    int dummy = 0;
    const int status = rocstack_rms_norm(&dummy, &dummy, &dummy, 4, 0, 8, 8, 1e-6f, ROCSTACK_FLOAT32, nullptr);
    const std::string message = rocstack_hip_last_error();
    check(status == ROCSTACK_HIP_INVALID_ARGUMENT && !message.empty(), "rms_norm refuses cols = 0 (" + message + ")");
    check(rocstack_rms_norm(&dummy, &dummy, &dummy, 4, 16, 8, 16, 1e-6f, ROCSTACK_FLOAT32, nullptr) == ROCSTACK_HIP_INVALID_ARGUMENT,
          "rms_norm refuses a row stride smaller than cols");
    check(rocstack_silu_and_mul(&dummy, &dummy, 2, 8, 8, 8, static_cast<rocstack_dtype>(7), nullptr) == ROCSTACK_HIP_INVALID_ARGUMENT,
          "silu_and_mul refuses an unknown dtype");
    check(rocstack_rotary_embedding(nullptr, &dummy, &dummy, &dummy, 1, 1, 1, 64, 63, 8, 64, 64, ROCSTACK_ROPE_NEOX,
                                    ROCSTACK_FLOAT16, ROCSTACK_FLOAT16, nullptr) == ROCSTACK_HIP_INVALID_ARGUMENT,
          "rotary_embedding refuses an odd rot_dim");
    check(rocstack_hip_abi_version() == ROCSTACK_HIP_ABI_VERSION, "ABI version of the loaded library matches the header");
    check(std::strlen(rocstack_hip_targets()) > 0, std::string("built for: ") + rocstack_hip_targets());
}

}  // namespace

int main() {
    test_arguments();
    if (const int status = rocstack_test::status_before_gpu_checks(); status >= 0) return status;
    std::mt19937 rng(1234);
    for (const DType &dt : kDTypes) {
        for (int64_t cols : {5, 1000, 4096, 16384}) test_rms_norm(dt, false, 37, cols, rng);
        test_rms_norm(dt, true, 29, 4096, rng);
        test_silu_and_mul(dt, 19, 1000, rng);
        test_rotary(dt, dt, ROCSTACK_ROPE_NEOX, rng);
        test_rotary(dt, dt, ROCSTACK_ROPE_GPTJ, rng);
        test_rotary(dt, kDTypes[0], ROCSTACK_ROPE_NEOX, rng);
    }
    return rocstack_test::final_status();
}
