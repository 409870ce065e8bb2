// Hopper (sm_90a) kernel of trt_swin::patch_merge_gemm (patch_merge_gemm.h): the 2x2 gather, LayerNorm(4C) and the
// 4C -> 2C reduction GEMM of a Swin V1 patch merging in one pass over x, the LayerNorm folded into the GEMM:
//
//   out = rstd * (g @ W'^T - mean * u) + v        g: the raw gathered row (fp16, as stored in x)
//
// CTA = 2 warpgroups over a persistent loop of 64-row tiles (warpgroup gw takes tiles gw, gw + G, ...); W' [2C x 4C]
// stays in shared memory (C 96: 144 KB). A tile's K = 4C is streamed in chunks of 64 channels, each a 64 x 64 tile
// (one aligned 128-byte line of x per row) copied with 16-byte cp.async into a 5-stage ring per warpgroup, 3 chunks
// in flight ahead of the MMA (the op is memory-bound: C 96 reads 48 KB and writes 24 KB per tile against ~2300
// cycles of MMA). Per chunk:
//   - the chunk's wgmma (m64 n2C k16 x 4) is issued and left in flight (the previous chunk's is then waited for);
//   - meanwhile the row statistics are summed from the same shared-memory tile: warp w's 16 rows, two lanes per row,
//     FP32 sums of values shifted by the row's first element (a large mean does not cancel in E[d^2] - E[d]^2);
// after a tile's last chunk the accumulators are finished in registers and stored as fp16 (rows past M are not).
// Both operands use wgmma's 128-byte swizzle layout (sw128): whole-line copies and the statistics' reads are then
// free of bank conflicts. (A first form streamed 48-channel chunks of one neighbour in the no-swizzle layout: every
// lane of a copy hit its own line, and ncu showed the warps waiting on the copies; 91 us at Swin-T batch 128 on the
// H100 against 101 us for patch_merge + cuBLASLt.)
#include <cuda_fp16.h>

#include <cstdint>

#include "common/cuda_check.h"
#include "common/kernel_choice.h"
#include "common/mma.cuh"
#include "common/wgmma.cuh"
#include "patch_merge_gemm/patch_merge_gemm.h"

