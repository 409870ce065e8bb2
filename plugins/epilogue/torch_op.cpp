// PyTorch CUDA kernel of trt_swin::epilogue (schema in op.py): checks -> params -> launch.
#include "common/torch_checks.h"
#include "epilogue/epilogue.h"

namespace {

at::Tensor epilogue_cuda(const at::Tensor& x, double in_scale, const std::optional<at::Tensor>& col_scale,
                         const std::optional<at::Tensor>& bias, c10::string_view act,
                         const std::optional<at::Tensor>& residual, std::optional<double> out_scale) {
  TRT_SWIN_CHECK_CUDA(x);
  TRT_SWIN_CHECK_CONTIGUOUS(x);
  TORCH_CHECK(x.scalar_type() == at::kHalf || x.scalar_type() == at::kChar || x.scalar_type() == at::kInt,
              "epilogue: x must be float16, int8 or int32, got ", x.scalar_type());
  TORCH_CHECK(x.dim() >= 1, "epilogue: x must have at least one dimension");
  TORCH_CHECK(act == "none" || act == "gelu", "epilogue: act must be 'none' or 'gelu', got '", std::string(act), "'");
  const int64_t N = x.size(-1);
  TORCH_CHECK(N > 0 && N <= INT32_MAX, "epilogue: last dimension must be in [1, 2^31), got ", N);
  for (const auto* t : {&col_scale, &bias}) {
    if (!t->has_value()) continue;
    const at::Tensor& v = **t;
    TORCH_CHECK(v.device() == x.device() && v.is_contiguous() && v.scalar_type() == at::kFloat && v.dim() == 1 &&
                    v.size(0) == N,
                "epilogue: ", t == &bias ? "bias" : "col_scale", " must be a contiguous float32 [N=", N,
                "] tensor on x's device, got ", v.scalar_type(), " ", v.sizes(), " on ", v.device());
  }
  if (residual) {
    TORCH_CHECK(residual->device() == x.device(), "epilogue: residual must be on x's device");
    TRT_SWIN_CHECK_CONTIGUOUS(*residual);
    TRT_SWIN_CHECK_DTYPE(*residual, at::kHalf);
    TORCH_CHECK(residual->sizes() == x.sizes(), "epilogue: residual must have x's shape ", x.sizes(), ", got ",
                residual->sizes());
  }
  TORCH_CHECK(!out_scale || *out_scale > 0, "epilogue: out_scale must be positive");

  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = at::empty(x.sizes(), x.options().dtype(out_scale ? at::kChar : at::kHalf));
  trt_swin::EpilogueParams p;
  p.in = x.data_ptr();
  p.in_type = x.scalar_type() == at::kHalf   ? trt_swin::EpilogueDType::kFp16
              : x.scalar_type() == at::kChar ? trt_swin::EpilogueDType::kInt8
                                             : trt_swin::EpilogueDType::kInt32;
  p.in_scale = static_cast<float>(in_scale);
  p.col_scale = col_scale ? col_scale->data_ptr<float>() : nullptr;
  p.bias = bias ? bias->data_ptr<float>() : nullptr;
  p.act = act == "gelu" ? trt_swin::EpilogueAct::kGelu : trt_swin::EpilogueAct::kNone;
  p.residual = residual ? reinterpret_cast<const __half*>(residual->data_ptr<at::Half>()) : nullptr;
  p.out = out.data_ptr();
  p.out_type = out_scale ? trt_swin::EpilogueDType::kInt8 : trt_swin::EpilogueDType::kFp16;
  p.out_scale = out_scale ? static_cast<float>(*out_scale) : 1.f;
  p.M = x.numel() / N;
  p.N = static_cast<int>(N);
  if (out.numel() > 0) TRT_SWIN_CHECK_LAUNCH(trt_swin::epilogue(p, at::cuda::getCurrentCUDAStream()), "epilogue");
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(trt_swin, CUDA, m) { m.impl("epilogue", &epilogue_cuda); }
