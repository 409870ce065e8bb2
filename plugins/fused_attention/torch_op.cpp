// PyTorch CUDA kernel of trt_swin::fused_attention_ (schema in op.py): checks -> params -> launch. x is updated in
// place.
#include <cstdint>

#include "common/torch_checks.h"
#include "fused_attention/fused_attention.h"

namespace {

at::Tensor& fused_attention_cuda(at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta, double eps,
                                 const at::Tensor& w_qkv, const at::Tensor& b_qkv, const at::Tensor& bias64,
                                 const at::Tensor& w_proj, const at::Tensor& b_proj, int64_t window_size,
                                 int64_t shift, double scale) {
  TRT_SWIN_CHECK_CUDA(x);
  TRT_SWIN_CHECK_CONTIGUOUS(x);
  TRT_SWIN_CHECK_DTYPE(x, at::kHalf);
  TORCH_CHECK(x.dim() == 4, "fused_attention_: x must be [B, H, W, C], got ", x.sizes());
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  TORCH_CHECK(C % 32 == 0 && C >= 32 && C <= 192,
              "fused_attention_: C must be a multiple of 32 in [32, 192] (head_dim 32), got C=", C);
  TORCH_CHECK(window_size >= 1 && window_size <= 8,
              "fused_attention_: window_size must be in 1..8 (N <= 64 tokens), got ", window_size);
  TORCH_CHECK(shift >= 0 && shift < window_size, "fused_attention_: shift must be in [0, window_size=", window_size,
              "), got ", shift);
  TORCH_CHECK(B * H * W < (int64_t{1} << 31), "fused_attention_: B * H * W must be below 2^31");
  auto check_param = [&](const at::Tensor& t, const char* name, at::ScalarType dtype, at::IntArrayRef shape) {
    TORCH_CHECK(t.device() == x.device(), "fused_attention_: ", name, " must be on x's device (", x.device(),
                "), got ", t.device());
    TORCH_CHECK(t.is_contiguous(), "fused_attention_: ", name, " must be contiguous");
    TORCH_CHECK(t.scalar_type() == dtype, "fused_attention_: ", name, " must have dtype ", dtype, ", got ",
                t.scalar_type());
    TORCH_CHECK(t.sizes() == shape, "fused_attention_: ", name, " must have shape ", shape, ", got ", t.sizes());
    TORCH_CHECK(reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0, "fused_attention_: ", name,
                " must be 16-byte aligned (an offset view of a larger tensor is not)");
  };
  check_param(gamma, "gamma", at::kFloat, {C});
  check_param(beta, "beta", at::kFloat, {C});
  check_param(w_qkv, "w_qkv", at::kHalf, {3 * C, C});
  check_param(b_qkv, "b_qkv", at::kFloat, {3 * C});
  check_param(bias64, "bias64", at::kFloat, {C / 32, 64, 64});
  check_param(w_proj, "w_proj", at::kHalf, {C, C});
  check_param(b_proj, "b_proj", at::kFloat, {C});
  TORCH_CHECK(reinterpret_cast<uintptr_t>(x.data_ptr()) % 16 == 0,
              "fused_attention_: x must be 16-byte aligned (an offset view of a larger tensor is not)");

  const c10::cuda::CUDAGuard guard(x.device());
  trt_swin::FusedAttentionParams p;
  p.x = reinterpret_cast<__half*>(x.data_ptr<at::Half>());
  p.gamma = gamma.data_ptr<float>();
  p.beta = beta.data_ptr<float>();
  p.eps = static_cast<float>(eps);
  p.w_qkv = reinterpret_cast<const __half*>(w_qkv.data_ptr<at::Half>());
  p.b_qkv = b_qkv.data_ptr<float>();
  p.bias64 = bias64.data_ptr<float>();
  p.w_proj = reinterpret_cast<const __half*>(w_proj.data_ptr<at::Half>());
  p.b_proj = b_proj.data_ptr<float>();
  p.B = static_cast<int>(B);
  p.H = static_cast<int>(H);
  p.W = static_cast<int>(W);
  p.C = static_cast<int>(C);
  p.ws = static_cast<int>(window_size);
  p.shift = static_cast<int>(shift);
  p.scale = static_cast<float>(scale);
  if (B > 0) {
    const cudaError_t err = trt_swin::fused_attention(p, at::cuda::getCurrentCUDAStream());
    TORCH_CHECK(err != cudaErrorNotSupported,
                "fused_attention_: this GPU has too little shared memory per block for the C=", C, " tile");
    TRT_SWIN_CHECK_LAUNCH(err, "fused_attention_");
  }
  return x;
}

}  // namespace

TORCH_LIBRARY_IMPL(trt_swin, CUDA, m) { m.impl("fused_attention_", &fused_attention_cuda); }

