/*
 * bnb_metal_shared.h — parameter blocks and constants shared by the Metal host (metal_backend.mm) and the kernels
 * (bnb_metal_kernels.metal). The build prepends this file to the kernel source it embeds (the kernels are compiled
 * at run time by newLibraryWithSource), so host and kernels compile the same struct layouts.
 *
 * Valid as C++17 and as Metal Shading Language: fixed-width scalars only, 8-byte members first, every struct a
 * multiple of 8 bytes, so the layouts agree without packing pragmas (MSL aligns ulong to 8 like C++ uint64_t).
 */
#ifndef BNB_METAL_SHARED_H
#define BNB_METAL_SHARED_H

#ifdef __METAL_VERSION__
typedef uint bnb_mtl_u32;
typedef int bnb_mtl_i32;
typedef ulong bnb_mtl_u64;
#else
#include <stdint.h>
typedef uint32_t bnb_mtl_u32;
typedef int32_t bnb_mtl_i32;
typedef uint64_t bnb_mtl_u64;
#endif

/* Element types of float operands: the values of BNB_DTYPE_F32/F16/BF16 in bnb.h (the kernels cannot include it;
 * metal_backend.mm static_asserts that they agree). */
#define BNB_MTL_F32 0
#define BNB_MTL_F16 1
#define BNB_MTL_BF16 2
#define BNB_MTL_NO_BIAS (-1) /* gemv: bias_dtype when there is no bias */

/* 8-bit rounding modes: BNB_ROUND_NEAREST / BNB_ROUND_BNB_CPU_LUT. */
#define BNB_MTL_ROUND_NEAREST 0
#define BNB_MTL_ROUND_LUT 1

/* Threads per threadgroup of the block kernels (one threadgroup per quantization block) and of gemv (one
 * threadgroup per output element). Powers of two: the reductions halve the active threads each step. */
#define BNB_MTL_BLOCK_THREADS 256
#define BNB_MTL_GEMV_THREADS 64

/* Bits of f32(1e-38), the absmax clamp of bitsandbytes' default backend (§2.5.2). It is a subnormal, and GPUs may
 * flush subnormal arithmetic to zero, so the kernels store these bits instead of computing with the literal. */
#define BNB_MTL_ABSMAX_CLAMP_BITS 0x006CE3EEu

/* quantize_blockwise and quantize_4bit. */
typedef struct bnb_mtl_quant_params {
    bnb_mtl_u64 n;         /* elements of A                                         */
    bnb_mtl_u64 blocksize; /* power of two in [32, 4096]                            */
    bnb_mtl_u64 blocks;    /* ceil(n / blocksize)                                   */
    bnb_mtl_i32 dtype;     /* BNB_MTL_F32/F16/BF16 of A                             */
    bnb_mtl_i32 rounding;  /* 8-bit: BNB_MTL_ROUND_*; 4-bit: unused (0)             */
    bnb_mtl_i32 pad_code;  /* 4-bit: nibble of the 0.0 padding an odd n (else 0)    */
    bnb_mtl_i32 reserved;
} bnb_mtl_quant_params;

/* Per-block scales of dequantize_blockwise, dequantize_4bit and gemv_4bit: plain float32 absmax, or 8-bit codes with
 * nested statistics: scale[b] = f32(f32(nested_code[codes[b]] * nested_absmax[b / nested_blocksize]) + offset). */
typedef struct bnb_mtl_scale_params {
    bnb_mtl_u64 nested_blocksize; /* nested only                       */
    bnb_mtl_i32 nested;           /* 0: plain f32; 1: u8 codes         */
    float nested_offset;          /* nested only                       */
} bnb_mtl_scale_params;

/* dequantize_blockwise and dequantize_4bit. */
typedef struct bnb_mtl_dequant_params {
    bnb_mtl_u64 n;         /* elements produced (numel of out) */
    bnb_mtl_u64 blocksize;
    bnb_mtl_scale_params scales;
    bnb_mtl_i32 out_dtype; /* BNB_MTL_F32/F16/BF16             */
    bnb_mtl_i32 reserved;
} bnb_mtl_dequant_params;

/* gemv_4bit: out[m, n] = A[m, :] · dequant(W)[n, :] (+ bias[n]) for W[N, K] in the standard packed layout. */
typedef struct bnb_mtl_gemv_params {
    bnb_mtl_u64 M, N, K;
    bnb_mtl_u64 a_row_stride;   /* elements between rows of A   */
    bnb_mtl_u64 out_row_stride; /* elements between rows of out */
    bnb_mtl_u64 blocksize;
    bnb_mtl_scale_params scales;
    bnb_mtl_i32 a_dtype;
    bnb_mtl_i32 out_dtype;
    bnb_mtl_i32 bias_dtype;     /* BNB_MTL_NO_BIAS when there is no bias */
    bnb_mtl_i32 reserved;
} bnb_mtl_gemv_params;

#endif /* BNB_METAL_SHARED_H */
