using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Bnb.Dense;

/// <summary>
/// Dense float32 matrix multiply on the CPU in managed code: <c>C = op(A) · op(B)</c> (optionally <c>C +=</c>), all
/// matrices row-major with a row stride ("leading dimension"). Used where no quantized kernel applies: attention
/// scores, LoRA adapters, fp32 reference layers.
/// </summary>
/// <remarks>
/// <para>Blocked like a BLAS (Goto/BLIS scheme): the output is cut into <see cref="TileM"/>×<see cref="TileN"/> tiles
/// that run in parallel; inside a tile, K is walked in <see cref="TileK"/> slices, A and B slices are packed into
/// contiguous micro-panels and a 6×16 register micro-kernel (Vector256, FMA where the CPU has it) accumulates them.</para>
/// <para>Deterministic: every output element is produced by one thread, summing over k in the same order whatever the
/// thread count, so results do not depend on <c>maxThreads</c> or on scheduling. They can differ in the last bits
/// between machines with and without FMA.</para>
/// </remarks>
public static class Gemm
{
    // Micro-kernel shape: MR rows × NR columns of C live in 12 Vector256 registers.
    private const int MR = 6;
    private const int NR = 16;

    /// <summary>Rows of C per parallel tile (a multiple of the 6-row micro-kernel).</summary>
    public const int TileM = 96;

    /// <summary>Columns of C per parallel tile (a multiple of the 16-column micro-kernel).</summary>
    public const int TileN = 256;

    /// <summary>Depth of one packed slice of A and B (A slice 96×256 + B slice 256×256 floats stay in L2).</summary>
    public const int TileK = 256;

    // Below this many multiply-adds the work runs on the calling thread (Parallel.For costs a few microseconds).
    private const long ParallelThreshold = 1L << 18;

    /// <summary>C[m×n] = A[m×k] · B[k×n] (row-major, contiguous).</summary>
    public static void MatMul(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k) =>
        Multiply(a, k, false, b, n, false, c, n, m, n, k);

    /// <summary>C[m×n] = A[m×k] · Bᵀ where B is [n×k] (row-major, contiguous): a linear layer with PyTorch's weight layout.</summary>
    public static void MatMulTransposedB(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k) =>
        Multiply(a, k, false, b, k, true, c, n, m, n, k);

    /// <summary>
    /// General form: C[m×n] (row stride <paramref name="ldc"/>) = op(A) · op(B), or C += op(A) · op(B) with
    /// <paramref name="accumulate"/>. op(A) is m×k: A is stored [m×k] (stride <paramref name="lda"/>), or [k×m] when
    /// <paramref name="transposeA"/>. op(B) is k×n: B is stored [k×n] (stride <paramref name="ldb"/>), or [n×k] when
    /// <paramref name="transposeB"/>. Strides are in elements. A and B must not overlap C. <paramref name="maxThreads"/>:
    /// 0 = all logical CPUs, 1 = the calling thread only.
    /// </summary>
    /// <exception cref="ArgumentException">A negative size, a stride shorter than a row, or a span too short.</exception>
    public static unsafe void Multiply(
        ReadOnlySpan<float> a, int lda, bool transposeA,
        ReadOnlySpan<float> b, int ldb, bool transposeB,
        Span<float> c, int ldc, int m, int n, int k, bool accumulate = false, int maxThreads = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfNegative(maxThreads);
        CheckOperand(a.Length, lda, transposeA ? k : m, transposeA ? m : k, nameof(a), nameof(lda));
        CheckOperand(b.Length, ldb, transposeB ? n : k, transposeB ? k : n, nameof(b), nameof(ldb));
        CheckOperand(c.Length, ldc, m, n, nameof(c), nameof(ldc));
        if (m == 0 || n == 0)
        {
            return;
        }

        fixed (float* pa = a, pb = b, pc = c)
        {
            var job = new Job(pa, lda, transposeA, pb, ldb, transposeB, pc, ldc, m, n, k, accumulate);
            int tilesM = (m + TileM - 1) / TileM, tilesN = (n + TileN - 1) / TileN;
            int tiles = tilesM * tilesN;
            int threads = maxThreads == 0 ? Environment.ProcessorCount : maxThreads;
            if (tiles == 1 || threads == 1 || (long)m * n * k < ParallelThreshold)
            {
                for (int t = 0; t < tiles; t++)
                {
                    job.RunTile(t / tilesN, t % tilesN);
                }
            }
            else
            {
                Parallel.For(0, tiles, new ParallelOptions { MaxDegreeOfParallelism = threads }, t => job.RunTile(t / tilesN, t % tilesN));
            }
        }
    }

