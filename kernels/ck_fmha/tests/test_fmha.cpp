// Checks librocstack_ck_fmha's forward attention against a CPU reference (double precision, the
// inputs as stored) on the first GPU. Exit status: 0 all passed, 1 a check failed, 77 skipped: no
// GPU (the checks that need none - the instance list, argument refusals, the no-device error - run first).

#include "rocstack_ck_fmha.h"
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

using rocstack_test::check;
using rocstack_test::failures;
using rocstack_test::hip_ok;

uint16_t to_bits(float f, rocstack_fmha_dtype dtype) {
    return dtype == ROCSTACK_FMHA_FP16 ? rocstack_test::float_to_f16(f) : rocstack_test::float_to_bf16(f);
}

float from_bits(uint16_t bits, rocstack_fmha_dtype dtype) {
    return dtype == ROCSTACK_FMHA_FP16 ? rocstack_test::f16_to_float(bits) : rocstack_test::bf16_to_float(bits);
}

struct Case {
    rocstack_fmha_dtype dtype;
    rocstack_fmha_mask mask;
    int batch, seqlen_q, seqlen_k, nhead_q, nhead_k, hdim;
};

std::string name_of(const Case &c) {
    static const char *masks[] = {"no mask", "causal top-left", "causal bottom-right"};
    return std::string(c.dtype == ROCSTACK_FMHA_FP16 ? "fp16" : "bf16") + " " + masks[c.mask] + " b" +
           std::to_string(c.batch) + " sq" + std::to_string(c.seqlen_q) + " sk" + std::to_string(c.seqlen_k) + " hq" +
           std::to_string(c.nhead_q) + " hk" + std::to_string(c.nhead_k) + " d" + std::to_string(c.hdim);
}

// BSHD tensors, contiguous.
rocstack_fmha_fwd_args layout(const Case &c) {
    rocstack_fmha_fwd_args a{};
    a.batch = c.batch;
    a.seqlen_q = c.seqlen_q;
    a.seqlen_k = c.seqlen_k;
    a.nhead_q = c.nhead_q;
    a.nhead_k = c.nhead_k;
    a.hdim = c.hdim;
    a.q_token_stride = a.o_token_stride = int64_t{c.nhead_q} * c.hdim;
    a.q_head_stride = a.o_head_stride = a.k_head_stride = a.v_head_stride = c.hdim;
    a.q_batch_stride = a.o_batch_stride = int64_t{c.seqlen_q} * c.nhead_q * c.hdim;
    a.k_token_stride = a.v_token_stride = int64_t{c.nhead_k} * c.hdim;
    a.k_batch_stride = a.v_batch_stride = int64_t{c.seqlen_k} * c.nhead_k * c.hdim;
    a.softmax_scale = 1.f / std::sqrt(static_cast<float>(c.hdim));
    a.dtype = c.dtype;
    a.mask = c.mask;
    a.window_left = -1;
    a.window_right = c.mask == ROCSTACK_FMHA_NO_MASK ? -1 : 0;
    return a;
}

bool visible(const Case &c, int i, int j) {
    if (c.mask == ROCSTACK_FMHA_CAUSAL_TOP_LEFT) return j <= i;
    if (c.mask == ROCSTACK_FMHA_CAUSAL_BOTTOM_RIGHT) return j <= i + c.seqlen_k - c.seqlen_q;
    return true;
}

