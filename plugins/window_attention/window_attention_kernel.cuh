// Windowed fMHA kernel template (included by the per-head-dim instantiation files only).
//
// Work split: a CTA owns a group of (window, head) "units": WPC consecutive windows x HPC consecutive heads. For
// every unit it stages q, k, v ([NK, hd] each, rows >= N zero-filled) in shared memory with 16-byte loads, then each
// warp takes 16-query-row tiles: S = q k^T (mma m16n8k16, FP32 accumulate), logits = S * scale + bias + mask in FP32,
// softmax over the quad-distributed row in registers, P (fp16, unnormalized) re-used in place as the A operand of
// O = P v, and O / rowsum is staged back in shared memory so the stores are coalesced 16-byte rows again.
#pragma once
#include <cuda_fp16.h>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "common/cuda_check.h"
#include "common/fp8.cuh"
#include "common/mma.cuh"
#include "window_attention/window_attention.h"

namespace trt_swin {
namespace wattn {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kPadHalves = 8;  // row padding: consecutive rows start 16 B apart mod 128 B -> ldmatrix is conflict-free

// Shared memory of one (window, head) unit: q, k, v, each [NK][hd + 8] halves.
__host__ __device__ constexpr int unit_smem_bytes(int nk, int hd) { return 3 * nk * (hd + kPadHalves) * 2; }

// How a launch splits the work; chosen on the host (launch_config) and read by the kernel.
struct TileConfig {
  int hpc;          // heads per CTA (a divisor of num_heads)
  int wpc;          // windows per CTA
  int head_groups;  // num_heads / hpc
  int smem_bytes;   // dynamic shared memory per CTA
  int64_t blocks;   // grid size
};

// int8 -> exact fp16 integers (|x| <= 128 is exact); the dequantization scales are applied in FP32 after the mmas.
__device__ __forceinline__ uint32_t s8x2_to_h2(int v, int shift) {
  const float lo = static_cast<float>(static_cast<int8_t>((v >> shift) & 0xff));
  const float hi = static_cast<float>(static_cast<int8_t>((v >> (shift + 8)) & 0xff));
  return pack_half2(lo, hi);
}

// Normalized O of one 16-row tile (rows r0 = 16 mt + g and r1 = r0 + 8, fragment columns 8 dt + 2t, +1) written into
// the tile's own q rows of shared memory in the output type, so the global stores can be coalesced 16-byte rows.
// int8: sat(round-half-even(value / out_scale)); fp8: common/fp8.cuh. IEEE division so the references reproduce it.
template <int DT, int HDP>
__device__ __forceinline__ void stage_output_tile(const float (&o)[DT][4], float inv0, float inv1, __half* sq, int r0,
                                                  int r1, int t, const WindowAttentionParams& p) {
  if (!p.out_int8 && !p.out_fp8) {
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
      const int c = dt * 8 + 2 * t;
      *reinterpret_cast<uint32_t*>(sq + r0 * HDP + c) = pack_half2(o[dt][0] * inv0, o[dt][1] * inv0);
      *reinterpret_cast<uint32_t*>(sq + r1 * HDP + c) = pack_half2(o[dt][2] * inv1, o[dt][3] * inv1);
    }
  } else {
    // one byte per value, the row keeps its byte stride (HDP halves)
    uint8_t* sq8 = reinterpret_cast<uint8_t*>(sq);
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
      const int c = dt * 8 + 2 * t;
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float v0 = o[dt][e] * inv0;
        const float v1 = o[dt][2 + e] * inv1;
        uint8_t q0, q1;
        if (p.out_fp8) {
          q0 = quantize_fp8_e4m3(v0, p.out_scale);
          q1 = quantize_fp8_e4m3(v1, p.out_scale);
        } else {
          q0 = static_cast<uint8_t>(static_cast<int8_t>(max(-128, min(127, __float2int_rn(__fdiv_rn(v0, p.out_scale))))));
          q1 = static_cast<uint8_t>(static_cast<int8_t>(max(-128, min(127, __float2int_rn(__fdiv_rn(v1, p.out_scale))))));
        }
        sq8[r0 * HDP * 2 + c + e] = q0;
        sq8[r1 * HDP * 2 + c + e] = q1;
      }
    }
  }
}

