// LayerNorm of one token row held in shared memory, in place, by one warp (kernel code only). Shared by the fused
// attention and fused MLP kernels, which normalize their gathered tile before its first GEMM.
#pragma once
#include <cuda_fp16.h>

#include "common/memops_rowwise.cuh"  // memops::group_sum

namespace trt_swin {

// row[c] = fp16((row[c] - mean) * rstd * gamma[c] + beta[c]) over C channels (a multiple of 32), with two-pass FP32
// statistics; the row lives in registers (C / 32 values a lane) between the read and the write.
template <int C>
__device__ __forceinline__ void layernorm_row_inplace(__half* row, int lane, const float* gamma, const float* beta,
                                                      float eps) {
  constexpr int E = C / 32;
  float v[E];
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < E; ++i) {
    v[i] = __half2float(row[lane + 32 * i]);
    s += v[i];
  }
  const float mean = memops::group_sum<32>(s) * (1.f / C);
  float q = 0.f;
#pragma unroll
  for (int i = 0; i < E; ++i) {
    const float d = v[i] - mean;
    q += d * d;
  }
  const float rstd = rsqrtf(memops::group_sum<32>(q) * (1.f / C) + eps);
#pragma unroll
  for (int i = 0; i < E; ++i) {
    const int c = lane + 32 * i;
    row[c] = __float2half_rn(fmaf((v[i] - mean) * rstd, __ldg(gamma + c), __ldg(beta + c)));
  }
}

}  // namespace trt_swin
