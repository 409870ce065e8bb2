// LayerNorm + cyclic shift + window partition (+ zero padding), torch-free API.
//
// timm order: x -> norm1 -> roll(-shift, -shift) -> pad to multiples of ws (zeros, after the norm) -> window_partition.
// out row r = ((b * nWh + wh) * nWw + ww) * N + i * ws + j holds LN(x)[b, (wh*ws + i + shift) % H, (ww*ws + j + shift) % W]
// for in-range padded coordinates, and zeros for padded ones. Statistics in FP32.
#pragma once
#include <cstdint>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace trt_swin {

struct LnShiftPartitionParams {
  const __half* x;       // [B, H, W, C] fp16
  const float* gamma;    // [C]
  const float* beta;     // [C]
  float eps;
  void* out;             // [B * nWh * nWw * ws * ws, C]: fp16, int8 when out_int8, fp8 e4m3 when out_fp8
  int B, H, W, C;
  int ws;                // window size; nWh = ceil(H / ws), nWw = ceil(W / ws)
  int shift;             // 0 for unshifted blocks
  bool out_int8 = false; // int8 output: sat(round(LN / out_scale))
  bool out_fp8 = false;  // fp8 e4m3 output: sat(LN / out_scale, +-448), round to nearest even; not with out_int8
  float out_scale = 1.f;
};

cudaError_t ln_shift_partition(const LnShiftPartitionParams& p, cudaStream_t stream);

}  // namespace trt_swin