// Softmax of one 16-row tile's logits s (row maxima m0 / m1 of this thread's two rows, before the quad reduction),
// then O = P v from the v tile sv in shared memory: o (unnormalized) and the row sums l0 / l1. Shared by both kernels.
template <int NT, int NK, int DT, int HDP>
__device__ __forceinline__ void softmax_pv(float (&s)[NT][4], float m0, float m1, const __half* sv, int lane,
                                           float (&o)[DT][4], float& l0, float& l1) {
  constexpr float kLog2e = 1.4426950408889634f;
  m0 = fmaxf(m0, __shfl_xor_sync(0xffffffffu, m0, 1));
  m0 = fmaxf(m0, __shfl_xor_sync(0xffffffffu, m0, 2));
  m1 = fmaxf(m1, __shfl_xor_sync(0xffffffffu, m1, 1));
  m1 = fmaxf(m1, __shfl_xor_sync(0xffffffffu, m1, 2));
  // A row with every logit -inf would give exp(-inf - -inf) = NaN: subtract 0 instead, its sum is then 0.
  // (x - m) is formed before scaling by log2(e): with |x| ~ 1e30 a fused x * log2e - m * log2e is off by ~1e23.
  const float mb0 = m0 == -INFINITY ? 0.f : m0;
  const float mb1 = m1 == -INFINITY ? 0.f : m1;
  l0 = 0.f;
  l1 = 0.f;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    s[nt][0] = exp2f((s[nt][0] - mb0) * kLog2e);
    s[nt][1] = exp2f((s[nt][1] - mb0) * kLog2e);
    s[nt][2] = exp2f((s[nt][2] - mb1) * kLog2e);
    s[nt][3] = exp2f((s[nt][3] - mb1) * kLog2e);
    l0 += s[nt][0] + s[nt][1];
    l1 += s[nt][2] + s[nt][3];
  }
  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);

  // O = P v: the S accumulator layout of two adjacent key tiles is exactly the A-fragment layout of one k16 step.
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;
#pragma unroll
  for (int kt = 0; kt < NK / 16; ++kt) {
    uint32_t a[4];
    a[0] = pack_half2(s[2 * kt][0], s[2 * kt][1]);
    a[1] = pack_half2(s[2 * kt][2], s[2 * kt][3]);
    a[2] = pack_half2(s[2 * kt + 1][0], s[2 * kt + 1][1]);
    a[3] = pack_half2(s[2 * kt + 1][2], s[2 * kt + 1][3]);
#pragma unroll
    for (int dt = 0; dt < DT; dt += 2) {
      uint32_t b[4];
      ldmatrix_x4_trans(b, smem_u32(sv + (kt * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * HDP + dt * 8 + (lane / 16) * 8));
      mma_16816(o[dt], a, b[0], b[1]);
      mma_16816(o[dt + 1], a, b[2], b[3]);
    }
  }
}

// NFIX > 0: a kernel for N == NFIX exactly (the real models' 16, 49, 144), so the index math and the key-padding
// predicates fold to constants; NFIX == 0: any N with NK - 16 < N <= NK.
// Resident CTAs per SM to ask of the register allocator: the kernel is latency-bound, so occupancy pays.
__host__ __device__ constexpr int min_ctas_per_sm(int nk, int hd) {
  return nk <= 64 ? (hd <= 32 ? 8 : 6) : (hd <= 32 ? 3 : 2);
}

