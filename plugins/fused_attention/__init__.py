"""trt_swin::fused_attention_: a Swin block's attention half (LayerNorm, shift, window partition, QKV, windowed
attention, proj, reverse, unshift, residual) in one kernel, in place on the residual stream."""
