// FP8 E4M3 output quantization shared by the kernels' FP8-out variants (the FP8 engine's GEMM inputs).
// Not a public API: kernel code only.
//
// q = fp8_e4m3(sat(v / scale, +-448)), round to nearest even: the same value as PyTorch's
// (v / scale).clamp(-448, 448).to(torch.float8_e4m3fn), which the references use. __fdiv_rn keeps the IEEE division
// under --use_fast_math. The conversion is a software sequence before sm_89, so the code compiles for every arch.
#pragma once
#include <cstdint>
#include <cuda_fp8.h>

namespace trt_swin {

constexpr float kFp8E4M3Max = 448.f;

__device__ __forceinline__ uint8_t quantize_fp8_e4m3(float v, float scale) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(__fdiv_rn(v, scale), __NV_SATFINITE, __NV_E4M3));
}

// 8 values -> 8 bytes (one 8-byte store).
__device__ __forceinline__ uint2 float_to_fp8x8(const float (&f)[8], float scale) {
  uint2 raw;
  uint8_t* q = reinterpret_cast<uint8_t*>(&raw);
#pragma unroll
  for (int i = 0; i < 8; ++i) q[i] = quantize_fp8_e4m3(f[i], scale);
  return raw;
}

}  // namespace trt_swin