    private static void CheckOperand(int length, int stride, int rows, int cols, string name, string strideName)
    {
        if (stride < 0 || (rows > 0 && stride < cols))
        {
            throw new ArgumentException($"row stride {stride} is shorter than a row of {cols} elements", strideName);
        }

        long needed = rows == 0 || cols == 0 ? 0 : ((long)(rows - 1) * stride) + cols;
        if (length < needed)
        {
            throw new ArgumentException($"{rows}×{cols} matrix with row stride {stride} needs {needed} elements, the span has {length}", name);
        }
    }

    /// <summary>The pinned operands of one call; tiles run on pool threads and own disjoint parts of C.</summary>
    private readonly unsafe struct Job(float* a, int lda, bool transA, float* b, int ldb, bool transB, float* c, int ldc, int m, int n, int k, bool accumulate)
    {
        private readonly nint _a = (nint)a, _b = (nint)b, _c = (nint)c;

        public void RunTile(int tileRow, int tileCol)
        {
            int i0 = tileRow * TileM, j0 = tileCol * TileN;
            int mc = Math.Min(TileM, m - i0), nc = Math.Min(TileN, n - j0);
            int panelsM = (mc + MR - 1) / MR, panelsN = (nc + NR - 1) / NR;
            int kcMax = Math.Min(TileK, Math.Max(k, 1));
            float[] packA = System.Buffers.ArrayPool<float>.Shared.Rent(panelsM * MR * kcMax);
            float[] packB = System.Buffers.ArrayPool<float>.Shared.Rent(panelsN * NR * kcMax);
            try
            {
                fixed (float* pA = packA, pB = packB)
                {
                    if (k == 0)
                    {
                        if (!accumulate)
                        {
                            for (int i = 0; i < mc; i++)
                            {
                                new Span<float>((float*)_c + ((long)(i0 + i) * ldc) + j0, nc).Clear();
                            }
                        }

                        return;
                    }

                    for (int p0 = 0; p0 < k; p0 += TileK)
                    {
                        int kc = Math.Min(TileK, k - p0);
                        PackA(pA, i0, mc, p0, kc);
                        PackB(pB, j0, nc, p0, kc);
                        bool add = accumulate || p0 > 0;
                        for (int ip = 0; ip < panelsM; ip++)
                        {
                            for (int jp = 0; jp < panelsN; jp++)
                            {
                                int rows = Math.Min(MR, mc - (ip * MR)), cols = Math.Min(NR, nc - (jp * NR));
                                float* cTile = (float*)_c + ((long)(i0 + (ip * MR)) * ldc) + j0 + (jp * NR);
                                MicroKernel(pA + (ip * MR * kc), pB + (jp * NR * kc), kc, cTile, ldc, rows, cols, add);
                            }
                        }
                    }
                }
            }
            finally
            {
                System.Buffers.ArrayPool<float>.Shared.Return(packA);
                System.Buffers.ArrayPool<float>.Shared.Return(packB);
            }
        }

        // Packed A: panels of MR rows; inside a panel, for each p the MR values of column p (zero rows past the edge).
        //   panel ip: [a(ip*6+0,p0) a(ip*6+1,p0) … a(ip*6+5,p0)] [a(…,p0+1) …] …
        private void PackA(float* dst, int i0, int mc, int p0, int kc)
        {
            float* a = (float*)_a;
            for (int ip = 0; ip * MR < mc; ip++)
            {
                for (int r = 0; r < MR; r++)
                {
                    int i = (ip * MR) + r;
                    float* d = dst + (ip * MR * kc) + r;
                    if (i >= mc)
                    {
                        for (int p = 0; p < kc; p++)
                        {
                            d[p * MR] = 0f;
                        }
                    }
                    else if (transA)
                    {
                        float* s = a + ((long)p0 * lda) + i0 + i; // A stored [k×m]: element (i, p) at p*lda + i
                        for (int p = 0; p < kc; p++)
                        {
                            d[p * MR] = s[(long)p * lda];
                        }
                    }
                    else
                    {
                        float* s = a + ((long)(i0 + i) * lda) + p0;
                        for (int p = 0; p < kc; p++)
                        {
                            d[p * MR] = s[p];
                        }
                    }
                }
            }
        }

        // Packed B: panels of NR columns; inside a panel, for each p the NR values of row p (zero columns past the edge).
        private void PackB(float* dst, int j0, int nc, int p0, int kc)
        {
            float* b = (float*)_b;
            for (int jp = 0; jp * NR < nc; jp++)
            {
                int cols = Math.Min(NR, nc - (jp * NR));
                float* panel = dst + (jp * NR * kc);
                int j = j0 + (jp * NR);
                for (int p = 0; p < kc; p++)
                {
                    float* d = panel + (p * NR);
                    if (transB)
                    {
                        float* s = b + ((long)j * ldb) + p0 + p; // B stored [n×k]: element (p, j) at j*ldb + p
                        for (int q = 0; q < cols; q++)
                        {
                            d[q] = s[(long)q * ldb];
                        }
                    }
                    else
                    {
                        new ReadOnlySpan<float>(b + ((long)(p0 + p) * ldb) + j, cols).CopyTo(new Span<float>(d, cols));
                    }

                    for (int q = cols; q < NR; q++)
                    {
                        d[q] = 0f;
                    }
                }
            }
        }
    }

