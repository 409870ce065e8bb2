// Swin patch embedding (the stem), torch-free API: 4 x 4 patches of an NCHW image -> GEMM (+ bias) -> LayerNorm,
// written once as the residual stream [B, H/4, W/4, C] fp16.
//
//   out[b, hp, wp, :] = LN(fp16(patch(b, hp, wp) @ W[:, :48]^T + bias))        (LN optional)
//
// patch(b, hp, wp) is the 4 x 4 x 3 block under patch (hp, wp), flattened as (cin, i, j): timm's Conv2d(3, C, 4,
// stride 4) weight reshaped to [C, 48]. Roundings as reference.patch_embed_ref: the patch in fp16, the GEMM in FP32
// plus the fp16 bias, rounded to fp16, the LayerNorm in FP32.
#pragma once
#include <cstdint>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace trt_swin {

struct PatchEmbedParams {
  const void* images;          // [B, 3, H, W] fp16, or fp32 when images_fp32
  bool images_fp32 = false;
  const __half* weight;        // [C, ldw] fp16, ldw >= 48 (columns past 48, the GEMM's K padding, are not read)
  int ldw;
  const __half* bias;          // [C] fp16
  const float* gamma;          // [C] or nullptr (no LayerNorm; then beta is nullptr too)
  const float* beta;
  float eps;
  __half* out;                 // [B, H/4, W/4, C] fp16
  int B, H, W, C;
};

// The shapes the kernel is built for: 3 input channels, patch 4, C in {96, 128, 192} (Swin V1 T/S, B, L), an image
// width whose rows are whole 16-byte vectors (W % 8 == 0 for fp16 images, W % 4 for fp32) and H % 4 == 0.
bool patch_embed_supported(int cin, int patch, int C, int H, int W, bool images_fp32);

cudaError_t patch_embed(const PatchEmbedParams& p, cudaStream_t stream);

}  // namespace trt_swin