void run_case(const Case &c, std::mt19937 &rng) {
    rocstack_fmha_fwd_args a = layout(c);
    const size_t nq = size_t(c.batch) * c.seqlen_q * c.nhead_q * c.hdim, nk = size_t(c.batch) * c.seqlen_k * c.nhead_k * c.hdim;
    std::normal_distribution<float> normal(0.f, 1.f);
    std::vector<uint16_t> q(nq), k(nk), v(nk), o(nq, 0xffff);  // o starts as NaN: every element must be written
    for (auto *t : {&q, &k, &v})
        for (auto &x : *t) x = to_bits(normal(rng), c.dtype);
    void *dq = nullptr, *dk = nullptr, *dv = nullptr, *dout = nullptr;
    bool ok = hip_ok(hipMalloc(&dq, nq * 2), "hipMalloc") && hip_ok(hipMalloc(&dk, nk * 2), "hipMalloc") &&
              hip_ok(hipMalloc(&dv, nk * 2), "hipMalloc") && hip_ok(hipMalloc(&dout, nq * 2), "hipMalloc") &&
              hip_ok(hipMemcpy(dq, q.data(), nq * 2, hipMemcpyHostToDevice), "upload") &&
              hip_ok(hipMemcpy(dk, k.data(), nk * 2, hipMemcpyHostToDevice), "upload") &&
              hip_ok(hipMemcpy(dv, v.data(), nk * 2, hipMemcpyHostToDevice), "upload") &&
              hip_ok(hipMemcpy(dout, o.data(), nq * 2, hipMemcpyHostToDevice), "upload");
    if (ok) {
        a.q = dq, a.k = dk, a.v = dv, a.o = dout;
        const int status = rocstack_ck_fmha_fwd(&a, nullptr);
        if (status != ROCSTACK_FMHA_OK) {
            check(false, name_of(c) + ": status " + std::to_string(status) + ": " + rocstack_ck_fmha_last_error());
            ok = false;
        }
    }
    ok = ok && hip_ok(hipDeviceSynchronize(), "fmha_fwd") && hip_ok(hipMemcpy(o.data(), dout, nq * 2, hipMemcpyDeviceToHost), "download");
    for (void *p : {dq, dk, dv, dout}) (void)hipFree(p);
    if (!ok) return;

    // fp16 keeps 11 significant bits, bf16 8; P is rounded to the input dtype before the second GEMM.
    const double tol = c.dtype == ROCSTACK_FMHA_FP16 ? 4e-3 : 3e-2;
    double worst = 0;
    std::vector<double> scores(c.seqlen_k);
    const int group = c.nhead_q / c.nhead_k;
    for (int b = 0; b < c.batch; ++b)
        for (int h = 0; h < c.nhead_q; ++h)
            for (int i = 0; i < c.seqlen_q; ++i) {
                const size_t qi = size_t(b) * a.q_batch_stride + size_t(i) * a.q_token_stride + size_t(h) * c.hdim;
                double top = -INFINITY;
                for (int j = 0; j < c.seqlen_k; ++j) {
                    if (!visible(c, i, j)) { scores[j] = -INFINITY; continue; }
                    const size_t kj = size_t(b) * a.k_batch_stride + size_t(j) * a.k_token_stride + size_t(h / group) * c.hdim;
                    double dot = 0;
                    for (int d = 0; d < c.hdim; ++d) dot += double(from_bits(q[qi + d], c.dtype)) * from_bits(k[kj + d], c.dtype);
                    scores[j] = dot * a.softmax_scale;
                    top = std::max(top, scores[j]);
                }
                double denom = 0;
                for (int j = 0; j < c.seqlen_k; ++j) denom += scores[j] == -INFINITY ? 0 : std::exp(scores[j] - top);
                for (int d = 0; d < c.hdim; ++d) {
                    double want = 0;
                    for (int j = 0; j < c.seqlen_k; ++j) {
                        if (scores[j] == -INFINITY) continue;
                        const size_t vj = size_t(b) * a.v_batch_stride + size_t(j) * a.v_token_stride + size_t(h / group) * c.hdim;
                        want += std::exp(scores[j] - top) / denom * from_bits(v[vj + d], c.dtype);
                    }
                    const double got = from_bits(o[qi + d], c.dtype);
                    const double err = std::fabs(got - want) / (tol + tol * std::fabs(want));
                    if (!(err <= worst)) worst = std::isnan(err) ? INFINITY : err;
                }
            }
    check(worst <= 1.0, name_of(c) + ": worst error " + std::to_string(worst) + " of tolerance " + std::to_string(tol));
}

// The instance a case needs, in the generator's own name tokens: a library built with a narrower
// instance set (a stack's component_env FMHA_FILTER) reports the cases it cannot serve as not built,
// and still checks every case it can.
bool built_for(const Case &c, const std::string &instances) {
    const char *dtype = c.dtype == ROCSTACK_FMHA_FP16 ? "_fp16_" : "_bf16_";
    const char *mask = c.mask == ROCSTACK_FMHA_NO_MASK ? "_nmask_" : "_mask_";
    const char *pad = c.seqlen_k % 128 == 0 ? "_psddv_" : "_psskddv_";
    size_t start = 0;
    while (start < instances.size()) {
        size_t end = instances.find('\n', start);
        if (end == std::string::npos) end = instances.size();
        const std::string name = instances.substr(start, end - start);
        if (name.find(dtype) != std::string::npos && name.find(mask) != std::string::npos && name.find(pad) != std::string::npos)
            return true;
        start = end + 1;
    }
    return false;
}