template <int NK, int HD, bool IN_INT8, int NFIX>
__global__ void __launch_bounds__(kThreads, min_ctas_per_sm(NK, HD)) window_attention_kernel(WindowAttentionParams p, TileConfig tc) {
  static_assert(NK % 16 == 0 && NK <= 144, "keys are padded to a multiple of 16, at most 144");
  static_assert(HD == 16 || HD == 32 || HD == 64, "head_dim 16, 32 or 64");
  constexpr int HDP = HD + kPadHalves;  // smem row stride, halves
  constexpr int MT = NK / 16;           // 16-row query tiles per unit
  constexpr int NT = NK / 8;            // 8-key column tiles of S
  constexpr int DT = HD / 8;            // 8-wide column tiles of O
  constexpr int UNIT_HALVES = 3 * NK * HDP;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  __half* smem = reinterpret_cast<__half*>(smem_raw);

  const int N = NFIX > 0 ? NFIX : p.N;
  const int nH = p.num_heads;
  const int C = nH * HD;
  const int hpc = tc.hpc;
  const int units = tc.wpc * hpc;
  const int64_t w0 = (blockIdx.x / tc.head_groups) * static_cast<int64_t>(tc.wpc);
  const int h0 = (blockIdx.x % tc.head_groups) * hpc;
  const int tid = threadIdx.x;

  // ---- load: for each window, row, q/k/v part, head of the group, 16-byte chunk (consecutive threads read
  // consecutive 16 B of one token's [hpc * hd] slice, which is contiguous in the QKV GEMM output).
  {
    constexpr int CH = IN_INT8 ? HD / 16 : HD / 8;  // 16-byte chunks per head row
    const int per_row = 3 * hpc * CH;
    const int total = tc.wpc * NK * per_row;
    for (int i = tid; i < total; i += kThreads) {
      int rem = i;
      const int ch = rem % CH;
      rem /= CH;
      const int hl = rem % hpc;
      rem /= hpc;
      const int part = rem % 3;
      rem /= 3;
      const int r = rem % NK;
      const int wl = rem / NK;
      const int64_t w = w0 + wl;
      const bool valid = r < N && w < p.num_windows;
      const int64_t token = valid ? w * N + r : 0;
      const int col = part * C + (h0 + hl) * HD;  // element column in the [tokens, 3C] row
      __half* dst = smem + (wl * hpc + hl) * UNIT_HALVES + part * NK * HDP + r * HDP;
      if constexpr (!IN_INT8) {
        const __half* src = static_cast<const __half*>(p.qkv) + token * 3 * C + col + ch * 8;
        copy16(dst + ch * 8, src, valid);
      } else {
        const int8_t* src = static_cast<const int8_t*>(p.qkv) + token * 3 * C + col + ch * 16;
        int4 v = valid ? __ldg(reinterpret_cast<const int4*>(src)) : make_int4(0, 0, 0, 0);
        uint4 a, b;
        a.x = s8x2_to_h2(v.x, 0); a.y = s8x2_to_h2(v.x, 16); a.z = s8x2_to_h2(v.y, 0); a.w = s8x2_to_h2(v.y, 16);
        b.x = s8x2_to_h2(v.z, 0); b.y = s8x2_to_h2(v.z, 16); b.z = s8x2_to_h2(v.w, 0); b.w = s8x2_to_h2(v.w, 16);
        *reinterpret_cast<uint4*>(dst + ch * 16) = a;
        *reinterpret_cast<uint4*>(dst + ch * 16 + 8) = b;
      }
    }
    copy_commit();
    copy_wait<0>();
    __syncthreads();
  }

  const int warp = tid / 32;
  const int lane = tid % 32;
  const int g = lane / 4;  // fragment row within 8
  const int t = lane % 4;  // fragment column pair
  const float qk_scale = IN_INT8 ? p.scale * p.q_scale * p.k_scale : p.scale;
  const float out_mul = IN_INT8 ? p.v_scale : 1.f;

  for (int tile = warp; tile < units * MT; tile += kWarps) {
    const int unit = tile / MT;
    const int mt = tile % MT;
    const int wl = unit / hpc;
    const int hl = unit % hpc;
    const int64_t w = w0 + wl;
    if (w >= p.num_windows) break;  // tiles are unit-major: every later tile is past the end too
    const int h = h0 + hl;
    __half* sq = smem + unit * UNIT_HALVES;
    const __half* sk = sq + NK * HDP;
    const __half* sv = sk + NK * HDP;

    // S = q k^T for rows [16 mt, 16 mt + 16) and all NK keys.
    float s[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < HD / 16; ++ks) {
      uint32_t a[4];
      ldmatrix_x4(a, smem_u32(sq + (mt * 16 + (lane % 16)) * HDP + ks * 16 + (lane / 16) * 8));
#pragma unroll
      for (int nt = 0; nt < NT; nt += 2) {
        uint32_t b[4];
        ldmatrix_x4(b, smem_u32(sk + (nt * 8 + (lane / 16) * 8 + (lane % 8)) * HDP + ks * 16 + ((lane / 8) % 2) * 8));
        mma_16816(s[nt], a, b[0], b[1]);
        mma_16816(s[nt + 1], a, b[2], b[3]);
      }
    }

    // logits in FP32 (bias and mask may be far outside the fp16 range); keys >= N get probability exactly 0.
    // Padded query rows (r >= N) are computed but never stored: they read row N - 1's bias, harmlessly.
    const int r0 = mt * 16 + g;
    const int r1 = r0 + 8;
    const int64_t boff0 = static_cast<int64_t>(h) * N * N + min(r0, N - 1) * N;
    const int64_t boff1 = static_cast<int64_t>(h) * N * N + min(r1, N - 1) * N;
    const float* bias0 = p.bias + boff0;
    const float* bias1 = p.bias + boff1;
    const int64_t moff = static_cast<int64_t>(w % p.nW) * N * N;
    const float* mask0 = p.mask ? p.mask + moff + min(r0, N - 1) * N : nullptr;
    const float* mask1 = p.mask ? p.mask + moff + min(r1, N - 1) * N : nullptr;
    float m0 = -INFINITY, m1 = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int c = nt * 8 + 2 * t + e;
        float x0 = -INFINITY, x1 = -INFINITY;
        if (c < N) {
          float b0 = __ldg(bias0 + c), b1 = __ldg(bias1 + c);
          if (mask0) {
            b0 += __ldg(mask0 + c);
            b1 += __ldg(mask1 + c);
          }
          x0 = fmaf(s[nt][e], qk_scale, b0);
          x1 = fmaf(s[nt][2 + e], qk_scale, b1);
        }
        s[nt][e] = x0;
        s[nt][2 + e] = x1;
        m0 = fmaxf(m0, x0);
        m1 = fmaxf(m1, x1);
      }
    }
    float o[DT][4], l0, l1;
    softmax_pv<NT, NK, DT, HDP>(s, m0, m1, sv, lane, o, l0, l1);

    // Normalize and stage this tile's output rows in its own (now unused) q rows, for coalesced stores below.
    const float inv0 = l0 > 0.f ? out_mul / l0 : 0.f;
    const float inv1 = l1 > 0.f ? out_mul / l1 : 0.f;
    __syncwarp();
    stage_output_tile<DT, HDP>(o, inv0, inv1, sq, r0, r1, t, p);
  }
  __syncthreads();

  // ---- store: heads merged, out[w * N + r, (h0 + hl) * hd + d]; consecutive threads write consecutive 16 B.
  {
    const int elem_bytes = (p.out_int8 || p.out_fp8) ? 1 : 2;
    const int CH = HD * elem_bytes / 16;
    const int per_row = hpc * CH;
    const int total = tc.wpc * N * per_row;
    unsigned char* out = static_cast<unsigned char*>(p.out);
    for (int i = tid; i < total; i += kThreads) {
      int rem = i;
      const int ch = rem % CH;
      rem /= CH;
      const int hl = rem % hpc;
      rem /= hpc;
      const int r = rem % N;
      const int wl = rem / N;
      const int64_t w = w0 + wl;
      if (w >= p.num_windows) break;
      const unsigned char* src =
          reinterpret_cast<const unsigned char*>(smem + (wl * hpc + hl) * UNIT_HALVES + r * HDP) + ch * 16;
      unsigned char* dst = out + ((w * N + r) * C + (h0 + hl) * HD) * elem_bytes + ch * 16;
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
    }
  }
}

