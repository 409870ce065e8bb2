// PyTorch CUDA kernel of trt_swin::patch_merge (schema in op.py): checks -> params -> launch.
#include "common/torch_checks.h"
#include "patch_merge/patch_merge.h"

namespace {

at::Tensor patch_merge_cuda(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta, double eps,
                            std::optional<double> out_scale, bool out_fp8) {
  TRT_SWIN_CHECK_CUDA(x);
  TRT_SWIN_CHECK_CONTIGUOUS(x);
  TRT_SWIN_CHECK_DTYPE(x, at::kHalf);
  TORCH_CHECK(x.dim() == 4, "patch_merge: x must be [B, H, W, C], got ", x.sizes());
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  TORCH_CHECK(C % 8 == 0, "patch_merge: C must be a multiple of 8 (16-byte vectors), got ", C);
  TORCH_CHECK(C <= 1024, "patch_merge: C must be at most 1024 (4C <= 4096), got ", C);
  for (const at::Tensor* p : {&gamma, &beta}) {
    TORCH_CHECK(p->device() == x.device(), "patch_merge: gamma and beta must be on x's device");
    TRT_SWIN_CHECK_CONTIGUOUS(*p);
    TRT_SWIN_CHECK_DTYPE(*p, at::kFloat);
  }
  TRT_SWIN_CHECK_SHAPE(gamma, 4 * C);
  TRT_SWIN_CHECK_SHAPE(beta, 4 * C);
  TORCH_CHECK(!out_scale || *out_scale > 0, "patch_merge: out_scale must be positive");
  TORCH_CHECK(!out_fp8 || out_scale, "patch_merge: out_fp8 needs out_scale (the FP8 per-tensor scale)");

  const c10::cuda::CUDAGuard guard(x.device());
  const at::ScalarType out_type = !out_scale ? at::kHalf : out_fp8 ? at::kFloat8_e4m3fn : at::kChar;
  at::Tensor out = at::empty({B, (H + 1) / 2, (W + 1) / 2, 4 * C}, x.options().dtype(out_type));
  trt_swin::PatchMergeParams p;
  p.x = reinterpret_cast<const __half*>(x.data_ptr<at::Half>());
  p.gamma = gamma.data_ptr<float>();
  p.beta = beta.data_ptr<float>();
  p.eps = static_cast<float>(eps);
  p.out = out.data_ptr();
  p.out_int8 = out_scale.has_value() && !out_fp8;
  p.out_fp8 = out_fp8;
  p.out_scale = out_scale ? static_cast<float>(*out_scale) : 1.f;
  p.B = static_cast<int>(B);
  p.H = static_cast<int>(H);
  p.W = static_cast<int>(W);
  p.C = static_cast<int>(C);
  if (out.numel() > 0) TRT_SWIN_CHECK_LAUNCH(trt_swin::patch_merge(p, at::cuda::getCurrentCUDAStream()), "patch_merge");
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(trt_swin, CUDA, m) { m.impl("patch_merge", &patch_merge_cuda); }