namespace trt_swin {
namespace pmg90 {

constexpr int kRows = 64;  // merged tokens per tile

// K-major operand in wgmma's 128-byte swizzle layout: rows of 64 fp16 (128 bytes), 8-row atoms of 1 KB (1 KB
// aligned) in which row r keeps its 16-byte unit u at unit u ^ (r % 8); atoms 1 KB apart along M / N. A k16 step
// within the 64 columns is the start address + 32 bytes per step (the hardware swizzles absolute address bits).
__device__ __forceinline__ uint32_t sw128(int row, int unit) {
  return static_cast<uint32_t>((row >> 3) * 1024 + (row & 7) * 128 + ((unit ^ row) & 7) * 16);
}
__device__ __forceinline__ uint64_t make_smem_desc_sw128(uint32_t smem_addr) {
  return static_cast<uint64_t>((smem_addr & 0x3FFFF) >> 4) | (uint64_t{1} << 16) | (uint64_t{1024 >> 4} << 32) |
         (uint64_t{1} << 62);
}

template <int C_>
struct Cfg {
  static constexpr int C = C_, N = 2 * C, K = 4 * C;
  // The kernel's K order: for dh = 0, 1 the pixel pair (2i + dh, 2j), (2i + dh, 2j + 1), whose 2C channels are
  // contiguous in x; w's columns (timm's order: neighbour blocks (0,0), (1,0), (0,1), (1,1)) are permuted to match
  // when loaded. A chunk is 64 of those channels: one aligned 128-byte line per row.
  static constexpr int NCH = K / 64;          // chunks per tile
  static constexpr int PIECES = NCH / 2;      // chunks per pixel pair
  static constexpr int kNWG = 2;
  static constexpr int kThreads = 128 * kNWG;
  static constexpr int kStages = 5, kDist = 3;  // ring stages; chunks copied ahead of the one being multiplied
  static constexpr int CHUNK_BYTES = kRows * 128;
  static constexpr int W_BYTES = N * K * 2;     // NCH column blocks of [N rows x 64]
  static constexpr int WG_BYTES = kStages * CHUNK_BYTES;
  static constexpr int kSmemBytes = 1024 + W_BYTES + kNWG * WG_BYTES + 2 * N * 4;  // + alignment slack, u, v
  // Chunk c + kDist is copied into the stage of chunk c - 2, whose MMA every warp has waited for by then.
  static_assert(kStages >= kDist + 2, "ring too short for the copy distance");
  static_assert(C % 32 == 0, "whole 64-channel chunks per pixel pair");
  static_assert(kSmemBytes <= 227 * 1024, "fits Hopper's 227 KB per CTA");
};

template <class K>
__global__ void __launch_bounds__(K::kThreads, 1) patch_merge_gemm_sm90a_kernel(PatchMergeGemmParams p, int num_tiles) {
  constexpr int C = K::C, N = K::N, NCH = K::NCH;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  // the swizzle atoms need 1 KB alignment
  unsigned char* smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
  const int tid = threadIdx.x, wg = tid / 128, wtid = tid % 128;
  const int warp = wtid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  unsigned char* sW = smem;                                       // NCH blocks of [N rows x 64], swizzled
  unsigned char* sRing = smem + K::W_BYTES + wg * K::WG_BYTES;    // this warpgroup's chunk ring
  float* sU = reinterpret_cast<float*>(smem + K::W_BYTES + K::kNWG * K::WG_BYTES);
  float* sV = sU + N;

  // ---- W', once per CTA (the oldest copy group): w's unit (n, kc) of neighbour block nb = (dh, dw) goes to the
  // kernel's column dh 2C + dw C + (its channel in the block).
  for (int i = tid; i < N * (K::K / 8); i += K::kThreads) {
    const int n = i / (K::K / 8), kc = i % (K::K / 8);
    const int nb = kc / (C / 8), col = (nb & 1) * 2 * C + (nb >> 1) * C + (kc % (C / 8)) * 8;
    copy16(sW + (col / 64) * (N * 128) + sw128(n, (col % 64) / 8), p.w + static_cast<int64_t>(n) * K::K + kc * 8);
  }
  copy_commit();
  for (int i = tid; i < N; i += K::kThreads) {
    sU[i] = p.u[i];
    sV[i] = p.v[i];
  }

  const int H2 = p.H / 2, W2 = p.W / 2, HW2 = H2 * W2;
  const int M = p.B * HW2;  // < 2^31 (launch)
  const int G = gridDim.x * K::kNWG;
  const int tile0 = blockIdx.x * K::kNWG + wg;
  const int my_tiles = tile0 < num_tiles ? (num_tiles - 1 - tile0) / G + 1 : 0;

  // Chunk q of this warpgroup's tile it: pixel pair dh = q / PIECES, 64 channels from (q % PIECES) 64. Thread wtid
  // copies unit wtid % 8 of rows wtid / 8 + 16 r (r < 4): a warp's copy is 4 whole lines. Rows past M are
  // zero-filled. The rows' offsets in x (pixel (2i, 2j)) are computed at a tile's first chunk: chunks are copied in
  // order.
  int64_t src[4];
  auto load_chunk = [&](int it, int q) {
    const int u = wtid % 8;
    if (q == 0) {
      const int tile_m = (tile0 + it * G) * kRows;
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int m = tile_m + wtid / 8 + 16 * r;
        const int b = m / HW2, rem = m - b * HW2, i = rem / W2, j = rem - i * W2;
        src[r] = m < M ? (static_cast<int64_t>(b * p.H + 2 * i) * p.W + 2 * j) * C : -1;
      }
    }
    const int64_t off = static_cast<int64_t>(q / K::PIECES) * p.W * C + (q % K::PIECES) * 64 + u * 8;
    unsigned char* dst = sRing + ((it * NCH + q) % K::kStages) * K::CHUNK_BYTES;
#pragma unroll
    for (int r = 0; r < 4; ++r) copy16(dst + sw128(wtid / 8 + 16 * r, u), p.x + (src[r] >= 0 ? src[r] + off : 0), src[r] >= 0);
  };

#pragma unroll
  for (int c = 0; c < K::kDist; ++c) {
    if (c / NCH < my_tiles) load_chunk(c / NCH, c % NCH);
    copy_commit();  // one group per chunk slot, empty or not: the wait counts below stay fixed
  }
  copy_wait<K::kDist>();  // W' has landed (this thread's part)
  fence_proxy_async();
  __syncthreads();  // all of W', u and v

  const uint32_t w_base = smem_u32(sW), ring_base = smem_u32(sRing);
  const int srow = warp * 16 + (lane & 15), sh = lane >> 4;  // statistics: this thread's row and half of its units
  float acc[N / 2];
  for (int it = 0; it < my_tiles; ++it) {
    float shift = 0.f, s = 0.f, ss = 0.f;  // row srow: its first value, sum and sum of squares of (value - shift)
#pragma unroll
    for (int q = 0; q < NCH; ++q) {  // unrolled: the chunk's place in the tile is static (no waits injected by ptxas)
      const int stage = (it * NCH + q) % K::kStages;
      copy_wait<K::kDist - 1>();
      fence_proxy_async();
      warpgroup_barrier(wg);  // chunk q is in place; every warp has waited for the MMA two chunks back
      const int qn = (q + K::kDist) % NCH, dit = (q + K::kDist) / NCH;  // the chunk copied now (static)
      if (it + dit < my_tiles) load_chunk(it + dit, qn);
      copy_commit();

      const uint32_t a_base = ring_base + stage * K::CHUNK_BYTES;
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < 4; ++ks) {
        wgmma_ss<N>(acc, make_smem_desc_sw128(a_base + ks * 32),
                    make_smem_desc_sw128(w_base + q * (N * 128) + ks * 32), q > 0 || ks > 0);
      }
      wgmma_commit();

      // ---- the statistics of row srow, from this chunk's tile while its MMA runs (8 lanes on 8 rows of one
      // unit: conflict-free)
      const unsigned char* sa = sRing + stage * K::CHUNK_BYTES;
      if (q == 0) shift = __half2float(*reinterpret_cast<const __half*>(sa + sw128(srow, 0)));
#pragma unroll
      for (int u = sh * 4; u < sh * 4 + 4; ++u) {
        const uint4 raw = *reinterpret_cast<const uint4*>(sa + sw128(srow, u));
        const __half2* h2 = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 f = __half22float2(h2[e]);
          const float d0 = f.x - shift, d1 = f.y - shift;
          s += d0 + d1;
          ss = fmaf(d0, d0, fmaf(d1, d1, ss));
        }
      }
      if (q < NCH - 1) {
        wgmma_wait<1>();  // chunk c - 1's MMA: its stage may be refilled after the next barrier
      } else {
        wgmma_wait<0>();
      }
    }