// Picks the CTA shape: as many heads of one window as fit in kMaxTiles 16-row tiles (1 per warp) and the
// shared-memory budget, then more windows while the CTA still holds few tiles. Small CTAs measured faster on H200 at
// batch 128 (max tiles 4 / 8 / 16 per CTA: Swin-L stage 1 0.48 / 0.75 / 0.84 ms, Swin-T stage 3 0.067 / 0.122 /
// 0.120 ms): the kernel is latency-bound, and more independent CTAs per SM overlap one CTA's loads with another's math.
// Development knob (benchmark sweeps only): an environment variable overrides a default, read once per process.
inline int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

inline TileConfig launch_config(const WindowAttentionParams& p, int nk) {
  static const int kSmemBudget = env_int("TRT_SWIN_WA_SMEM_BUDGET", 48 * 1024);
  static const int kMaxTiles = env_int("TRT_SWIN_WA_MAX_TILES", 4);  // 1 tile per warp
  const int unit = unit_smem_bytes(nk, p.head_dim);
  const int mt = nk / 16;
  TileConfig tc{};
  tc.hpc = 1;
  for (int d = p.num_heads; d >= 1; --d) {
    if (p.num_heads % d == 0 && d * unit <= kSmemBudget && d * mt <= kMaxTiles) {
      tc.hpc = d;
      break;
    }
  }
  tc.wpc = 1;
  if (tc.hpc == p.num_heads) {
    while ((tc.wpc + 1) * tc.hpc * unit <= kSmemBudget && (tc.wpc + 1) * tc.hpc * mt <= kMaxTiles) ++tc.wpc;
  }
  tc.head_groups = p.num_heads / tc.hpc;
  tc.smem_bytes = tc.wpc * tc.hpc * unit;
  tc.blocks = static_cast<int64_t>((p.num_windows + tc.wpc - 1) / tc.wpc) * tc.head_groups;
  return tc;
}

