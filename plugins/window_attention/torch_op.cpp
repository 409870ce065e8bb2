// CUDA implementation of torch.ops.trt_swin.window_attention (schema defined in op.py): checks -> params -> launch.
#include <optional>
#include <string>

#include "common/torch_checks.h"
#include "window_attention/window_attention.h"

namespace {

// Error messages format numbers with std::to_string, not by streaming them: on the GPU image the op library's
// std::ostream integer insertion crashed (SIGSEGV in codecvt inside libtrt_swin_torch.so, seen 2026-11-21), while
// streaming strings worked. See README "Known issues".
std::string num(int64_t v) { return std::to_string(v); }

std::string dims(at::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

at::Tensor window_attention_cuda(const at::Tensor& qkv, const at::Tensor& bias, const std::optional<at::Tensor>& mask,
                                 int64_t num_heads, double scale, double q_scale, double k_scale, double v_scale,
                                 std::optional<double> out_scale, bool out_fp8) {
  TRT_SWIN_CHECK_CUDA(qkv);
  TRT_SWIN_CHECK_CUDA(bias);
  TRT_SWIN_CHECK_CONTIGUOUS(qkv);
  TRT_SWIN_CHECK_CONTIGUOUS(bias);
  TORCH_CHECK(qkv.scalar_type() == at::kHalf || qkv.scalar_type() == at::kChar,
              "window_attention: qkv must be float16 or int8, got ", qkv.scalar_type());
  TRT_SWIN_CHECK_DTYPE(bias, at::kFloat);
  TORCH_CHECK(qkv.dim() == 2, "window_attention: qkv must be [num_windows * N, 3 * C], got ", dims(qkv.sizes()));
  TORCH_CHECK(bias.dim() == 3 && bias.size(1) == bias.size(2),
              "window_attention: bias must be [num_heads, N, N], got ", dims(bias.sizes()));
  const int64_t N = bias.size(2);
  TORCH_CHECK(N >= 1 && N <= 144, "window_attention: N (bias.shape[-1]) must be in 1..144, got ", num(N));
  TORCH_CHECK(num_heads >= 1 && bias.size(0) == num_heads, "window_attention: bias must have num_heads=", num(num_heads),
              " heads, got ", dims(bias.sizes()));
  TORCH_CHECK(qkv.size(1) % (3 * num_heads) == 0, "window_attention: qkv.shape[1]=", num(qkv.size(1)),
              " is not 3 * num_heads * head_dim");
  const int64_t C = qkv.size(1) / 3;
  const int64_t hd = C / num_heads;
  TORCH_CHECK(hd == 16 || hd == 32 || hd == 64, "window_attention: head_dim must be 16, 32 or 64, got ", num(hd));
  TORCH_CHECK(qkv.size(0) % N == 0, "window_attention: qkv rows (", num(qkv.size(0)), ") must be num_windows * N, N=", num(N));
  const int64_t num_windows = qkv.size(0) / N;
  TORCH_CHECK(num_windows <= INT32_MAX, "window_attention: too many windows");
  int64_t nW = 1;
  if (mask.has_value()) {
    TRT_SWIN_CHECK_CUDA(*mask);
    TRT_SWIN_CHECK_CONTIGUOUS(*mask);
    TRT_SWIN_CHECK_DTYPE(*mask, at::kFloat);
    TORCH_CHECK(mask->dim() == 3 && mask->size(1) == N && mask->size(2) == N,
                "window_attention: mask must be [nW, N, N] with N=", num(N), ", got ", dims(mask->sizes()));
    nW = mask->size(0);
    TORCH_CHECK(nW >= 1 && num_windows % nW == 0, "window_attention: num_windows (", num(num_windows),
                ") must be a multiple of mask.shape[0] (", num(nW), ")");
    TORCH_CHECK(mask->device() == qkv.device(), "window_attention: mask must be on ", qkv.device().str());
  }
  TORCH_CHECK(bias.device() == qkv.device(), "window_attention: bias must be on ", qkv.device().str());
  const bool in_int8 = qkv.scalar_type() == at::kChar;
  TORCH_CHECK(!out_fp8 || out_scale.has_value(), "window_attention: out_fp8 requires out_scale");
  if (out_scale.has_value()) {
    TORCH_CHECK(*out_scale > 0.0, "window_attention: out_scale must be > 0, got ", std::to_string(*out_scale));
  }
  TORCH_CHECK(reinterpret_cast<uintptr_t>(qkv.data_ptr()) % 16 == 0, "window_attention: qkv must be 16-byte aligned");

  const c10::cuda::CUDAGuard guard(qkv.device());
  const at::ScalarType out_dtype = out_fp8 ? at::kFloat8_e4m3fn : out_scale.has_value() ? at::kChar : at::kHalf;
  at::Tensor out = at::empty({qkv.size(0), C}, qkv.options().dtype(out_dtype));

  trt_swin::WindowAttentionParams p{};
  p.qkv = qkv.data_ptr();
  p.bias = bias.data_ptr<float>();
  p.mask = mask.has_value() ? mask->data_ptr<float>() : nullptr;
  p.out = out.data_ptr();
  p.num_windows = static_cast<int>(num_windows);
  p.nW = static_cast<int>(nW);
  p.N = static_cast<int>(N);
  p.num_heads = static_cast<int>(num_heads);
  p.head_dim = static_cast<int>(hd);
  p.scale = static_cast<float>(scale);
  p.qkv_int8 = in_int8;
  p.q_scale = static_cast<float>(q_scale);
  p.k_scale = static_cast<float>(k_scale);
  p.v_scale = static_cast<float>(v_scale);
  p.out_int8 = out_scale.has_value() && !out_fp8;
  p.out_fp8 = out_fp8;
  p.out_scale = out_scale.has_value() ? static_cast<float>(*out_scale) : 1.f;
  TRT_SWIN_CHECK_LAUNCH(trt_swin::window_attention(p, at::cuda::getCurrentCUDAStream()), "window_attention");
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(trt_swin, CUDA, m) { m.impl("window_attention", &window_attention_cuda); }
