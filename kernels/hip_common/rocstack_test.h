// What the test programs of rocstack's C-ABI HIP libraries share: check lines, HIP error checks,
// the no-GPU skip (exit 77, the reason on the last line) and bit-exact fp16/bf16 on the host.
#ifndef ROCSTACK_TEST_H
#define ROCSTACK_TEST_H

#include <hip/hip_runtime_api.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace rocstack_test {

constexpr int kSkip = 77;
inline int failures = 0;

inline void check(bool ok, const std::string &what) {
    std::printf("%s: %s\n", ok ? "ok" : "FAIL", what.c_str());
    if (!ok) ++failures;
}

inline bool hip_ok(hipError_t err, const char *what) {
    if (err == hipSuccess) return true;
    std::printf("FAIL: %s: %s\n", what, hipGetErrorString(err));
    ++failures;
    return false;
}

// Exit status after the checks that need no GPU: 1 when one failed, 77 (skip) when there is no
// device, -1 to go on with the GPU checks (device 0 is then described).
inline int status_before_gpu_checks() {
    if (failures) {
        std::printf("%d check(s) failed\n", failures);
        return 1;
    }
    int count = 0;
    const hipError_t err = hipGetDeviceCount(&count);
    if (err != hipSuccess || count == 0) {
        std::printf("skip: no GPU (hipGetDeviceCount: %s, %d devices)\n", err != hipSuccess ? hipGetErrorString(err) : "ok", count);
        return kSkip;
    }
    hipDeviceProp_t props{};
    if (!hip_ok(hipGetDeviceProperties(&props, 0), "hipGetDeviceProperties")) return 1;
    std::printf("device 0: %s (%s)\n", props.name, props.gcnArchName);
    return -1;
}

inline int final_status() {
    std::printf(failures ? "%d check(s) failed\n" : "all checks passed\n", failures);
    return failures ? 1 : 0;
}

// Host storage of the 16-bit float types, round to nearest even.
inline uint16_t float_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}

inline float bf16_to_float(uint16_t h) {
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline uint16_t float_to_f16(float f) {
    const _Float16 h = static_cast<_Float16>(f);  // IEEE binary16 (GCC >= 12, clang)
    uint16_t bits;
    std::memcpy(&bits, &h, 2);
    return bits;
}

inline float f16_to_float(uint16_t bits) {
    _Float16 h;
    std::memcpy(&h, &bits, 2);
    return static_cast<float>(h);
}

}  // namespace rocstack_test

#endif  // ROCSTACK_TEST_H