template <int NK, int HD, bool IN_INT8, int NFIX>
cudaError_t launch_tiled(const WindowAttentionParams& p, cudaStream_t stream) {
  const TileConfig tc = launch_config(p, NK);
  auto kernel = window_attention_kernel<NK, HD, IN_INT8, NFIX>;
  if (tc.smem_bytes > 48 * 1024) {
    TRT_SWIN_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, tc.smem_bytes));
  }
  if (tc.blocks > 0x7fffffffLL) return cudaErrorInvalidConfiguration;
  kernel<<<static_cast<unsigned>(tc.blocks), kThreads, tc.smem_bytes, stream>>>(p, tc);
  TRT_SWIN_LAUNCH_CHECK();
  return cudaSuccess;
}


// ---------------------------------------------------------------------------------------------------------------
// Persistent, pipelined kernel for windows of 49..64 tokens (keys padded to NK = 64: the Swin 7x7 windows).
//
// The tiled kernel above loads a unit, waits, computes, stores and exits: at 8 short CTAs per SM most of the time is
// spent waiting on one unit's loads, and every tile reads 2 x 64 bias / mask scalars per thread from L1/L2. Here a
// CTA walks a contiguous range of units ordered (head, mask window, image), so:
//   - bias[h] + mask[m] of the current (head, mask window) pair is combined once into an FP32 table in shared memory
//     (keys >= N and query rows >= N hold -inf), read as float2 in fragment order: no per-element global loads, no
//     key-padding predicates; the table is rebuilt only where the range crosses into the next pair;
//   - the next unit's q, k, v are copied (cp.async, 16 B) into the second of two buffers while the 4 warps compute
//     the current one (warp = 16 query rows), one CTA barrier per unit; int8 input is prefetched into registers and
//     widened into shared memory at the top of the next iteration;
//   - each warp stores its own 16 output rows (16-byte stores, staged in its q rows) without a CTA barrier.
// Grid: as many CTAs as fit at once (occupancy), each with ceil(units / CTAs) consecutive units.
constexpr int kPersistKeys = 64;
constexpr int kPersistCtasPerSm = 4;
// Floats per table row: rows 288 B apart, so a half-warp's float2 reads (rows g = 0..3, column pairs t = 0..3) hit
// 16 distinct bank pairs.
constexpr int kTableStride = kPersistKeys + 8;

__host__ __device__ constexpr int persistent_smem_bytes(int hd) {
  return kPersistKeys * kTableStride * 4 + 2 * unit_smem_bytes(kPersistKeys, hd);
}

struct PersistentConfig {
  int nWm;        // mask windows: nW with a mask, 1 without
  int imgs;       // units per (head, mask window) pair: num_windows / nWm
  int64_t units;  // num_heads * nWm * imgs
  int64_t chunk;  // consecutive units per CTA
};

// A unit's place in the walk: unit = (h * nWm + m) * imgs + b is window b * nWm + m (mask m), head h.
struct UnitCursor {
  int h, m, b;
  __device__ __forceinline__ void start(int64_t u, const PersistentConfig& pc) {
    const int64_t pair = u / pc.imgs;
    b = static_cast<int>(u - pair * pc.imgs);
    h = static_cast<int>(pair / pc.nWm);
    m = static_cast<int>(pair - static_cast<int64_t>(h) * pc.nWm);
  }
  __device__ __forceinline__ void advance(const PersistentConfig& pc) {
    if (++b == pc.imgs) {
      b = 0;
      if (++m == pc.nWm) {
        m = 0;
        ++h;
      }
    }
  }
  __device__ __forceinline__ int64_t window(const PersistentConfig& pc) const {
    return static_cast<int64_t>(b) * pc.nWm + m;
  }
};

// One warp's 16 output rows (staged in its q rows, row stride HDP halves) -> global, 16-byte stores; rows >= N skipped.
template <int HD, int EB, int HDP>
__device__ __forceinline__ void store_tile_rows(const __half* sq, int row0, int N, int64_t w, int h, int C, void* out,
                                                int lane) {
  constexpr int CHO = HD * EB / 16;  // 16-byte chunks per head row of the output
  unsigned char* o = static_cast<unsigned char*>(out);
#pragma unroll
  for (int j = lane; j < 16 * CHO; j += 32) {
    const int r = row0 + j / CHO;
    const int ch = j % CHO;
    if (r < N) {
      const uint4 v = *reinterpret_cast<const uint4*>(reinterpret_cast<const unsigned char*>(sq + r * HDP) + ch * 16);
      *reinterpret_cast<uint4*>(o + ((w * N + r) * C + static_cast<int64_t>(h) * HD) * EB + ch * 16) = v;
    }
  }
}

