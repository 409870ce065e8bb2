// PyTorch CUDA kernel of trt_swin::gemm (schema in op.py): checks -> params -> cuBLASLt on the current stream.
#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include <ATen/cuda/CUDAContextLight.h>

#include "common/torch_checks.h"
#include "gemm/gemm.h"

namespace {

constexpr size_t kWorkspaceBytes = 32u << 20;  // enough for cuBLASLt's split-K kernels on Hopper

// The workspace offered to cuBLASLt for a GEMM of M rows. With a workspace, cuBLASLt's Hopper kernels (nvjet) on large
// problems take a dynamically scheduled variant whose tile counters are zeroed by a memset before every call; in a
// CUDA graph each memset is a node the GEMM waits for. Without one they run the statically scheduled variant of the
// same tiles ("ssched"): Swin-T FP16 on the H100 at batch 128, 4.240 vs 4.341 ms (30 memsets gone), batch 32 1.254 vs
// 1.284 ms. Small problems keep it: there it buys split-K (batch 1: 0.409 vs 0.415 ms without). So M <= 1024 gets
// the workspace, larger M none (BENCHMARKS.md, session 8). $TRT_SWIN_GEMM_WORKSPACE_MB (0..32), when set, applies to
// every M instead (a sweep knob, read per call; the algorithm cache is keyed by the size).
constexpr int64_t kWorkspaceMaxM = 1024;

size_t workspace_bytes(int64_t M) {
  const char* env = std::getenv("TRT_SWIN_GEMM_WORKSPACE_MB");
  if (!env) return M <= kWorkspaceMaxM ? kWorkspaceBytes : 0;
  const long mb = std::atol(env);
  return mb <= 0 ? 0 : std::min(kWorkspaceBytes, static_cast<size_t>(mb) << 20);
}

// One workspace per device, allocated with cudaMalloc on the first (eager) call and kept for the process: a buffer
// from the caching allocator could be recycled under a captured CUDA graph that still points to it.
void* workspace_for(int device) {
  static std::mutex mu;
  static std::unordered_map<int, void*> spaces;
  std::lock_guard<std::mutex> lock(mu);
  auto it = spaces.find(device);
  if (it != spaces.end()) return it->second;
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  TORCH_CHECK(cudaStreamIsCapturing(at::cuda::getCurrentCUDAStream(), &status) == cudaSuccess &&
                  status == cudaStreamCaptureStatusNone,
              "gemm: the first call on a device must run outside CUDA graph capture (it allocates the cuBLASLt "
              "workspace); run the model once eagerly before capturing");
  void* p = nullptr;
  TORCH_CHECK(cudaMalloc(&p, kWorkspaceBytes) == cudaSuccess, "gemm: cannot allocate the cuBLASLt workspace");
  spaces.emplace(device, p);
  return p;
}

at::Tensor gemm_cuda(const at::Tensor& a, const at::Tensor& b, const std::optional<at::Tensor>& bias,
                     const std::optional<at::Tensor>& residual, c10::string_view act, double alpha,
                     const std::optional<at::Tensor>& a_scale, const std::optional<at::Tensor>& b_scale,
                     const std::optional<at::Tensor>& out_scale_inv) {
  TRT_SWIN_CHECK_CUDA(a);
  TRT_SWIN_CHECK_CUDA(b);
  TRT_SWIN_CHECK_CONTIGUOUS(a);
  TRT_SWIN_CHECK_CONTIGUOUS(b);
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2, "gemm: a must be [M, K] and b [N, K], got ", a.sizes(), " and ", b.sizes());
  TORCH_CHECK(a.size(1) == b.size(1), "gemm: K of a (", a.size(1), ") and b (", b.size(1), ") differ");
  TORCH_CHECK(a.scalar_type() == b.scalar_type() && (a.scalar_type() == at::kHalf || a.scalar_type() == at::kChar ||
                                                     a.scalar_type() == at::kFloat8_e4m3fn),
              "gemm: a and b must both be float16, int8 or float8_e4m3fn, got ", a.scalar_type(), " and ",
              b.scalar_type());
  TORCH_CHECK(b.device() == a.device(), "gemm: a and b must be on the same device");
  TORCH_CHECK(act == "none" || act == "gelu_tanh", "gemm: act must be 'none' or 'gelu_tanh', got '", std::string(act), "'");
  const bool is_int8 = a.scalar_type() == at::kChar;
  const bool is_fp8 = a.scalar_type() == at::kFloat8_e4m3fn;
  const int64_t M = a.size(0), N = b.size(0), K = a.size(1);
  auto check_scalar = [&](const std::optional<at::Tensor>& t, const char* name) {
    TORCH_CHECK(t && t->device() == a.device() && t->scalar_type() == at::kFloat && t->numel() == 1,
                "gemm: fp8 GEMMs need ", name, " as a float32 one-element tensor on a's device");
  };
  if (is_fp8) {
    check_scalar(a_scale, "a_scale");
    check_scalar(b_scale, "b_scale");
    if (out_scale_inv) check_scalar(out_scale_inv, "out_scale_inv");
    TORCH_CHECK(N % 16 == 0 && K % 16 == 0, "gemm: fp8 GEMMs need N % 16 == 0 and K % 16 == 0, got N=", N, " K=", K);
  } else {
    TORCH_CHECK(!a_scale && !b_scale && !out_scale_inv, "gemm: a_scale, b_scale and out_scale_inv are for fp8 inputs");
  }
  TORCH_CHECK(N <= INT32_MAX && K <= INT32_MAX, "gemm: N and K must fit in int32");
  if (is_int8) {
    TORCH_CHECK(!bias && !residual && act == "none" && alpha == 1.0,
                "gemm: int8 GEMMs return int32 accumulators and take no bias, residual, act or alpha "
                "(apply them with trt_swin.epilogue)");
    TORCH_CHECK(K % 4 == 0, "gemm: int8 GEMMs need K % 4 == 0, got K=", K);
  }
  if (bias) {
    TORCH_CHECK(bias->device() == a.device() && bias->is_contiguous() && bias->scalar_type() == at::kHalf &&
                    bias->dim() == 1 && bias->size(0) == N,
                "gemm: bias must be a contiguous float16 [N=", N, "] tensor on a's device, got ", bias->scalar_type(),
                " ", bias->sizes());
  }
  if (residual) {
    TORCH_CHECK(residual->device() == a.device(), "gemm: residual must be on a's device");
    TRT_SWIN_CHECK_CONTIGUOUS(*residual);
    TRT_SWIN_CHECK_DTYPE(*residual, at::kHalf);
    TRT_SWIN_CHECK_SHAPE(*residual, M, N);
  }