void test_without_gpu() {
    const std::string instances = rocstack_ck_fmha_instances();
    check(!instances.empty(), "instances compiled in:\n" + instances);
    check(std::strlen(rocstack_ck_fmha_targets()) > 0, std::string("built for: ") + rocstack_ck_fmha_targets());
    check(rocstack_ck_fmha_abi_version() == ROCSTACK_CK_FMHA_ABI_VERSION, "ABI version of the loaded library matches the header");
    Case c{ROCSTACK_FMHA_FP16, ROCSTACK_FMHA_NO_MASK, 1, 16, 16, 4, 3, 128};
    rocstack_fmha_fwd_args a = layout(c);
    int dummy = 0;
    a.q = a.k = a.v = a.o = &dummy;
    int status = rocstack_ck_fmha_fwd(&a, nullptr);
    const std::string message = rocstack_ck_fmha_last_error();
    check(status == ROCSTACK_FMHA_INVALID_ARGUMENT && !message.empty(), "nhead_q not a multiple of nhead_k is refused (" + message + ")");
    a = layout(c);
    a.q = a.k = a.v = a.o = &dummy;
    a.nhead_k = 4;
    a.q_batch_stride = int64_t{1} << 33;
    check(rocstack_ck_fmha_fwd(&a, nullptr) == ROCSTACK_FMHA_INVALID_ARGUMENT, "a stride past 2^31 is refused");
}

}  // namespace

int main() {
    test_without_gpu();
    if (failures == 0) {
        int count = 0;
        if (hipGetDeviceCount(&count) != hipSuccess || count == 0) {
            // without a device the call must say so, not claim "no instance"
            Case c{ROCSTACK_FMHA_FP16, ROCSTACK_FMHA_NO_MASK, 1, 16, 16, 4, 4, 128};
            rocstack_fmha_fwd_args a = layout(c);
            int dummy = 0;
            a.q = a.k = a.v = a.o = &dummy;
            const int status = rocstack_ck_fmha_fwd(&a, nullptr);
            check(status == ROCSTACK_FMHA_RUNTIME_ERROR, std::string("without a device the call says so: ") + rocstack_ck_fmha_last_error());
        }
    }
    if (const int status = rocstack_test::status_before_gpu_checks(); status >= 0) return status;
    std::mt19937 rng(42);
    // seqlen_k a multiple of 128 and not: the generator emits separate instances for the two.
    const Case cases[] = {
        {ROCSTACK_FMHA_FP16, ROCSTACK_FMHA_NO_MASK, 2, 256, 256, 4, 2, 128},
        {ROCSTACK_FMHA_FP16, ROCSTACK_FMHA_CAUSAL_BOTTOM_RIGHT, 2, 77, 200, 4, 2, 128},
        {ROCSTACK_FMHA_BF16, ROCSTACK_FMHA_NO_MASK, 1, 100, 333, 4, 4, 128},
        {ROCSTACK_FMHA_BF16, ROCSTACK_FMHA_CAUSAL_TOP_LEFT, 2, 256, 256, 2, 1, 128},
        {ROCSTACK_FMHA_FP16, ROCSTACK_FMHA_NO_MASK, 1, 64, 130, 2, 2, 64},  // hdim 64 through the padded d128 instance
    };
    const std::string instances = rocstack_ck_fmha_instances();
    int ran = 0;
    for (const Case &c : cases) {
        if (!built_for(c, instances)) {
            std::printf("not built: %s (no instance of that kind in this library's instance set)\n", name_of(c).c_str());
            continue;
        }
        rng.seed(42);
        run_case(c, rng);
        ++ran;
    }
    check(ran > 0, std::to_string(ran) + " case(s) checked against the CPU reference (none would mean the instance set serves none)");
    Case big{ROCSTACK_FMHA_FP16, ROCSTACK_FMHA_NO_MASK, 1, 16, 16, 1, 1, 256};
    rocstack_fmha_fwd_args a = layout(big);
    int dummy = 0;
    a.q = a.k = a.v = a.o = &dummy;  // never dereferenced: no instance is found for hdim 256
    check(rocstack_ck_fmha_fwd(&a, nullptr) == ROCSTACK_FMHA_UNSUPPORTED,
          std::string("hdim 256 has no instance: ") + rocstack_ck_fmha_last_error());
    return rocstack_test::final_status();
}