template <int HD, bool IN_INT8, int NFIX>
__global__ void __launch_bounds__(kThreads, kPersistCtasPerSm)
    window_attention_persistent_kernel(WindowAttentionParams p, PersistentConfig pc) {
  constexpr int NK = kPersistKeys;
  constexpr int HDP = HD + kPadHalves;
  constexpr int NT = NK / 8;
  constexpr int DT = HD / 8;
  constexpr int UNIT_HALVES = 3 * NK * HDP;
  constexpr int TS = kTableStride;
  constexpr int CH = IN_INT8 ? HD / 16 : HD / 8;  // 16-byte global chunks per head row
  constexpr int CE = IN_INT8 ? 16 : 8;             // elements per chunk
  constexpr int LOADS = (NK * 3 * CH + kThreads - 1) / kThreads;
  static_assert(NK / 16 == kWarps, "one warp per 16-row query tile");

  extern __shared__ __align__(16) unsigned char smem_raw[];
  float* table = reinterpret_cast<float*>(smem_raw);
  __half* bufs = reinterpret_cast<__half*>(smem_raw + NK * TS * sizeof(float));

  const int64_t u_begin = static_cast<int64_t>(blockIdx.x) * pc.chunk;
  const int64_t u_end = min(u_begin + pc.chunk, pc.units);
  if (u_begin >= u_end) return;  // uniform over the CTA

  const int N = NFIX > 0 ? NFIX : p.N;
  const int C = p.num_heads * HD;
  const int tid = threadIdx.x;

  // Rows >= N of k and v (and q) in both buffers stay zero for the whole kernel: those keys get logit -inf from the
  // table, and P = 0 times v = 0 is 0. Nothing else writes them (copies cover rows < N; outputs are staged in q rows).
  {
    constexpr int PER_ROW = HDP / 8;  // 16-byte pieces per smem row
    const int pad_rows = NK - N;
    const int total = 2 * 3 * pad_rows * PER_ROW;
    for (int i = tid; i < total; i += kThreads) {
      const int c = i % PER_ROW;
      const int rr = i / PER_ROW;
      const int mat = rr / pad_rows;  // buffer * 3 + part
      const int r = N + rr % pad_rows;
      *reinterpret_cast<uint4*>(bufs + mat * NK * HDP + r * HDP + c * 8) = make_uint4(0, 0, 0, 0);
    }
  }

  // This thread's share of a unit's copies, the same for every unit: chunk i = tid + k * 128 is (row, q|k|v, chunk),
  // so consecutive threads read consecutive 16 B of one token's q (k, v) slice of head h.
  int goff[LOADS], soff[LOADS];
  uint32_t valid = 0;
#pragma unroll
  for (int k = 0; k < LOADS; ++k) {
    const int i = tid + k * kThreads;
    const int ch = i % CH;
    const int part = (i / CH) % 3;
    const int r = i / (3 * CH);
    if (i < NK * 3 * CH && r < N) valid |= 1u << k;
    goff[k] = r * 3 * C + part * C + ch * CE;
    soff[k] = part * NK * HDP + r * HDP + ch * CE;
  }
  int4 pre[IN_INT8 ? LOADS : 1];  // int8: the next unit's chunks, prefetched into registers

  auto issue_copies = [&](const UnitCursor& cu, __half* buf) {
    const int64_t base = cu.window(pc) * N * 3 * C + static_cast<int64_t>(cu.h) * HD;
    if constexpr (!IN_INT8) {
      const __half* src = static_cast<const __half*>(p.qkv) + base;
#pragma unroll
      for (int k = 0; k < LOADS; ++k)
        if (valid >> k & 1u) copy16(buf + soff[k], src + goff[k], true);
    } else {
      const int8_t* src = static_cast<const int8_t*>(p.qkv) + base;
#pragma unroll
      for (int k = 0; k < LOADS; ++k)
        pre[k] = (valid >> k & 1u) ? __ldg(reinterpret_cast<const int4*>(src + goff[k])) : make_int4(0, 0, 0, 0);
    }
  };
  // int8: widen the prefetched chunks to exact fp16 integers in shared memory
  auto put_int8 = [&](__half* buf) {
    if constexpr (IN_INT8) {
#pragma unroll
      for (int k = 0; k < LOADS; ++k) {
        if (!(valid >> k & 1u)) continue;
        const int4 v = pre[k];
        uint4 a, b;
        a.x = s8x2_to_h2(v.x, 0); a.y = s8x2_to_h2(v.x, 16); a.z = s8x2_to_h2(v.y, 0); a.w = s8x2_to_h2(v.y, 16);
        b.x = s8x2_to_h2(v.z, 0); b.y = s8x2_to_h2(v.z, 16); b.z = s8x2_to_h2(v.w, 0); b.w = s8x2_to_h2(v.w, 16);
        *reinterpret_cast<uint4*>(buf + soff[k]) = a;
        *reinterpret_cast<uint4*>(buf + soff[k] + 8) = b;
      }
    }
  };

  const int warp = tid / 32;
  const int lane = tid % 32;
  const int g = lane / 4;
  const int t = lane % 4;
  const int mt = warp;  // this warp's query rows [16 mt, 16 mt + 16) of every unit
  const int r0 = mt * 16 + g;
  const int r1 = r0 + 8;
  const float qk_scale = IN_INT8 ? p.scale * p.q_scale * p.k_scale : p.scale;
  const float out_mul = IN_INT8 ? p.v_scale : 1.f;

  UnitCursor cur;
  cur.start(u_begin, pc);
  UnitCursor nxt = cur;
  int table_h = -1, table_m = -1;
  __syncthreads();  // the zero fill above is done before any copy lands in the same buffers
  issue_copies(cur, bufs);

  for (int64_t u = u_begin; u < u_end; ++u) {
    const int stage = static_cast<int>((u - u_begin) & 1);
    __half* sq = bufs + stage * UNIT_HALVES;
    put_int8(sq);
    copy_commit();
    copy_wait<0>();
    __syncthreads();  // unit u is in shared memory, and every warp is done with unit u - 1 (other buffer, table)
    if (u + 1 < u_end) {
      nxt.advance(pc);
      issue_copies(nxt, bufs + (stage ^ 1) * UNIT_HALVES);
    }
    if (cur.h != table_h || cur.m != table_m) {
      // logit offsets of pair (h, m): bias[h] + mask[m] for real (row, key), -inf elsewhere
      const float* bias = p.bias + static_cast<int64_t>(cur.h) * N * N;
      const float* mask = p.mask ? p.mask + static_cast<int64_t>(cur.m) * N * N : nullptr;
#pragma unroll 8  // independent loads in flight: the build is L2-latency-bound
      for (int i = tid; i < NK * NK; i += kThreads) {
        const int r = i / NK;
        const int c = i % NK;
        float v = -INFINITY;
        if (r < N && c < N) {
          v = __ldg(bias + r * N + c);
          if (mask) v += __ldg(mask + r * N + c);
        }
        table[r * TS + c] = v;
      }
      table_h = cur.h;
      table_m = cur.m;
      __syncthreads();
    }

    const __half* sk = sq + NK * HDP;
    const __half* sv = sk + NK * HDP;
    float s[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < HD / 16; ++ks) {
      uint32_t a[4];
      ldmatrix_x4(a, smem_u32(sq + (mt * 16 + (lane % 16)) * HDP + ks * 16 + (lane / 16) * 8));
#pragma unroll
      for (int nt = 0; nt < NT; nt += 2) {
        uint32_t b[4];
        ldmatrix_x4(b, smem_u32(sk + (nt * 8 + (lane / 16) * 8 + (lane % 8)) * HDP + ks * 16 + ((lane / 8) % 2) * 8));
        mma_16816(s[nt], a, b[0], b[1]);
        mma_16816(s[nt + 1], a, b[2], b[3]);
      }
    }

    // logits = S * scale + table, FP32; the table's -inf marks padded keys (and padded query rows)
    const float* t0 = table + r0 * TS + 2 * t;
    const float* t1 = table + r1 * TS + 2 * t;
    float m0 = -INFINITY, m1 = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const float2 b0 = *reinterpret_cast<const float2*>(t0 + nt * 8);
      const float2 b1 = *reinterpret_cast<const float2*>(t1 + nt * 8);
      s[nt][0] = fmaf(s[nt][0], qk_scale, b0.x);
      s[nt][1] = fmaf(s[nt][1], qk_scale, b0.y);
      s[nt][2] = fmaf(s[nt][2], qk_scale, b1.x);
      s[nt][3] = fmaf(s[nt][3], qk_scale, b1.y);
      m0 = fmaxf(m0, fmaxf(s[nt][0], s[nt][1]));
      m1 = fmaxf(m1, fmaxf(s[nt][2], s[nt][3]));
    }
    float o[DT][4], l0, l1;
    softmax_pv<NT, NK, DT, HDP>(s, m0, m1, sv, lane, o, l0, l1);

    const float inv0 = l0 > 0.f ? out_mul / l0 : 0.f;
    const float inv1 = l1 > 0.f ? out_mul / l1 : 0.f;
    __syncwarp();
    stage_output_tile<DT, HDP>(o, inv0, inv1, sq, r0, r1, t, p);
    __syncwarp();
    const int64_t w = cur.window(pc);
    if (p.out_int8 || p.out_fp8) store_tile_rows<HD, 1, HDP>(sq, mt * 16, N, w, cur.h, C, p.out, lane);
    else store_tile_rows<HD, 2, HDP>(sq, mt * 16, N, w, cur.h, C, p.out, lane);
    cur = nxt;
  }
}

