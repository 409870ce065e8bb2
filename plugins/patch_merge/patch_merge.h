// Patch merging: 2x2 gather (timm channel order) + zero padding of odd sizes + LayerNorm(4C), torch-free API.
// The 4C -> 2C reduction GEMM runs outside (cuBLASLt / TensorRT).
//
//   out[b, i, j] = LN(cat(x[2i, 2j], x[2i+1, 2j], x[2i, 2j+1], x[2i+1, 2j+1]))   (out-of-range positions read 0)
#pragma once
#include <cstdint>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace trt_swin {

struct PatchMergeParams {
  const __half* x;        // [B, H, W, C] fp16
  const float* gamma;     // [4C]
  const float* beta;      // [4C]
  float eps;
  void* out;              // [B, ceil(H/2), ceil(W/2), 4C]: fp16, int8 when out_int8, fp8 e4m3 when out_fp8
  bool out_int8 = false;  // int8 output: sat(round(LN / out_scale))
  bool out_fp8 = false;   // fp8 e4m3 output: sat(LN / out_scale, +-448), round to nearest even; not with out_int8
  float out_scale = 1.f;
  int B, H, W, C;
};

cudaError_t patch_merge(const PatchMergeParams& p, cudaStream_t stream);

}  // namespace trt_swin
