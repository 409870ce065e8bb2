// Windowed multi-head attention of Swin V1, torch-free API (shared by the PyTorch op and the TensorRT plugin).
//
// For every window w in [0, num_windows) and head h:
//   out[w, :, h] = softmax(q k^T * scale + bias[h] + mask[w % nW]) v        (q, k, v: [N, hd] of window w, head h)
// with FP32 softmax statistics and accumulation. Semantics are timm's WindowAttention (mask values 0 / -100).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

namespace trt_swin {

struct WindowAttentionParams {
  const void* qkv;     // [num_windows * N, 3 * C] window-major tokens, per token [3][nH][hd] (timm qkv Linear output);
                       // fp16, or int8 when qkv_int8
  const float* bias;   // [nH, N, N] relative-position bias, gathered from the table once at build time
  const float* mask;   // [nW, N, N] shifted-window mask (0 / -100), or nullptr for an unshifted block
  void* out;           // [num_windows * N, C] heads merged, per token [nH][hd]; fp16, or int8 / fp8 e4m3 when
                       // out_int8 / out_fp8
  int num_windows;     // B * nW
  int nW;              // windows per image: window w uses mask[w % nW]
  int N;               // tokens per window (ws * ws), 1..144
  int num_heads;       // nH
  int head_dim;        // hd: 16, 32 or 64
  float scale;         // multiplies q k^T (timm: hd^-0.5; 1 when folded into the q weights)
  bool qkv_int8 = false;  // int8 input: real = q * q_scale (k, v likewise)
  float q_scale = 1.f, k_scale = 1.f, v_scale = 1.f;
  bool out_int8 = false;  // int8 output: sat(round(real / out_scale))
  float out_scale = 1.f;
  bool out_fp8 = false;   // FP8 E4M3 output: sat(real / out_scale, +-448) rounded to nearest even (common/fp8.cuh);
                          // exclusive with out_int8
};

cudaError_t window_attention(const WindowAttentionParams& p, cudaStream_t stream);

}  // namespace trt_swin