// Which kernel serves NK = 64: TRT_SWIN_WA_IMPL = tiled | persistent | auto (default; read once per process: A/B
// benchmarks only). auto, from the H100 A/B (README): persistent for fp16 in / fp16 out when every CTA walks at least
// kMinWalk units (Swin-T stage 1 at batch 128: 0.258 -> 0.176 ms); tiled for int8 input, int8 / fp8 output (slower
// persistent: the per-element IEEE divisions and the int8 widening sit on the critical path of a single CTA's walk)
// and for short walks (small batch, Swin-T stage 4: the table build is not amortized).
constexpr int kMinWalk = 8;

inline int wa_impl() {
  static const int impl = [] {
    const char* v = std::getenv("TRT_SWIN_WA_IMPL");
    if (v && !std::strcmp(v, "tiled")) return 1;
    if (v && !std::strcmp(v, "persistent")) return 2;
    return 0;
  }();
  return impl;
}

template <int HD, bool IN_INT8, int NFIX>
cudaError_t launch_persistent(const WindowAttentionParams& p, cudaStream_t stream, bool only_long_walks, bool* launched) {
  *launched = false;
  auto kernel = window_attention_persistent_kernel<HD, IN_INT8, NFIX>;
  constexpr int smem = persistent_smem_bytes(HD);
  static const int occupancy = [&] {
    int n = 0;
    if (smem > 48 * 1024) (void)cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, kThreads, smem) != cudaSuccess) {
      (void)cudaGetLastError();
      n = 1;
    }
    return n > 0 ? n : 1;
  }();
  static const int ctas_knob = env_int("TRT_SWIN_WA_CTAS_PER_SM", 0);  // sweeps only; 0: occupancy
  int dev = 0, sms = 0;
  TRT_SWIN_CUDA_TRY(cudaGetDevice(&dev));
  TRT_SWIN_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  PersistentConfig pc{};
  pc.nWm = p.mask ? p.nW : 1;
  pc.imgs = p.num_windows / pc.nWm;
  pc.units = static_cast<int64_t>(pc.imgs) * pc.nWm * p.num_heads;
  const int64_t slots = static_cast<int64_t>(sms) * (ctas_knob > 0 ? ctas_knob : occupancy);
  const int64_t first = pc.units < slots ? pc.units : slots;
  pc.chunk = (pc.units + first - 1) / first;
  if (only_long_walks && pc.chunk < kMinWalk) return cudaSuccess;
  const int64_t blocks = (pc.units + pc.chunk - 1) / pc.chunk;
  if (smem > 48 * 1024) {
    TRT_SWIN_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  }
  kernel<<<static_cast<unsigned>(blocks), kThreads, smem, stream>>>(p, pc);
  TRT_SWIN_LAUNCH_CHECK();
  *launched = true;
  return cudaSuccess;
}

template <int NK, int HD, bool IN_INT8, int NFIX>
cudaError_t launch(const WindowAttentionParams& p, cudaStream_t stream) {
  if constexpr (NK == kPersistKeys) {
    // the walk needs whole images of nW windows; anything else (possible through the C API only) stays tiled
    const bool whole_images = !p.mask || p.num_windows % p.nW == 0;
    const int impl = wa_impl();
    const bool fp16_io = !IN_INT8 && !p.out_int8 && !p.out_fp8;
    if (whole_images && (impl == 2 || (impl == 0 && fp16_io))) {
      bool launched = false;
      TRT_SWIN_CUDA_TRY((launch_persistent<HD, IN_INT8, NFIX>(p, stream, impl == 0, &launched)));
      if (launched) return cudaSuccess;
    }
  }
  return launch_tiled<NK, HD, IN_INT8, NFIX>(p, stream);
}

}  // namespace wattn
}  // namespace trt_swin
