// Swin patch embedding in one pass (semantics in patch_embed.h): the image bytes are read once, the residual stream
// written once, both in whole 16-byte vectors.
//
// A tile is 64 patches of one patch row (b, hp): the 12 image rows (3 channels x 4 pixel rows) under them, 256 pixels
// each, copied as they lie in memory into a shared-memory staging buffer (cp.async, double-buffered across the
// persistent CTA's tiles). Patch w's 16 values of channel cin are 4 pixels in each of 4 staging rows, so with k =
// (cin, i, j) one k16 step of the mma is one channel and a thread's A fragment pair (k = 2t, 2t + 1) is 2 adjacent
// pixels: one 32-bit shared load (two floats for fp32 images), no transposing copy. 4 warps x 16 patches, all C
// output columns per warp (C / 8 n-tiles), W [C, 48] resident in shared memory for the CTA's lifetime. The epilogue
// adds the bias, rounds to fp16, normalizes each row across its quad, and stages the warp's 16 rows in shared memory:
// they are 16 consecutive tokens of the output, written back as one contiguous run of 16-byte vectors.
#include "patch_embed/patch_embed.h"

#include <algorithm>

#include "common/cuda_check.h"
#include "common/mma.cuh"

namespace trt_swin {
namespace {

constexpr int kCin = 3, kP = 4, kK = kCin * kP * kP;  // 48: three k16 steps, one per channel
constexpr int kTile = 64;                             // patches per tile
constexpr int kThreads = 128;                         // 4 warps x 16 patches
constexpr int kRows = kCin * kP;                      // staging rows per tile (cin, i)
constexpr int kWStride = kK + 8;                      // halves per W row in shared memory: 112 B, conflict-free

template <typename TIn>
struct Staging {
  static constexpr int kVecElems = 16 / sizeof(TIn);                 // pixels per 16-byte vector
  static constexpr int kRowVecs = kTile * kP / kVecElems;            // vectors per staging row
  // 64 bytes of padding puts the two pixel rows of one fragment load 16 banks apart
  static constexpr int kRowBytes = kTile * kP * sizeof(TIn) + 64;
  static constexpr int kBytes = kRows * kRowBytes;
};

template <int C>
struct Smem {
  static constexpr int kOutStride = C + 8;  // halves per staged output row: conflict-free fragment stores
  static constexpr int kWBytes = C * kWStride * 2;
  static constexpr int kOutBytes = kThreads / 32 * 16 * kOutStride * 2;
};

template <typename TIn>
__device__ __forceinline__ uint32_t load_pair(const unsigned char* stage_row, int pixel) {
  if constexpr (sizeof(TIn) == 2) {
    return *reinterpret_cast<const uint32_t*>(stage_row + pixel * 2);
  } else {
    const float2 f = *reinterpret_cast<const float2*>(stage_row + pixel * 4);
    return pack_half2(f.x, f.y);
  }
}

template <int C, typename TIn>
__global__ void __launch_bounds__(kThreads)
patch_embed_kernel(const TIn* __restrict__ images, const __half* __restrict__ weight, int ldw,
                   const __half* __restrict__ bias, const float* __restrict__ gamma, const float* __restrict__ beta,
                   float eps, __half* __restrict__ out, int H, int W, int Hp, int Wp, int segs, int tiles) {
  using S = Staging<TIn>;
  using M = Smem<C>;
  constexpr int NT = C / 8;
  extern __shared__ __align__(16) unsigned char smem[];
  __half* w_s = reinterpret_cast<__half*>(smem);
  unsigned char* stage = smem + M::kWBytes;  // 2 buffers
  __half* out_s = reinterpret_cast<__half*>(smem + M::kWBytes + 2 * S::kBytes);

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;

  // W [C, 48] -> shared memory, 6 vectors per row; in the same copy group as the first tile
  for (int v = tid; v < C * kK / 8; v += kThreads) {
    const int n = v / (kK / 8), c = v % (kK / 8);
    copy16(w_s + n * kWStride + c * 8, weight + static_cast<int64_t>(n) * ldw + c * 8);
  }

  auto issue = [&](int tile, int buf) {
    const int seg = tile % segs;
    const int row = tile / segs;  // b * Hp + hp
    const int b = row / Hp, hp = row % Hp;
    const int px0 = seg * kTile * kP;  // first pixel column of the tile
    unsigned char* dst = stage + buf * S::kBytes;
    for (int v = tid; v < kRows * S::kRowVecs; v += kThreads) {
      const int r = v / S::kRowVecs, c = v % S::kRowVecs;
      const int cin = r / kP, i = r % kP;
      const int px = px0 + c * S::kVecElems;
      const bool valid = px < W;  // W is a whole number of vectors: a vector is all in or all out
      const TIn* src = images + ((static_cast<int64_t>(b) * kCin + cin) * H + hp * kP + i) * W + (valid ? px : 0);
      copy16(dst + r * S::kRowBytes + c * 16, src, valid);
    }
  };

  int buf = 0;
  if (blockIdx.x < tiles) issue(blockIdx.x, 0);
  copy_commit();
  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x, buf ^= 1) {
    if (tile + gridDim.x < tiles) issue(tile + gridDim.x, buf ^ 1);
    copy_commit();
    copy_wait<1>();
    __syncthreads();

    const unsigned char* st = stage + buf * S::kBytes;
    const int m0 = warp * 16;  // the warp's first patch in the tile
    float acc[NT][4];
#pragma unroll
    for (int n = 0; n < NT; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
#pragma unroll
    for (int cin = 0; cin < kCin; ++cin) {
      // k = cin * 16 + i * 4 + j: the pair k = 2t, 2t + 1 is pixel row i = t / 2, pixels j = 2 (t % 2), + 1;
      // k + 8 is pixel row i + 2
      const unsigned char* r_lo = st + (cin * kP + t / 2) * S::kRowBytes;
      const unsigned char* r_hi = st + (cin * kP + t / 2 + 2) * S::kRowBytes;
      const int px_g = (m0 + g) * kP + 2 * (t % 2), px_g8 = px_g + 8 * kP;
      const uint32_t a[4] = {load_pair<TIn>(r_lo, px_g), load_pair<TIn>(r_lo, px_g8), load_pair<TIn>(r_hi, px_g),
                             load_pair<TIn>(r_hi, px_g8)};
#pragma unroll
      for (int n = 0; n < NT; ++n) {
        const __half* wrow = w_s + (n * 8 + g) * kWStride + cin * 16 + 2 * t;
        mma_16816(acc[n], a, *reinterpret_cast<const uint32_t*>(wrow), *reinterpret_cast<const uint32_t*>(wrow + 8));
      }
    }

    // bias, fp16 rounding, LayerNorm of rows g and g + 8 (each row's C values spread over the quad)
    float sum_lo = 0.f, sum_hi = 0.f;
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      const __half2 b2 = *reinterpret_cast<const __half2*>(bias + n * 8 + 2 * t);
      const float b0 = __low2float(b2), b1 = __high2float(b2);
      acc[n][0] = __half2float(__float2half_rn(acc[n][0] + b0));
      acc[n][1] = __half2float(__float2half_rn(acc[n][1] + b1));
      acc[n][2] = __half2float(__float2half_rn(acc[n][2] + b0));
      acc[n][3] = __half2float(__float2half_rn(acc[n][3] + b1));
      sum_lo += acc[n][0] + acc[n][1];
      sum_hi += acc[n][2] + acc[n][3];
    }
    __half* orow_lo = out_s + (warp * 16 + g) * M::kOutStride;
    __half* orow_hi = orow_lo + 8 * M::kOutStride;
    if (gamma != nullptr) {
      sum_lo += __shfl_xor_sync(0xffffffffu, sum_lo, 1);
      sum_lo += __shfl_xor_sync(0xffffffffu, sum_lo, 2);
      sum_hi += __shfl_xor_sync(0xffffffffu, sum_hi, 1);
      sum_hi += __shfl_xor_sync(0xffffffffu, sum_hi, 2);
      const float mean_lo = sum_lo * (1.f / C), mean_hi = sum_hi * (1.f / C);
      float sq_lo = 0.f, sq_hi = 0.f;
#pragma unroll
      for (int n = 0; n < NT; ++n) {
        acc[n][0] -= mean_lo;
        acc[n][1] -= mean_lo;
        acc[n][2] -= mean_hi;
        acc[n][3] -= mean_hi;
        sq_lo += acc[n][0] * acc[n][0] + acc[n][1] * acc[n][1];
        sq_hi += acc[n][2] * acc[n][2] + acc[n][3] * acc[n][3];
      }
      sq_lo += __shfl_xor_sync(0xffffffffu, sq_lo, 1);
      sq_lo += __shfl_xor_sync(0xffffffffu, sq_lo, 2);
      sq_hi += __shfl_xor_sync(0xffffffffu, sq_hi, 1);
      sq_hi += __shfl_xor_sync(0xffffffffu, sq_hi, 2);
      const float rstd_lo = rsqrtf(sq_lo * (1.f / C) + eps), rstd_hi = rsqrtf(sq_hi * (1.f / C) + eps);
#pragma unroll
      for (int n = 0; n < NT; ++n) {
        const int c = n * 8 + 2 * t;
        const float2 ga = *reinterpret_cast<const float2*>(gamma + c);
        const float2 be = *reinterpret_cast<const float2*>(beta + c);
        *reinterpret_cast<uint32_t*>(orow_lo + c) =
            pack_half2(acc[n][0] * rstd_lo * ga.x + be.x, acc[n][1] * rstd_lo * ga.y + be.y);
        *reinterpret_cast<uint32_t*>(orow_hi + c) =
            pack_half2(acc[n][2] * rstd_hi * ga.x + be.x, acc[n][3] * rstd_hi * ga.y + be.y);
      }
    } else {
#pragma unroll
      for (int n = 0; n < NT; ++n) {
        const int c = n * 8 + 2 * t;
        *reinterpret_cast<uint32_t*>(orow_lo + c) = pack_half2(acc[n][0], acc[n][1]);
        *reinterpret_cast<uint32_t*>(orow_hi + c) = pack_half2(acc[n][2], acc[n][3]);
      }
    }
    __syncwarp();

    // the warp's 16 tokens are consecutive in the output: one contiguous run of 16 * C halves (fewer at the map's
    // right edge)
    const int seg = tile % segs, prow = tile / segs;
    const int wp0 = seg * kTile + m0;
    const int valid_rows = min(16, Wp - wp0);
    if (valid_rows > 0) {
      __half* dst = out + (static_cast<int64_t>(prow) * Wp + wp0) * C;
      for (int v = lane; v < valid_rows * (C / 8); v += 32) {
        const int r = v / (C / 8), c = v % (C / 8);
        *reinterpret_cast<uint4*>(dst + r * C + c * 8) =
            *reinterpret_cast<const uint4*>(out_s + (warp * 16 + r) * M::kOutStride + c * 8);
      }
    }
    __syncthreads();  // the next iteration's copy refills this staging buffer; the warp reuses its output rows
  }
  copy_wait<0>();  // drain the last iteration's (empty) copy group before the CTA exits
}

template <int C, typename TIn>
cudaError_t launch(const PatchEmbedParams& p, cudaStream_t stream) {
  const int Hp = p.H / kP, Wp = p.W / kP;
  const int segs = (Wp + kTile - 1) / kTile;
  const int64_t tiles64 = static_cast<int64_t>(p.B) * Hp * segs;
  if (tiles64 > (1LL << 30)) return cudaErrorInvalidValue;
  const int tiles = static_cast<int>(tiles64);
  const int smem = Smem<C>::kWBytes + 2 * Staging<TIn>::kBytes + Smem<C>::kOutBytes;
  auto kernel = patch_embed_kernel<C, TIn>;
  // The grid's size per device, worked out once: at batch 1 the stem is on the latency path, host calls included.
  // (Concurrent first calls write the same values.)
  constexpr int kMaxDevices = 64;
  static int sms_of[kMaxDevices], per_sm_of[kMaxDevices];
  int device = 0;
  TRT_SWIN_CUDA_TRY(cudaGetDevice(&device));
  if (device >= kMaxDevices) return cudaErrorInvalidDevice;
  if (per_sm_of[device] == 0) {
    int sms = 0, per_sm = 0;
    TRT_SWIN_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    TRT_SWIN_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    TRT_SWIN_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem));
    if (per_sm < 1) return cudaErrorNotSupported;
    sms_of[device] = sms;
    per_sm_of[device] = per_sm;
  }
  const int sms = sms_of[device], per_sm = per_sm_of[device];
  // persistent CTAs: W is loaded once per CTA, and each CTA's next tile is copied while it computes the current one
  const int grid = static_cast<int>(std::min<int64_t>(tiles, static_cast<int64_t>(sms) * per_sm));
  kernel<<<grid, kThreads, smem, stream>>>(static_cast<const TIn*>(p.images), p.weight, p.ldw, p.bias, p.gamma,
                                           p.beta, p.eps, p.out, p.H, p.W, Hp, Wp, segs, tiles);
  TRT_SWIN_LAUNCH_CHECK();
  return cudaSuccess;
}

