// The attention half of a Swin V1 block in one kernel, in place, torch-free API.
//
//   x += window_reverse(unshift(proj(WindowAttention(window_partition(shift(LayerNorm(x)))))))
//
// per window of N <= 64 tokens (ws <= 8) and head_dim 32: a CTA gathers its window's rows of x (shift and padding
// folded into the gather), LayerNorms them, and per head computes q, k, v, softmax(q k^T * scale + bias + mask) v
// and that head's share of the projection, all on chip; the projected rows + b_proj are added to x at the rows they
// came from. Only x is read and written in DRAM (perf_floor.md: the "window-fused" attention half).
//
// Numerics are those of the unfused FP16 engine (ln_shift_partition -> QKV GEMM -> window_attention -> proj GEMM ->
// window_reverse): LayerNorm statistics in FP32, its output rounded to fp16; q, k, v accumulate in FP32, + bias,
// rounded to fp16; logits and softmax in FP32, P rounded to fp16 for P v, the normalized head output rounded to
// fp16; the projection accumulates in FP32, + b_proj rounded to fp16, then added to x in FP32 and rounded once.
// The shift mask is timm's (-100 between tokens of different regions of the padded, shifted map), computed from
// the window coordinates instead of read from a table.
#pragma once
#include <cstdint>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace trt_swin {

struct FusedAttentionParams {
  __half* x;              // [B, H, W, C] fp16 residual stream, read and updated in place
  const float* gamma;     // [C] LayerNorm (norm1) weight
  const float* beta;      // [C] LayerNorm bias
  float eps;
  const __half* w_qkv;    // [3C, C] qkv weight (nn.Linear layout, rows [q | k | v], each [nH][32])
  const float* b_qkv;     // [3C]
  const float* bias64;    // [nH, 64, 64] relative-position bias padded to 64 keys: -inf at keys >= N, finite
                          // (ignored) at rows >= N (fused_attention_pad_bias in op.py builds it)
  const __half* w_proj;   // [C, C] proj weight
  const float* b_proj;    // [C]
  int B, H, W, C;         // C = 32 * num_heads, a multiple of 32 in [32, 192]
  int ws;                 // window size, 1..8 (N = ws * ws <= 64)
  int shift;              // 0 (unshifted block) or the cyclic shift, < ws
  float scale;            // multiplies q k^T (1 when the attention scale is folded into the q weights)
  int windows_per_cta = 0;  // mma.sync kernel: 0 by size (or $TRT_SWIN_FATTN_WPC, a sweep knob); 1 or 2 forces one
  // 0: the Hopper (wgmma) kernel where it runs (compute capability 9.0, built with sm_90a, C <= 128), else the
  // mma.sync kernel; 1: the mma.sync kernel; 2: the wgmma kernel or cudaErrorNotSupported. $TRT_SWIN_FATTN_IMPL
  // (mma | wgmma) sets it when 0 (sweeps and tests).
  int impl = 0;
};

// True when (C, ws, shift) is supported (see FusedAttentionParams).
bool fused_attention_supported(int C, int ws, int shift);

// cudaErrorInvalidValue for unsupported shapes or null pointers, cudaErrorMisalignedAddress unless every pointer is
// 16-byte aligned, cudaErrorNotSupported when the device has too little shared memory per block for the tile.
cudaError_t fused_attention(const FusedAttentionParams& p, cudaStream_t stream);

// The Hopper kernel (fused_attention_sm90a.cu, compiled for sm_90a only: TRT_SWIN_HAS_SM90A), called by
// fused_attention on a compute capability 9.0 device. warpgroups: 2 or 3 per CTA ($TRT_SWIN_FATTN_WG, default 3; 3 becomes 2
// where the shared memory does not fit).
bool fused_attention_sm90a_supported(int C);
cudaError_t fused_attention_sm90a(const FusedAttentionParams& p, int64_t num_windows, int warpgroups,
                                  cudaStream_t stream);

}  // namespace trt_swin
