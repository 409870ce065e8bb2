// Window reverse + reverse shift + crop + residual add (+ LayerNorm of the result), torch-free API.
//
//   out[b, h, w] = residual[b, h, w] + (y_window_order[token(b, (h - shift) mod H, (w - shift) mod W)] + bias)
//   ln_out       = LayerNorm(out) (the block's norm2), when ln_gamma != nullptr
// where token(...) is the window-major row that ln_shift_partition wrote for that (shifted) position; padded
// rows of y are dropped. Statistics in FP32.
#pragma once
#include <cstdint>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace trt_swin {

struct WindowReverseParams {
  const void* y;            // [B * nWh * nWw * ws * ws, C] window-order proj output: fp16, or int8 when y_int8
  bool y_int8 = false;
  float y_scale = 1.f;      // int8 y: real = y * y_scale
  const float* bias;        // [C] proj bias, or nullptr when the GEMM already added it
  const __half* residual;   // [B, H, W, C] fp16 block input
  __half* out;              // [B, H, W, C] fp16; may alias residual (in-place update)
  const float* ln_gamma;    // [C] or nullptr: no LayerNorm output
  const float* ln_beta;     // [C]
  float eps = 1e-5f;
  void* ln_out;             // [B, H, W, C]: fp16, int8 when ln_out_int8, fp8 e4m3 when ln_out_fp8
  bool ln_out_int8 = false; // int8: sat(round(LN / ln_out_scale))
  bool ln_out_fp8 = false;  // fp8 e4m3: sat(LN / ln_out_scale, +-448), round to nearest even; not with ln_out_int8
  float ln_out_scale = 1.f;
  int B, H, W, C, ws, shift;
};

cudaError_t window_reverse(const WindowReverseParams& p, cudaStream_t stream);

}  // namespace trt_swin