template <int C>
cudaError_t launch_c(const PatchEmbedParams& p, cudaStream_t stream) {
  return p.images_fp32 ? launch<C, float>(p, stream) : launch<C, __half>(p, stream);
}

}  // namespace

bool patch_embed_supported(int cin, int patch, int C, int H, int W, bool images_fp32) {
  return cin == kCin && patch == kP && (C == 96 || C == 128 || C == 192) && H % kP == 0 && H > 0 && W > 0 &&
         W % (images_fp32 ? 4 : 8) == 0;
}

cudaError_t patch_embed(const PatchEmbedParams& p, cudaStream_t stream) {
  if (p.B <= 0 || !patch_embed_supported(kCin, kP, p.C, p.H, p.W, p.images_fp32)) return cudaErrorInvalidValue;
  if (p.ldw < kK || p.ldw % 8 != 0 || (p.gamma == nullptr) != (p.beta == nullptr)) return cudaErrorInvalidValue;
  if (reinterpret_cast<uintptr_t>(p.images) % 16 || reinterpret_cast<uintptr_t>(p.weight) % 16 ||
      reinterpret_cast<uintptr_t>(p.out) % 16 || reinterpret_cast<uintptr_t>(p.bias) % 4 ||
      reinterpret_cast<uintptr_t>(p.gamma) % 8 || reinterpret_cast<uintptr_t>(p.beta) % 8)
    return cudaErrorMisalignedAddress;
  switch (p.C) {
    case 96: return launch_c<96>(p, stream);
    case 128: return launch_c<128>(p, stream);
    case 192: return launch_c<192>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace trt_swin
