// cuBLASLt GEMM with cached heuristics (see gemm.h). Host code only: cuBLASLt brings the kernels.
#include "gemm/gemm.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <string>
#include <tuple>
#include <map>

namespace trt_swin {
namespace {

thread_local std::string g_last_error;

cudaError_t fail(cudaError_t code, const std::string& what) {
  g_last_error = what;
  return code;
}

// Largest power of two (<= 256) dividing the address: cuBLASLt picks vectorized kernels by pointer alignment, so the
// cached algorithm is only valid for pointers at least as aligned as the ones it was chosen for.
uint32_t alignment_of(const void* p) {
  uintptr_t v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && (v % a) != 0) a >>= 1;
  return a;
}

// (device, a/b type, epilogue, M, N, K, has residual, has bias, alignments of weight / activation / output, workspace)
using AlgoKey = std::tuple<int, int, int, int64_t, int, int, bool, bool, uint32_t, uint32_t, uint32_t, size_t>;

struct AlgoCache {
  std::mutex mu;
  std::map<AlgoKey, cublasLtMatmulAlgo_t> algos;
};

AlgoCache& cache() {
  static AlgoCache c;  // never destroyed before the process ends: cublasLtMatmulAlgo_t is plain data
  return c;
}

// RAII holders so that every early return releases the descriptors.
struct Desc {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~Desc() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

#define TRT_SWIN_CUBLAS_TRY(expr)                                                                        \
  do {                                                                                                   \
    cublasStatus_t s_ = (expr);                                                                          \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                                     \
      return fail(s_ == CUBLAS_STATUS_NOT_SUPPORTED ? cudaErrorNotSupported : cudaErrorUnknown,           \
                  std::string(#expr) + " failed: " + cublasLtGetStatusString(s_));                       \
  } while (0)

}  // namespace

const char* gemm_last_error() { return g_last_error.c_str(); }

cudaError_t gemm(const GemmParams& p, cublasLtHandle_t handle, cudaStream_t stream) {
  const bool is_int8 = p.ab_type == GemmDType::kInt8;
  if (p.M <= 0 || p.N <= 0 || p.K <= 0) return fail(cudaErrorInvalidValue, "gemm: M, N, K must be positive");
  if (!p.a || !p.b || !p.d) return fail(cudaErrorInvalidValue, "gemm: a, b and d must be non-null");
  if (is_int8) {
    if (p.d_type != GemmDType::kInt32) return fail(cudaErrorInvalidValue, "gemm: int8 inputs need an int32 output");
    if (p.bias || p.c || p.act != GemmAct::kNone || p.alpha != 1.f)
      return fail(cudaErrorInvalidValue, "gemm: int8 GEMMs take no bias, residual, activation or alpha");
    if (p.K % 4) return fail(cudaErrorInvalidValue, "gemm: int8 GEMMs need K % 4 == 0");
  } else if (p.ab_type != GemmDType::kFp16 || p.d_type != GemmDType::kFp16) {
    return fail(cudaErrorInvalidValue, "gemm: supported types are fp16 x fp16 -> fp16 and int8 x int8 -> int32");
  }

  // Row-major D[M, N] = A[M, K] B[N, K]^T is column-major D^T[N, M] = op(B)[N, K] * A^T[K, M]: cuBLASLt's "A" is
  // our weight b (transposed), its "B" our activation a (not transposed). This is also the TN form IMMA requires.
  const cudaDataType_t ab = is_int8 ? CUDA_R_8I : CUDA_R_16F;
  const cudaDataType_t dt = is_int8 ? CUDA_R_32I : CUDA_R_16F;
  const cublasComputeType_t compute = is_int8 ? CUBLAS_COMPUTE_32I : CUBLAS_COMPUTE_32F;
  const cudaDataType_t scale_type = is_int8 ? CUDA_R_32I : CUDA_R_32F;
  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
  if (p.bias) epi = p.act == GemmAct::kGeluTanh ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
  else if (p.act == GemmAct::kGeluTanh) epi = CUBLASLT_EPILOGUE_GELU;

  Desc desc;
  const cublasOperation_t opT = CUBLAS_OP_T, opN = CUBLAS_OP_N;
  TRT_SWIN_CUBLAS_TRY(cublasLtMatmulDescCreate(&desc.op, compute, scale_type));
  TRT_SWIN_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof(opT)));
  TRT_SWIN_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof(opN)));
  if (epi != CUBLASLT_EPILOGUE_DEFAULT) {
    TRT_SWIN_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  }
  if (p.bias) {
    TRT_SWIN_CUBLAS_TRY(
        cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof(p.bias)));
  }
  TRT_SWIN_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&desc.a, ab, p.K, p.N, p.K));
  TRT_SWIN_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&desc.b, ab, p.K, p.M, p.K));
  TRT_SWIN_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&desc.c, dt, p.N, p.M, p.N));
  TRT_SWIN_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&desc.d, dt, p.N, p.M, p.N));

  const uint32_t al_a = alignment_of(p.b), al_b = alignment_of(p.a);
  const uint32_t al_d = p.c ? std::min(alignment_of(p.d), alignment_of(p.c)) : alignment_of(p.d);
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return fail(cudaErrorUnknown, "gemm: cudaGetDevice failed");
  const AlgoKey key{device, static_cast<int>(p.ab_type), static_cast<int>(epi), p.M, p.N, p.K,
                    p.c != nullptr, p.bias != nullptr, al_a, al_b, al_d, p.workspace_size};

  cublasLtMatmulAlgo_t algo;
  bool found = false;
  {
    std::lock_guard<std::mutex> lock(cache().mu);
    auto it = cache().algos.find(key);
    if (it != cache().algos.end()) {
      algo = it->second;
      found = true;
    }
  }
  if (!found) {
    TRT_SWIN_CUBLAS_TRY(cublasLtMatmulPreferenceCreate(&desc.pref));
    TRT_SWIN_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(desc.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                             &p.workspace_size, sizeof(p.workspace_size)));
    const uint32_t al_c = al_d;
    TRT_SWIN_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(desc.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                             &al_a, sizeof(al_a)));
    TRT_SWIN_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(desc.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                             &al_b, sizeof(al_b)));
    TRT_SWIN_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(desc.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                             &al_c, sizeof(al_c)));
    TRT_SWIN_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(desc.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                             &al_d, sizeof(al_d)));
    cublasLtMatmulHeuristicResult_t result{};
    int returned = 0;
    TRT_SWIN_CUBLAS_TRY(cublasLtMatmulAlgoGetHeuristic(handle, desc.op, desc.a, desc.b, desc.c, desc.d, desc.pref, 1,
                                                       &result, &returned));
    if (returned == 0) {
      char msg[160];
      std::snprintf(msg, sizeof(msg), "gemm: cuBLASLt has no algorithm for M=%lld N=%d K=%d (%s)",
                    static_cast<long long>(p.M), p.N, p.K, is_int8 ? "int8" : "fp16");
      return fail(cudaErrorNotSupported, msg);
    }
    algo = result.algo;
    std::lock_guard<std::mutex> lock(cache().mu);
    cache().algos.emplace(key, algo);
  }

  const float alpha_f = p.alpha, beta_f = p.c ? 1.f : 0.f;
  const int32_t alpha_i = 1, beta_i = 0;
  const void* alpha = is_int8 ? static_cast<const void*>(&alpha_i) : static_cast<const void*>(&alpha_f);
  const void* beta = is_int8 ? static_cast<const void*>(&beta_i) : static_cast<const void*>(&beta_f);
  const void* c = p.c ? p.c : p.d;  // beta = 0: C is not read, but cuBLASLt wants a valid pointer
  TRT_SWIN_CUBLAS_TRY(cublasLtMatmul(handle, desc.op, alpha, p.b, desc.a, p.a, desc.b, beta, c, desc.c, p.d, desc.d,
                                     &algo, p.workspace, p.workspace_size, stream));
  return cudaSuccess;
}

}  // namespace trt_swin