    /// <summary>
    /// 6×16 block of C (+)= packed A panel (kc×6) · packed B panel (kc×16). Edge blocks (rows &lt; 6 or cols &lt; 16)
    /// go through a local buffer so only the valid part of C is touched.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void MicroKernel(float* ap, float* bp, int kc, float* c, int ldc, int rows, int cols, bool add)
    {
        float* acc = stackalloc float[MR * NR];
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
            Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
            for (int p = 0; p < kc; p++)
            {
                Vector256<float> b0 = Vector256.Load(bp), b1 = Vector256.Load(bp + 8);
                Vector256<float> a0 = Vector256.Create(ap[0]);
                c00 = MulAdd(a0, b0, c00);
                c01 = MulAdd(a0, b1, c01);
                Vector256<float> a1 = Vector256.Create(ap[1]);
                c10 = MulAdd(a1, b0, c10);
                c11 = MulAdd(a1, b1, c11);
                Vector256<float> a2 = Vector256.Create(ap[2]);
                c20 = MulAdd(a2, b0, c20);
                c21 = MulAdd(a2, b1, c21);
                Vector256<float> a3 = Vector256.Create(ap[3]);
                c30 = MulAdd(a3, b0, c30);
                c31 = MulAdd(a3, b1, c31);
                Vector256<float> a4 = Vector256.Create(ap[4]);
                c40 = MulAdd(a4, b0, c40);
                c41 = MulAdd(a4, b1, c41);
                Vector256<float> a5 = Vector256.Create(ap[5]);
                c50 = MulAdd(a5, b0, c50);
                c51 = MulAdd(a5, b1, c51);
                ap += MR;
                bp += NR;
            }

            c00.Store(acc); c01.Store(acc + 8);
            c10.Store(acc + 16); c11.Store(acc + 24);
            c20.Store(acc + 32); c21.Store(acc + 40);
            c30.Store(acc + 48); c31.Store(acc + 56);
            c40.Store(acc + 64); c41.Store(acc + 72);
            c50.Store(acc + 80); c51.Store(acc + 88);
        }
        else
        {
            // Portable path (no 256-bit SIMD, e.g. arm64): same packing, scalar multiply-add in the same k order.
            new Span<float>(acc, MR * NR).Clear();
            for (int p = 0; p < kc; p++)
            {
                for (int r = 0; r < MR; r++)
                {
                    float av = ap[r];
                    for (int q = 0; q < NR; q++)
                    {
                        acc[(r * NR) + q] = MathF.FusedMultiplyAdd(av, bp[q], acc[(r * NR) + q]);
                    }
                }

                ap += MR;
                bp += NR;
            }
        }

        for (int r = 0; r < rows; r++)
        {
            float* dst = c + ((long)r * ldc);
            float* src = acc + (r * NR);
            if (add)
            {
                for (int q = 0; q < cols; q++)
                {
                    dst[q] += src[q];
                }
            }
            else
            {
                new ReadOnlySpan<float>(src, cols).CopyTo(new Span<float>(dst, cols));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : (a * b) + c;
}
