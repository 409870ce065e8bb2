// Input checks for torch_op.cpp adapters (flash-attention style). Never include from kernel code.
#pragma once
#include <torch/library.h>
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <ATen/cuda/CUDAContext.h>

#define TRT_SWIN_CHECK_CUDA(x) TORCH_CHECK((x).is_cuda(), #x " must be a CUDA tensor")
#define TRT_SWIN_CHECK_CONTIGUOUS(x) TORCH_CHECK((x).is_contiguous(), #x " must be contiguous")
#define TRT_SWIN_CHECK_DTYPE(x, dt) TORCH_CHECK((x).scalar_type() == (dt), #x " must have dtype " #dt ", got ", (x).scalar_type())
#define TRT_SWIN_CHECK_SHAPE(x, ...)                                                       \
  TORCH_CHECK((x).sizes() == at::IntArrayRef({__VA_ARGS__}), #x " must have shape (" #__VA_ARGS__ "), got ", (x).sizes())
// Launchers return cudaError_t; turn a failure into a Python RuntimeError naming the op.
#define TRT_SWIN_CHECK_LAUNCH(expr, opname)                                                \
  do {                                                                                     \
    cudaError_t e_ = (expr);                                                               \
    TORCH_CHECK(e_ == cudaSuccess, opname ": CUDA error: ", cudaGetErrorString(e_));      \
  } while (0)
