using Bnb.Dense;
using CsCheck;

namespace Bnb.Tests.DenseMath;

/// <summary>The managed dense float32 kernels (Bnb.Core/Math) against naive double-precision references.</summary>
public sealed class DenseMathTests
{
    /// <summary>Naive reference in double: C = op(A)·op(B) (+ C0).</summary>
    private static double[] Reference(float[] a, int lda, bool ta, float[] b, int ldb, bool tb, float[]? c0, int ldc, int m, int n, int k)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = c0 is null ? 0 : c0[(i * ldc) + j];
                for (int p = 0; p < k; p++)
                {
                    s += (double)(ta ? a[(p * lda) + i] : a[(i * lda) + p]) * (tb ? b[(j * ldb) + p] : b[(p * ldb) + j]);
                }

                c[(i * n) + j] = s;
            }
        }

        return c;
    }

    private static float[] Random(Random rng, int count)
    {
        var x = new float[count];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)((rng.NextDouble() * 2) - 1);
        }

        return x;
    }

    private static void CheckGemm(int m, int n, int k, bool ta, bool tb, bool accumulate, int pad, int seed, int threads = 0)
    {
        var rng = new Random(seed);
        int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
        float[] a = Random(rng, (Math.Max(ta ? k : m, 1) * lda) - (pad > 0 ? pad : 0));
        float[] b = Random(rng, (Math.Max(tb ? n : k, 1) * ldb) - (pad > 0 ? pad : 0));
        float[] c = Random(rng, m * ldc);
        float[] c0 = (float[])c.Clone();
        Gemm.Multiply(a, lda, ta, b, ldb, tb, c, ldc, m, n, k, accumulate, threads);
        double[] expected = Reference(a, lda, ta, b, ldb, tb, accumulate ? c0 : null, ldc, m, n, k);
        double tol = 1e-5 * (k + 1);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double e = expected[(i * n) + j];
                Assert.True(Math.Abs(c[(i * ldc) + j] - e) <= tol, $"C[{i},{j}] = {c[(i * ldc) + j]}, expected {e} (m={m} n={n} k={k} ta={ta} tb={tb} acc={accumulate} pad={pad})");
            }

            for (int j = n; j < ldc && (i * ldc) + j < c.Length; j++)
            {
                Assert.Equal(c0[(i * ldc) + j], c[(i * ldc) + j]); // padding between rows is never written
            }
        }
    }

    [NotUnderWineFact]
    public void Gemm_matches_the_naive_product_for_every_transpose()
    {
        (int M, int N, int K)[] shapes =
        [
            (1, 1, 1), (1, 1, 0), (7, 13, 5), (6, 16, 256),
            (97, 257, 300), // crosses the 96 / 256 / 256 tile edges
            (1, 384, 384), (200, 3, 9),
        ];
        foreach (var (m, n, k) in shapes)
        {
            foreach (bool ta in new[] { false, true })
            {
                foreach (bool tb in new[] { false, true })
                {
                    CheckGemm(m, n, k, ta, tb, accumulate: false, pad: 0, seed: m + n + k);
                    CheckGemm(m, n, k, ta, tb, accumulate: true, pad: 3, seed: (m * n) + k);
                }
            }
        }
    }

    [Fact]
    public void Gemm_random_shapes_and_strides_match_the_naive_product()
    {
        Gen.Select(Gen.Int[1, 40], Gen.Int[1, 40], Gen.Int[0, 70], Gen.Int[0, 5], Gen.Bool, Gen.Bool, Gen.Bool)
            .Sample((m, n, k, pad, ta, tb, acc) => CheckGemm(m, n, k, ta, tb, acc, pad, seed: (m * 7919) + (n * 31) + k), iter: 150);
    }

    [Fact]
    public void Gemm_results_do_not_depend_on_the_thread_count()
    {
        var rng = new Random(5);
        int m = 300, n = 520, k = 270;
        float[] a = Random(rng, m * k), b = Random(rng, n * k);
        float[] one = new float[m * n], many = new float[m * n];
        Gemm.Multiply(a, k, false, b, k, true, one, n, m, n, k, maxThreads: 1);
        Gemm.Multiply(a, k, false, b, k, true, many, n, m, n, k, maxThreads: 4);
        Assert.Equal(one, many); // bit-identical
    }

    [Fact]
    public void Gemm_rejects_short_spans_and_strides_without_touching_the_output()
    {
        float[] a = new float[6], b = new float[6], c = [1, 2, 3, 4];
        var e1 = Assert.Throws<ArgumentException>(() => Gemm.MatMul(a, b, c, 2, 2, 4));
        Assert.Equal("a", e1.ParamName);
        Assert.Contains("needs 8 elements", e1.Message, StringComparison.Ordinal);
        var e2 = Assert.Throws<ArgumentException>(() => Gemm.Multiply(a, 2, false, b, 2, false, c, 2, 2, 2, 3));
        Assert.Equal("lda", e2.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.MatMul(a, b, c, -1, 2, 3));
        Assert.Equal([1f, 2, 3, 4], c);
    }

    [Fact]
    public void Erf_and_gelu_match_known_values()
    {
        // erf reference values (Abramowitz & Stegun table 7.1).
        (double X, double Erf)[] table = [(0, 0), (0.5, 0.5204998778), (1, 0.8427007929), (2, 0.9953222650), (-1.5, -0.9661051465), (4, 0.9999999846)];
        foreach (var (x, e) in table)
        {
            Assert.True(Math.Abs(RowOps.Erf(x) - e) < 2e-7, $"erf({x}) = {RowOps.Erf(x)}, expected {e}");
        }

        float[] g = [-3f, -1f, 0f, 0.5f, 1f, 10f];
        RowOps.Gelu(g);
        float[] expected = [-0.0040496597f, -0.15865526f, 0f, 0.34573123f, 0.8413447f, 10f];
        for (int i = 0; i < g.Length; i++)
        {
            Assert.True(Math.Abs(g[i] - expected[i]) < 1e-6, $"gelu[{i}] = {g[i]}, expected {expected[i]}");
        }
    }

    [Fact]
    public void LayerNorm_softmax_and_mean_match_the_definitions()
    {
        Gen.Select(Gen.Int[1, 9], Gen.Int[1, 50]).Sample((rows, cols) =>
        {
            var rng = new Random((rows * 100) + cols);
            float[] x = Random(rng, rows * cols), gamma = Random(rng, cols), beta = Random(rng, cols);
            float[] ln = (float[])x.Clone(), sm = (float[])x.Clone();
            RowOps.LayerNorm(ln, gamma, beta, 1e-5f);
            RowOps.Softmax(sm, cols);
            var mean = new float[cols];
            RowOps.MeanRows(x, cols, mean);
            for (int r = 0; r < rows; r++)
            {
                var row = x.AsSpan(r * cols, cols).ToArray();
                double mu = row.Average(v => (double)v), var = row.Average(v => (v - mu) * (v - mu));
                double max = row.Max(), z = row.Sum(v => Math.Exp(v - max));
                for (int c = 0; c < cols; c++)
                {
                    double eLn = ((row[c] - mu) / Math.Sqrt(var + 1e-5) * gamma[c]) + beta[c];
                    Assert.True(Math.Abs(ln[(r * cols) + c] - eLn) < 1e-5, $"layernorm [{r},{c}]");
                    Assert.True(Math.Abs(sm[(r * cols) + c] - (Math.Exp(row[c] - max) / z)) < 1e-6, $"softmax [{r},{c}]");
                }
            }

            for (int c = 0; c < cols; c++)
            {
                double e = Enumerable.Range(0, rows).Average(r => (double)x[(r * cols) + c]);
                Assert.True(Math.Abs(mean[c] - e) < 1e-6, $"mean [{c}]");
            }
        }, iter: 40);
    }

    [Fact]
    public void Row_ops_reject_ragged_shapes()
    {
        float[] x = new float[10];
        Assert.Throws<ArgumentException>(() => RowOps.AddBias(x, new float[3]));
        Assert.Throws<ArgumentException>(() => RowOps.LayerNorm(x, new float[4], new float[3], 1e-5f));
        Assert.Throws<ArgumentOutOfRangeException>(() => RowOps.LayerNorm(x, new float[5], new float[5], float.NaN));
        Assert.Throws<ArgumentException>(() => RowOps.Softmax(x, 3));
        Assert.Throws<ArgumentException>(() => RowOps.MeanRows(x, 5, new float[4]));
        Assert.Equal(new float[10], x);
        float[] y = [1, 2, 3, 4];
        RowOps.AddBias(y, [10, 20]);
        Assert.Equal([11f, 22, 13, 24], y);
        Assert.Equal(1.0, RowOps.Cosine([1, 2, 3], [2, 4, 6]), 12);
    }
}

/// <summary>
/// A [Fact] skipped under wine: with wine 8 this test (and only this one) ends the test process with "Internal CLR
/// error (0x80131506)" in a DynamicResolver finalizer, also with AVX disabled and on one thread, while it passes on
/// Linux x64 and arm64 (qemu). Not yet understood; the other Gemm tests still run under wine.
/// </summary>
internal sealed class NotUnderWineFactAttribute : FactAttribute
{
    public NotUnderWineFactAttribute()
    {
        if (OperatingSystem.IsWindows() && System.Runtime.InteropServices.NativeLibrary.TryLoad("ntdll.dll", out nint ntdll)
            && System.Runtime.InteropServices.NativeLibrary.TryGetExport(ntdll, "wine_get_version", out _))
        {
            Skip = "crashes the CLR under wine (Internal CLR error in a finalizer; not reproducible on Linux x64/arm64) — see the attribute's remarks";
        }
    }
}
