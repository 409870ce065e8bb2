// Patch merging with its reduction GEMM in one kernel (Hopper, sm_90a), torch-free API:
//
//   out[b, i, j] = LN(cat(x[2i, 2j], x[2i+1, 2j], x[2i, 2j+1], x[2i+1, 2j+1])) @ W^T          (timm's PatchMerging)
//                = rstd * (g @ W'^T - mean * u) + v,   g = that 4C gather, W' = W diag(gamma), u = rowsum(W'),
//                  v = W beta                                          (plugins/ln_gemm/reference.fold_layer_norm)
//
// so the gathered, normalized [M, 4C] tile never goes through global memory (patch_merge + a GEMM write and re-read
// it). Swin V1 stage-1 widths: C 32 / 64 / 96 (N = 2C), even H and W (every 224 / 384 model; odd maps take
// patch_merge's padding path).
#pragma once
#include <cstdint>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace trt_swin {

struct PatchMergeGemmParams {
  const __half* x;  // [B, H, W, C] fp16
  const __half* w;  // [N, 4C] fp16: W' (the LayerNorm's gamma folded in), K-major
  const float* u;   // [N]: row sums of w as stored (fp16 values summed in FP32)
  const float* v;   // [N]: W beta (+ the GEMM's bias)
  float eps;
  __half* out;      // [B, H/2, W/2, N] fp16
  int B, H, W, C, N;
};

// Whether a (C, N, H, W) map has a kernel: C in {32, 64, 96}, N == 2C, H and W even.
bool patch_merge_gemm_supported(int C, int N, int H, int W);
// cudaErrorNotSupported where no sm_90a kernel was built or the device is not compute capability 9.0;
// cudaErrorInvalidValue for shapes outside patch_merge_gemm_supported; cudaErrorMisalignedAddress unless x, w, u, v
// and out are 16-byte aligned.
cudaError_t patch_merge_gemm(const PatchMergeGemmParams& p, cudaStream_t stream);

}  // namespace trt_swin