    // ---- the tile's output: rows 16 warp + g (+ 8); this thread's accumulators hold columns 8 nt + 2 t (+ 1)
    s += __shfl_xor_sync(0xffffffffu, s, 16);
    ss += __shfl_xor_sync(0xffffffffu, ss, 16);
    const float md = s * (1.f / K::K);
    const float mean = shift + md, rstd = rsqrtf(fmaxf(ss * (1.f / K::K) - md * md, 0.f) + p.eps);
    const float mean0 = __shfl_sync(0xffffffffu, mean, g), rstd0 = __shfl_sync(0xffffffffu, rstd, g);
    const float mean1 = __shfl_sync(0xffffffffu, mean, g + 8), rstd1 = __shfl_sync(0xffffffffu, rstd, g + 8);
    const int m0 = (tile0 + it * G) * kRows + warp * 16 + g, m1 = m0 + 8;
    const bool v0 = m0 < M, v1 = m1 < M;
    // fp16 pair of n-tile nt in row half h (rows m0 / m1)
    auto finish = [&](int nt, int h) {
      const int n = nt * 8 + 2 * t;
      const float2 uu = *reinterpret_cast<const float2*>(sU + n), vv = *reinterpret_cast<const float2*>(sV + n);
      const float mu = h ? mean1 : mean0, rs = h ? rstd1 : rstd0;
      return pack_half2(fmaf(rs, fmaf(-mu, uu.x, acc[4 * nt + 2 * h]), vv.x),
                        fmaf(rs, fmaf(-mu, uu.y, acc[4 * nt + 2 * h + 1]), vv.y));
    };
    // Per 16 columns (n-tiles 2k, 2k + 1) the quad exchanges pairs so that thread t stores columns 16 k + 4 t .. + 3:
    // a warp's store then fills whole 32-byte sectors (8 rows x 32 bytes), not half sectors (8 rows x 16 bytes).
    const int src_a = (lane & ~3) | ((2 * t) & 3), src_b = (lane & ~3) | ((2 * t + 1) & 3);
#pragma unroll
    for (int k = 0; k < N / 16; ++k) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint32_t p0 = finish(2 * k, h), p1 = finish(2 * k + 1, h);
        const uint32_t a0 = __shfl_sync(0xffffffffu, p0, src_a), b0 = __shfl_sync(0xffffffffu, p0, src_b);
        const uint32_t a1 = __shfl_sync(0xffffffffu, p1, src_a), b1 = __shfl_sync(0xffffffffu, p1, src_b);
        const int m = h ? m1 : m0;
        if (h ? v1 : v0) {
          *reinterpret_cast<uint2*>(p.out + static_cast<int64_t>(m) * N + 16 * k + 4 * t) =
              t < 2 ? make_uint2(a0, b0) : make_uint2(a1, b1);
        }
      }
    }
  }
}

template <int C>
cudaError_t launch(const PatchMergeGemmParams& p, cudaStream_t stream) {
  using K = Cfg<C>;
  auto kernel = patch_merge_gemm_sm90a_kernel<K>;
  int sms = 0;
  TRT_SWIN_CUDA_TRY(opt_in_shared_memory(kernel, K::kSmemBytes, &sms));
  const int64_t M = static_cast<int64_t>(p.B) * (p.H / 2) * (p.W / 2);
  const int64_t tiles = (M + kRows - 1) / kRows;
  if (tiles * kRows >= (int64_t{1} << 31)) return cudaErrorInvalidValue;  // token indices are int
  // Persistent: one CTA per SM (its shared memory), never more warpgroups than tiles.
  const int64_t need = (tiles + K::kNWG - 1) / K::kNWG;
  const int blocks = static_cast<int>(need < sms ? need : sms);
  kernel<<<blocks, K::kThreads, K::kSmemBytes, stream>>>(p, static_cast<int>(tiles));
  TRT_SWIN_LAUNCH_CHECK();
  return cudaSuccess;
}

}  // namespace pmg90

cudaError_t patch_merge_gemm_sm90a(const PatchMergeGemmParams& p, cudaStream_t stream) {
  switch (p.C) {
    case 32: return pmg90::launch<32>(p, stream);
    case 64: return pmg90::launch<64>(p, stream);
    case 96: return pmg90::launch<96>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace trt_swin
