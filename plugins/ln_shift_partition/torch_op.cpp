// PyTorch CUDA kernel of trt_swin::ln_shift_partition (schema in op.py): checks -> params -> launch.
#include "common/torch_checks.h"
#include "ln_shift_partition/ln_shift_partition.h"

namespace {

at::Tensor ln_shift_partition_cuda(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta, double eps,
                                   int64_t window_size, int64_t shift, std::optional<double> out_scale,
                                   bool out_fp8) {
  TRT_SWIN_CHECK_CUDA(x);
  TRT_SWIN_CHECK_CONTIGUOUS(x);
  TRT_SWIN_CHECK_DTYPE(x, at::kHalf);
  TORCH_CHECK(x.dim() == 4, "ln_shift_partition: x must be [B, H, W, C], got ", x.sizes());
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  TORCH_CHECK(C % 8 == 0, "ln_shift_partition: C must be a multiple of 8 (16-byte vectors), got ", C);
  TORCH_CHECK(C <= 4096, "ln_shift_partition: C must be at most 4096, got ", C);
  TORCH_CHECK(window_size > 0 && shift >= 0, "ln_shift_partition: need window_size > 0 and shift >= 0, got ",
              window_size, " and ", shift);
  for (const at::Tensor* p : {&gamma, &beta}) {
    TORCH_CHECK(p->device() == x.device(), "ln_shift_partition: gamma and beta must be on x's device");
    TRT_SWIN_CHECK_CONTIGUOUS(*p);
    TRT_SWIN_CHECK_DTYPE(*p, at::kFloat);
  }
  TRT_SWIN_CHECK_SHAPE(gamma, C);
  TRT_SWIN_CHECK_SHAPE(beta, C);
  TORCH_CHECK(!out_scale || *out_scale > 0, "ln_shift_partition: out_scale must be positive");
  TORCH_CHECK(!out_fp8 || out_scale, "ln_shift_partition: out_fp8 needs out_scale (the FP8 per-tensor scale)");

  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t nWh = (H + window_size - 1) / window_size, nWw = (W + window_size - 1) / window_size;
  at::Tensor out = at::empty({B * nWh * nWw * window_size * window_size, C},
                             x.options().dtype(!out_scale ? at::kHalf : out_fp8 ? at::kFloat8_e4m3fn : at::kChar));
  trt_swin::LnShiftPartitionParams p;
  p.x = reinterpret_cast<const __half*>(x.data_ptr<at::Half>());
  p.gamma = gamma.data_ptr<float>();
  p.beta = beta.data_ptr<float>();
  p.eps = static_cast<float>(eps);
  p.out = out.data_ptr();
  p.B = static_cast<int>(B);
  p.H = static_cast<int>(H);
  p.W = static_cast<int>(W);
  p.C = static_cast<int>(C);
  p.ws = static_cast<int>(window_size);
  p.shift = static_cast<int>(shift);
  p.out_int8 = out_scale.has_value() && !out_fp8;
  p.out_fp8 = out_fp8;
  p.out_scale = out_scale ? static_cast<float>(*out_scale) : 1.f;
  if (out.numel() > 0)
    TRT_SWIN_CHECK_LAUNCH(trt_swin::ln_shift_partition(p, at::cuda::getCurrentCUDAStream()), "ln_shift_partition");
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(trt_swin, CUDA, m) { m.impl("ln_shift_partition", &ln_shift_partition_cuda); }
