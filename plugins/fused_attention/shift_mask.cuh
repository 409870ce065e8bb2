// timm's shift mask as the fused attention kernels derive it from window coordinates (kernel code only; both the
// mma.sync kernel and the Hopper kernel use it).
#pragma once
#include <cstdint>

namespace trt_swin {
namespace fattn {

// Region of the padded, shifted map that coordinate y (0 <= y < P, P = padded extent) falls in: timm's
// get_attn_mask slices (0, -ws), (-ws, -shift), (-shift, None).
__device__ __forceinline__ int region(int y, int P, int ws, int shift) { return y < P - ws ? 0 : (y < P - shift ? 1 : 2); }

// Mask bits of one thread's logits in the m16n8 accumulator layout (rows r0 and r0 + 8, lane column t = lane % 4):
// bit 2 nt + e of same0 / same1 says whether key 8 nt + 2 t + e lies in the same region as row r0 / r1. rid: the
// window's 64 region ids (rows >= N hold region 0: those keys are -inf in bias64 and those rows are dropped).
__device__ __forceinline__ void shift_mask_bits(const int8_t* rid, int r0, int r1, int t, uint32_t& same0,
                                                uint32_t& same1) {
  const int id0 = rid[r0], id1 = rid[r1];
  same0 = same1 = 0;
#pragma unroll
  for (int k = 0; k < 16; ++k) {
    const int idc = rid[(k / 2) * 8 + 2 * t + k % 2];
    same0 |= static_cast<uint32_t>(idc == id0) << k;
    same1 |= static_cast<uint32_t>(idc == id1) << k;
  }
}

}  // namespace fattn
}  // namespace trt_swin
