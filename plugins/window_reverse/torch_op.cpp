// PyTorch CUDA kernels of trt_swin::window_reverse and trt_swin::window_reverse_inplace (schemas in op.py):
// checks -> params -> launch.
#include <tuple>

#include "common/torch_checks.h"
#include "window_reverse/window_reverse.h"

namespace {

// Validates the inputs and launches with `out` (which may be `residual` itself); returns ln_out (empty when no LN).
at::Tensor run_window_reverse(const at::Tensor& y, const at::Tensor& residual, const std::optional<at::Tensor>& bias,
                              int64_t window_size, int64_t shift, double y_scale,
                              const std::optional<at::Tensor>& ln_gamma, const std::optional<at::Tensor>& ln_beta,
                              double eps, std::optional<double> ln_out_scale, bool out_fp8,
                              const at::Tensor& out) {
  TRT_SWIN_CHECK_CUDA(residual);
  TRT_SWIN_CHECK_CONTIGUOUS(residual);
  TRT_SWIN_CHECK_DTYPE(residual, at::kHalf);
  TORCH_CHECK(residual.dim() == 4, "window_reverse: residual must be [B, H, W, C], got ", residual.sizes());
  const int64_t B = residual.size(0), H = residual.size(1), W = residual.size(2), C = residual.size(3);
  TORCH_CHECK(C % 8 == 0, "window_reverse: C must be a multiple of 8 (16-byte vectors), got ", C);
  TORCH_CHECK(C <= 4096, "window_reverse: C must be at most 4096, got ", C);
  TORCH_CHECK(window_size > 0 && shift >= 0, "window_reverse: need window_size > 0 and shift >= 0, got ", window_size,
              " and ", shift);
  const int64_t nWh = (H + window_size - 1) / window_size, nWw = (W + window_size - 1) / window_size;

  TORCH_CHECK(y.device() == residual.device(), "window_reverse: y and residual must be on the same device");
  TRT_SWIN_CHECK_CONTIGUOUS(y);
  TORCH_CHECK(y.scalar_type() == at::kHalf || y.scalar_type() == at::kChar,
              "window_reverse: y must be float16 or int8, got ", y.scalar_type());
  TORCH_CHECK(y.scalar_type() == at::kChar || y_scale == 1.0,
              "window_reverse: y_scale applies to int8 y only; got y_scale=", y_scale, " with float16 y");
  TRT_SWIN_CHECK_SHAPE(y, B * nWh * nWw * window_size * window_size, C);
  auto check_param = [&](const at::Tensor& t, const char* name) {
    TORCH_CHECK(t.device() == residual.device(), "window_reverse: ", name, " must be on residual's device");
    TORCH_CHECK(t.is_contiguous() && t.scalar_type() == at::kFloat && t.dim() == 1 && t.size(0) == C,
                "window_reverse: ", name, " must be a contiguous float32 [C=", C, "] tensor, got ", t.scalar_type(),
                " ", t.sizes());
  };
  if (bias) check_param(*bias, "bias");
  TORCH_CHECK(ln_gamma.has_value() == ln_beta.has_value(), "window_reverse: give both ln_gamma and ln_beta, or neither");
  TORCH_CHECK(ln_gamma || !ln_out_scale, "window_reverse: ln_out_scale needs ln_gamma / ln_beta");
  TORCH_CHECK(!ln_out_scale || *ln_out_scale > 0, "window_reverse: ln_out_scale must be positive");
  TORCH_CHECK(!out_fp8 || ln_out_scale,
              "window_reverse: out_fp8 needs ln_out_scale (the FP8 per-tensor scale)");
  TORCH_CHECK(y_scale > 0, "window_reverse: y_scale must be positive");
  if (ln_gamma) {
    check_param(*ln_gamma, "ln_gamma");
    check_param(*ln_beta, "ln_beta");
  }

  const c10::cuda::CUDAGuard guard(residual.device());
  const at::ScalarType ln_type = !ln_out_scale ? at::kHalf : out_fp8 ? at::kFloat8_e4m3fn : at::kChar;
  at::Tensor ln_out = ln_gamma ? at::empty_like(residual, residual.options().dtype(ln_type))
                               : at::empty({0}, residual.options());
  trt_swin::WindowReverseParams p;
  p.y = y.data_ptr();
  p.y_int8 = y.scalar_type() == at::kChar;
  p.y_scale = static_cast<float>(y_scale);
  p.bias = bias ? bias->data_ptr<float>() : nullptr;
  p.residual = reinterpret_cast<const __half*>(residual.data_ptr<at::Half>());
  p.out = reinterpret_cast<__half*>(out.data_ptr<at::Half>());
  p.ln_gamma = ln_gamma ? ln_gamma->data_ptr<float>() : nullptr;
  p.ln_beta = ln_beta ? ln_beta->data_ptr<float>() : nullptr;
  p.eps = static_cast<float>(eps);
  p.ln_out = ln_gamma ? ln_out.data_ptr() : nullptr;
  p.ln_out_int8 = ln_out_scale.has_value() && !out_fp8;
  p.ln_out_fp8 = out_fp8;
  p.ln_out_scale = ln_out_scale ? static_cast<float>(*ln_out_scale) : 1.f;
  p.B = static_cast<int>(B);
  p.H = static_cast<int>(H);
  p.W = static_cast<int>(W);
  p.C = static_cast<int>(C);
  p.ws = static_cast<int>(window_size);
  p.shift = static_cast<int>(shift);
  if (residual.numel() > 0)
    TRT_SWIN_CHECK_LAUNCH(trt_swin::window_reverse(p, at::cuda::getCurrentCUDAStream()), "window_reverse");
  return ln_out;
}

std::tuple<at::Tensor, at::Tensor> window_reverse_cuda(const at::Tensor& y, const at::Tensor& residual,
                                                       const std::optional<at::Tensor>& bias, int64_t window_size,
                                                       int64_t shift, double y_scale,
                                                       const std::optional<at::Tensor>& ln_gamma,
                                                       const std::optional<at::Tensor>& ln_beta, double eps,
                                                       std::optional<double> ln_out_scale, bool out_fp8) {
  TRT_SWIN_CHECK_CUDA(residual);
  at::Tensor out = at::empty_like(residual, at::MemoryFormat::Contiguous);
  at::Tensor ln_out = run_window_reverse(y, residual, bias, window_size, shift, y_scale, ln_gamma, ln_beta, eps,
                                         ln_out_scale, out_fp8, out);
  return {out, ln_out};
}

// residual is updated in place (the launcher's out == residual case, FasterTransformer's INT8 block layout).
at::Tensor window_reverse_inplace_cuda(const at::Tensor& y, at::Tensor& residual, const std::optional<at::Tensor>& bias,
                                       int64_t window_size, int64_t shift, double y_scale,
                                       const std::optional<at::Tensor>& ln_gamma,
                                       const std::optional<at::Tensor>& ln_beta, double eps,
                                       std::optional<double> ln_out_scale, bool out_fp8) {
  return run_window_reverse(y, residual, bias, window_size, shift, y_scale, ln_gamma, ln_beta, eps, ln_out_scale,
                            out_fp8, residual);
}

}  // namespace

TORCH_LIBRARY_IMPL(trt_swin, CUDA, m) {
  m.impl("window_reverse", &window_reverse_cuda);
  m.impl("window_reverse_inplace", &window_reverse_inplace_cuda);
}