  const c10::cuda::CUDAGuard guard(a.device());
  const bool out_fp8 = is_fp8 && out_scale_inv;
  at::Tensor out = at::empty({M, N}, a.options().dtype(is_int8 ? at::kInt : out_fp8 ? at::kFloat8_e4m3fn : at::kHalf));
  if (M == 0) return out;
  TORCH_CHECK(K > 0 || !is_fp8, "gemm: fp8 GEMMs need K > 0");
  if (K == 0) return residual ? residual->clone() : out.zero_();  // cuBLASLt rejects K = 0; the sum is empty
  trt_swin::GemmParams p;
  p.a = a.data_ptr();
  p.b = b.data_ptr();
  p.bias = bias ? bias->data_ptr() : nullptr;
  p.c = residual ? residual->data_ptr() : nullptr;
  p.d = out.data_ptr();
  p.ab_type = is_int8 ? trt_swin::GemmDType::kInt8 : is_fp8 ? trt_swin::GemmDType::kFp8E4M3 : trt_swin::GemmDType::kFp16;
  p.d_type = is_int8 ? trt_swin::GemmDType::kInt32 : out_fp8 ? trt_swin::GemmDType::kFp8E4M3 : trt_swin::GemmDType::kFp16;
  if (is_fp8) {
    p.a_scale = a_scale->data_ptr<float>();
    p.b_scale = b_scale->data_ptr<float>();
    p.d_scale = out_fp8 ? out_scale_inv->data_ptr<float>() : nullptr;
  }
  p.act = act == "gelu_tanh" ? trt_swin::GemmAct::kGeluTanh : trt_swin::GemmAct::kNone;
  p.alpha = static_cast<float>(alpha);
  p.M = M;
  p.N = static_cast<int>(N);
  p.K = static_cast<int>(K);
  p.workspace = workspace_for(a.get_device());
  p.workspace_size = workspace_bytes(M);
  const cudaError_t err = trt_swin::gemm(p, at::cuda::getCurrentCUDABlasLtHandle(), at::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, "gemm: ", trt_swin::gemm_last_error(), " (", cudaGetErrorString(err), ")");
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(trt_swin, CUDA, m) { m.impl("gemm", &gemm_cuda); }
