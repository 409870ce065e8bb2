// PyTorch CUDA kernel of trt_swin::fused_mlp_ (schema in op.py): checks -> params -> launch. x is updated in place.
#include <cstdint>

#include "common/torch_checks.h"
#include "fused_mlp/fused_mlp.h"

namespace {

at::Tensor& fused_mlp_cuda(at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta, double eps,
                           const at::Tensor& w1, const at::Tensor& b1, const at::Tensor& w2, const at::Tensor& b2,
                           c10::string_view act) {
  TRT_SWIN_CHECK_CUDA(x);
  TRT_SWIN_CHECK_CONTIGUOUS(x);
  TRT_SWIN_CHECK_DTYPE(x, at::kHalf);
  TORCH_CHECK(x.dim() == 2, "fused_mlp_: x must be [M, C], got ", x.sizes());
  const int64_t M = x.size(0), C = x.size(1);
  TORCH_CHECK(C % 32 == 0 && C >= 32 && C <= 384, "fused_mlp_: C must be a multiple of 32 in [32, 384], got C=", C);
  TORCH_CHECK(w1.dim() == 2 && w1.size(1) == C, "fused_mlp_: w1 must be [Hd, C=", C, "], got ", w1.sizes());
  const int64_t Hd = w1.size(0);
  TORCH_CHECK(Hd > 0 && Hd % 64 == 0 && Hd <= INT32_MAX, "fused_mlp_: Hd must be a positive multiple of 64, got Hd=", Hd);
  TORCH_CHECK(act == "gelu_erf" || act == "gelu_tanh", "fused_mlp_: act must be 'gelu_erf' or 'gelu_tanh', got '",
              std::string(act), "'");
  auto check_param = [&](const at::Tensor& t, const char* name, at::ScalarType dtype, at::IntArrayRef shape) {
    TORCH_CHECK(t.device() == x.device(), "fused_mlp_: ", name, " must be on x's device (", x.device(), "), got ",
                t.device());
    TORCH_CHECK(t.is_contiguous(), "fused_mlp_: ", name, " must be contiguous");
    TORCH_CHECK(t.scalar_type() == dtype, "fused_mlp_: ", name, " must have dtype ", dtype, ", got ", t.scalar_type());
    TORCH_CHECK(t.sizes() == shape, "fused_mlp_: ", name, " must have shape ", shape, ", got ", t.sizes());
    TORCH_CHECK(reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0, "fused_mlp_: ", name,
                " must be 16-byte aligned (an offset view of a larger tensor is not)");
  };
  check_param(gamma, "gamma", at::kFloat, {C});
  check_param(beta, "beta", at::kFloat, {C});
  check_param(w1, "w1", at::kHalf, {Hd, C});
  check_param(b1, "b1", at::kFloat, {Hd});
  check_param(w2, "w2", at::kHalf, {C, Hd});
  check_param(b2, "b2", at::kFloat, {C});
  TORCH_CHECK(reinterpret_cast<uintptr_t>(x.data_ptr()) % 16 == 0,
              "fused_mlp_: x must be 16-byte aligned (an offset view of a larger tensor is not)");

  const c10::cuda::CUDAGuard guard(x.device());
  trt_swin::FusedMlpParams p;
  p.x = reinterpret_cast<__half*>(x.data_ptr<at::Half>());
  p.gamma = gamma.data_ptr<float>();
  p.beta = beta.data_ptr<float>();
  p.eps = static_cast<float>(eps);
  p.w1 = reinterpret_cast<const __half*>(w1.data_ptr<at::Half>());
  p.b1 = b1.data_ptr<float>();
  p.w2 = reinterpret_cast<const __half*>(w2.data_ptr<at::Half>());
  p.b2 = b2.data_ptr<float>();
  p.M = M;
  p.C = static_cast<int>(C);
  p.Hd = static_cast<int>(Hd);
  p.act = act == "gelu_tanh" ? trt_swin::MlpAct::kGeluTanh : trt_swin::MlpAct::kGeluErf;
  if (M > 0) {
    const cudaError_t err = trt_swin::fused_mlp(p, at::cuda::getCurrentCUDAStream());
    TORCH_CHECK(err != cudaErrorNotSupported,
                "fused_mlp_: this GPU has too little shared memory per block for the C=", C, " tile");
    TRT_SWIN_CHECK_LAUNCH(err, "fused_mlp_");
  }
  return x;
}

}  // namespace

TORCH_LIBRARY_IMPL(trt_swin, CUDA, m) { m.impl("fused_mlp_", &fused_mlp_cuda); }
