// PyTorch CUDA kernel of trt_swin::patch_merge_gemm (schema in op.py): checks -> params -> launch.
#include "common/torch_checks.h"
#include "patch_merge_gemm/patch_merge_gemm.h"

namespace {

at::Tensor patch_merge_gemm_cuda(const at::Tensor& x, const at::Tensor& w, const at::Tensor& u, const at::Tensor& v,
                                 double eps) {
  TRT_SWIN_CHECK_CUDA(x);
  TRT_SWIN_CHECK_CONTIGUOUS(x);
  TRT_SWIN_CHECK_DTYPE(x, at::kHalf);
  TORCH_CHECK(x.dim() == 4, "patch_merge_gemm: x must be [B, H, W, C], got ", x.sizes());
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  TORCH_CHECK(w.dim() == 2 && w.size(1) == 4 * C, "patch_merge_gemm: w must be [N, 4C=", 4 * C, "], got ", w.sizes());
  const int64_t N = w.size(0);
  TORCH_CHECK(trt_swin::patch_merge_gemm_supported(static_cast<int>(C), static_cast<int>(N), static_cast<int>(H),
                                                   static_cast<int>(W)),
              "patch_merge_gemm: needs C in {32, 64, 96}, N = 2C and even H, W; got C ", C, ", N ", N, ", ", H, "x", W);
  for (const at::Tensor* t : {&w, &u, &v}) {
    TORCH_CHECK(t->device() == x.device(), "patch_merge_gemm: w, u and v must be on x's device");
    TRT_SWIN_CHECK_CONTIGUOUS(*t);
  }
  TRT_SWIN_CHECK_DTYPE(w, at::kHalf);
  TRT_SWIN_CHECK_DTYPE(u, at::kFloat);
  TRT_SWIN_CHECK_DTYPE(v, at::kFloat);
  TRT_SWIN_CHECK_SHAPE(u, N);
  TRT_SWIN_CHECK_SHAPE(v, N);

  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = at::empty({B, H / 2, W / 2, N}, x.options());
  trt_swin::PatchMergeGemmParams p;
  p.x = reinterpret_cast<const __half*>(x.data_ptr<at::Half>());
  p.w = reinterpret_cast<const __half*>(w.data_ptr<at::Half>());
  p.u = u.data_ptr<float>();
  p.v = v.data_ptr<float>();
  p.eps = static_cast<float>(eps);
  p.out = reinterpret_cast<__half*>(out.data_ptr<at::Half>());
  p.B = static_cast<int>(B);
  p.H = static_cast<int>(H);
  p.W = static_cast<int>(W);
  p.C = static_cast<int>(C);
  p.N = static_cast<int>(N);
  if (out.numel() > 0) {
    TRT_SWIN_CHECK_LAUNCH(trt_swin::patch_merge_gemm(p, at::cuda::getCurrentCUDAStream()), "patch_merge_gemm");
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(trt_swin, CUDA, m) { m.impl("patch_merge_gemm", &patch_merge_gemm_cuda); }
