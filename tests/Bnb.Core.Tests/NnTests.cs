using Bnb.Memory;
using Bnb.Nn;
using Bnb.Quantization;
using Bnb.Serialization;
using CsCheck;

namespace Bnb.Tests;

/// <summary>Quantized modules against fp32 references with the bitsandbytes test tolerances (spec §6.4–§6.7).</summary>
public sealed class NnTests(CpuRefFixture fixture) : IClassFixture<CpuRefFixture>
{
    private Quantizer Q => fixture.Quantizer;

    private static float[] Randn(Random rng, int n, double scale = 1)
    {
        var r = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            r[i] = (float)(scale * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }

        return r;
    }

    private static float[] Uniform(Random rng, int n, double bound) => [.. Enumerable.Range(0, n).Select(_ => (float)(((rng.NextDouble() * 2) - 1) * bound))];

    /// <summary>y[m, n] = x[m, k] · w[n, k]ᵀ (+ b) in double.</summary>
    private static double[] Linear(float[] x, float[] w, float[]? b, int m, int n, int k)
    {
        var y = new double[m * n];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = b?[j] ?? 0;
                for (int t = 0; t < k; t++)
                {
                    s += (double)x[(i * k) + t] * w[(j * k) + t];
                }

                y[(i * n) + j] = s;
            }
        }

        return y;
    }

    /// <summary>g[m, n] · w[n, k] in double.</summary>
    private static double[] GradInput(float[] g, float[] w, int m, int n, int k)
    {
        var r = new double[m * k];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double gv = g[(i * n) + j];
                for (int t = 0; t < k; t++)
                {
                    r[(i * k) + t] += gv * w[(j * k) + t];
                }
            }
        }

        return r;
    }

    private static double FractionOutside(ReadOnlySpan<float> actual, double[] expected, double atol, double rtol)
    {
        int bad = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            if (!(Math.Abs(actual[i] - expected[i]) <= atol + (rtol * Math.Abs(expected[i]))))
            {
                bad++;
            }
        }

        return (double)bad / Math.Max(actual.Length, 1);
    }

    private static double MeanAbs(double[] v) => v.Average(Math.Abs);

    private static double MeanAbsError(ReadOnlySpan<float> a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++)
        {
            s += Math.Abs(a[i] - b[i]);
        }

        return s / a.Length;
    }

    private static float[] ToFloats<T>(T[] values)
        where T : unmanaged => [.. values.Select(v => v switch { Half h => (float)h, BFloat16 b => (float)b, float f => f, _ => throw new NotSupportedException() })];

    private static T[] FromFloats<T>(float[] values)
        where T : unmanaged => [.. values.Select(v => typeof(T) == typeof(Half) ? (T)(object)(Half)v : typeof(T) == typeof(BFloat16) ? (T)(object)(BFloat16)v : (T)(object)v)];

    // ── Linear8bitLt ────────────────────────────────────────────────────────────────────────────────────────

    [BackendFact("cpu_ref")]
    public void Linear8bitLt_matches_the_fp16_layer_like_test_linear_no_igemmlt()
    {
        // spec §6.5: Linear 1024→3072, x fp16 [3, 1024], threshold 6, int8 weights.
        const int k = 1024, n = 3072, m = 3;
        var rng = new Random(11);
        float[] w = [.. Uniform(rng, n * k, 1.0 / 32).Select(v => (float)(Half)v)];
        float[] bias = [.. Uniform(rng, n, 1.0 / 32).Select(v => (float)(Half)v)];
        float[] x = [.. Randn(rng, m * k).Select(v => (float)(Half)v)];
        x[5] = 8f;          // two outlier columns (|x| ≥ 6) take the 16-bit path
        x[k + 700] = -7.5f;
        var layer = Linear8bitLt.Quantize<float>(Q, w, n, k, bias, threshold: 6f);

        Half[] y = new Half[m * n];
        layer.Forward<Half>(FromFloats<Half>(x), m, y);
        Assert.Equal(2, layer.LastOutlierCount);
        float[] yf = ToFloats(y);
        double[] reference = [.. Linear(x, w, bias, m, n, k).Select(v => (double)(float)(Half)v)];
        Assert.True(FractionOutside(yf, reference, 0.02, 1e-5) <= 2.5e-4, $"fraction outside atol 0.02: {FractionOutside(yf, reference, 0.02, 1e-5)}");
        Assert.True(FractionOutside(yf, reference, 0.03, 1e-3) == 0, "assert_close(atol=0.03)");

        // Input gradient through the dequantized int8 weight (spec §6.6 tolerances).
        float[] g = Randn(rng, m * n);
        var dx = new float[m * k];
        layer.BackwardInput(g, m, dx);
        double[] dref = GradInput(g, w, m, n, k);
        double scale = MeanAbs(dref);
        Assert.True(FractionOutside(dx, dref, 0.05 * scale, 0) == 0, "input grad within 0.05·mean|ref|");
        Assert.True(FractionOutside(dx, dref, 0.01 * scale, 0.1) <= 0.005, $"input grad: {FractionOutside(dx, dref, 0.01 * scale, 0.1)} outside atol 0.01·scale, rtol 0.1");
    }

    [BackendTheory("cpu_ref")]
    [InlineData(0f, DType.F32)]
    [InlineData(6f, DType.F32)]
    [InlineData(0f, DType.F16)]
    [InlineData(6f, DType.F16)]
    [InlineData(6f, DType.BF16)]
    public void Linear8bitLt_matches_fp32_matmul_like_test_matmullt(float threshold, DType dtype)
    {
        // spec §6.7 test_matmullt: A [64, 32] randn (K/8 columns set to 6.0 when threshold is 6), B [48, 32] xavier-uniform.
        const int m = 64, k = 32, n = 48;
        var rng = new Random(5 + (int)dtype);
        float[] a = Randn(rng, m * k), w = Uniform(rng, n * k, Math.Sqrt(6.0 / (n + k)));
        int[] outlierColumns = threshold > 0 ? [3, 10, 11, 30] : [];
        for (int r = 0; r < m; r++)
        {
            foreach (int c in outlierColumns)
            {
                a[(r * k) + c] = 6f;
            }
        }

        var layer = Linear8bitLt.Quantize<float>(Q, w, n, k, threshold: threshold);
        float[] y = dtype switch
        {
            DType.F16 => RunTyped<Half>(layer, a, m),
            DType.BF16 => RunTyped<BFloat16>(layer, a, m),
            _ => layer.Forward(a, m),
        };
        Assert.Equal(outlierColumns.Length, layer.LastOutlierCount);
        double[] reference = Linear(a, w, null, m, n, k);
        double limit = dtype == DType.F16 ? 0.0175 : 0.021;
        Assert.True(FractionOutside(y, reference, 0.01, 0.1) <= limit, $"{FractionOutside(y, reference, 0.01, 0.1)} outside atol 0.01 rtol 0.1");
        Assert.True(FractionOutside(y, reference, 0.035, 0.2) <= 0.001, $"{FractionOutside(y, reference, 0.035, 0.2)} outside atol 0.035 rtol 0.2");

        float[] g = Randn(rng, m * n);
        var dx = new float[m * k];
        layer.BackwardInput(g, m, dx);
        Assert.True(FractionOutside(dx, GradInput(g, w, m, n, k), 0.015, 0.1) == 0, "grad_A atol 0.015 rtol 0.1");
    }

    private static float[] RunTyped<T>(IQuantizedLinear layer, float[] x, int rows)
        where T : unmanaged
    {
        var y = new T[rows * layer.OutFeatures];
        layer.Forward<T>(FromFloats<T>(x), rows, y);
        return ToFloats(y);
    }

    [BackendFact("cpu_ref")]
    public void Linear8bitLt_threshold_zero_is_pure_int8_and_outliers_cost_accuracy()
    {
        const int m = 8, k = 96, n = 32;
        var rng = new Random(2);
        float[] a = Randn(rng, m * k), w = Randn(rng, n * k, 0.1);
        for (int r = 0; r < m; r++)
        {
            a[(r * k) + 7] = 20f * (r % 2 == 0 ? 1 : -1);
        }

        double[] reference = Linear(a, w, null, m, n, k);
        float[] mixed = Linear8bitLt.Quantize<float>(Q, w, n, k, threshold: 6f).Forward(a, m);
        float[] pure = Linear8bitLt.Quantize<float>(Q, w, n, k, threshold: 0f).Forward(a, m);
        double errMixed = MeanAbsError(mixed, reference), errPure = MeanAbsError(pure, reference);

        // With a 20σ outlier column in every row, int8 rows lose most of their resolution; the 16-bit path keeps it.
        Assert.True(errMixed * 3 < errPure, $"mixed {errMixed} vs pure int8 {errPure}");
    }

    // ── Linear4bit ──────────────────────────────────────────────────────────────────────────────────────────

    [BackendTheory("cpu_ref")]
    [InlineData(QuantType.Nf4, false, DType.F32, 3)]
    [InlineData(QuantType.Nf4, true, DType.F32, 64)]
    [InlineData(QuantType.Fp4, false, DType.F32, 64)]
    [InlineData(QuantType.Fp4, true, DType.F16, 3)]
    [InlineData(QuantType.Nf4, true, DType.BF16, 64)]
    [InlineData(QuantType.Fp4, false, DType.BF16, 5)]
    public void Linear4bit_matches_the_fp32_layer_like_test_matmul_4bit(QuantType qt, bool doubleQuant, DType compute, int m)
    {
        // spec §6.7 test_matmul_4bit: A [64, 64] randn, B [96, 64] xavier-uniform, bias randn.
        const int k = 64, n = 96;
        var rng = new Random(17 + m);
        float[] w = Uniform(rng, n * k, Math.Sqrt(6.0 / (n + k))), bias = Randn(rng, n), x = Randn(rng, m * k);
        var layer = Linear4bit.Quantize<float>(Q, w, n, k, bias, qt, 64, doubleQuant, compute);
        float[] y = layer.Forward(x, m);

        // Against the original weights: bitsandbytes' mean-abs-error bound (spec §6.7).
        double[] original = Linear(x, w, bias, m, n, k);
        Assert.True(MeanAbsError(y, original) < 0.115, $"mean abs err {MeanAbsError(y, original)}");

        // Against x · dequant(W)ᵀ: only rounding of the compute dtype remains.
        double[] exact = Linear(x, layer.DequantizeWeight(), bias, m, n, k);
        double tol = compute switch { DType.F32 => 1e-5, DType.F16 => 2e-3, _ => 1.6e-2 } * MeanAbs(exact);
        Assert.True(FractionOutside(y, exact, tol, compute == DType.F32 ? 1e-5 : 8e-3) == 0, $"vs dequantized reference (tol {tol})");

        // Input gradient: exactly g · dequant(W); vs the original W within test_matmul_4bit's grad tolerance.
        // The mse_loss gradient of the bitsandbytes test: 2·(y − target)/numel.
        float[] target = Randn(rng, m * n);
        float[] g = [.. y.Select((v, i) => 2 * (v - target[i]) / (m * n))];
        var dx = new float[m * k];
        layer.BackwardInput(g, m, dx);
        Assert.True(FractionOutside(dx, GradInput(g, layer.DequantizeWeight(), m, n, k), 1e-7, 1e-4) == 0, "grad vs g · dequant(W)");
        Assert.True(FractionOutside(dx, GradInput(g, w, m, n, k), 0.015, 0.1) == 0, "grad_A atol 0.015 rtol 0.1");
    }

    [SimdBackendFact("cpu_avx2")]
    public void Modules_run_on_the_avx2_backend_like_on_the_reference_backend() => ModulesAgreeWithReference("cpu_avx2");

    [SimdBackendFact("cpu_avx512")]
    public void Modules_run_on_the_avx512_backend_like_on_the_reference_backend() => ModulesAgreeWithReference("cpu_avx512");

    private void ModulesAgreeWithReference(string backend)
    {
        using var runtime = TestEnvironment.CreateRuntime(false, backend);
        using var context = runtime.Backends.Single(x => x.Name == backend).CreateContext();
        var q = new Quantizer(context);
        const int k = 256, n = 128;
        var rng = new Random(12);
        float[] w = Uniform(rng, n * k, 0.1), bias = Randn(rng, n);
        foreach (int m in new[] { 1, 7, 40 })
        {
            float[] x = Randn(rng, m * k);
            var packedPath = Linear4bit.Quantize<float>(q, w, n, k, bias, QuantType.Nf4, 64, doubleQuant: true);
            var standard = new Linear4bit(q, packedPath.PackedWeight.ToArray(), packedPath.State, bias, useBackendLayout: false);
            Assert.False(standard.UsesBackendLayout);
            double[] exact = Linear(x, Linear4bit.Quantize<float>(Q, w, n, k, bias, QuantType.Nf4, 64, doubleQuant: true).DequantizeWeight(), bias, m, n, k);
            double tol = 1e-4 * MeanAbs(exact);
            Assert.True(FractionOutside(packedPath.Forward(x, m), exact, tol, 1e-4) == 0, $"{backend} backend layout={packedPath.UsesBackendLayout} m={m}");
            Assert.True(FractionOutside(standard.Forward(x, m), exact, tol, 1e-4) == 0, $"{backend} standard layout m={m}");

            float[] int8 = Linear8bitLt.Quantize<float>(q, w, n, k, bias).Forward(x, m);
            float[] int8Ref = Linear8bitLt.Quantize<float>(Q, w, n, k, bias).Forward(x, m);
            Assert.True(FractionOutside(int8, [.. int8Ref.Select(v => (double)v)], 1e-5, 1e-5) == 0, $"{backend} int8 m={m}");
        }
    }

    [BackendFact("cpu_ref")]
    public void Linear4bit_identity_weight_reproduces_the_input_exactly()
    {
        // spec §6.1 test_gemv_eye_4bit: an identity weight (dims multiple of 64) gives A back exactly.
        const int d = 128;
        var eye = new float[d * d];
        for (int i = 0; i < d; i++)
        {
            eye[(i * d) + i] = 1f;
        }

        var rng = new Random(1);
        foreach (int m in new[] { 1, 5, 33 })
        {
            float[] x = Randn(rng, m * d);
            foreach (QuantType qt in new[] { QuantType.Nf4, QuantType.Fp4 })
            {
                Assert.Equal(x, Linear4bit.Quantize<float>(Q, eye, d, d, quantType: qt).Forward(x, m));
            }
        }
    }

    [BackendTheory("cpu_ref")]
    [InlineData(false)]
    [InlineData(true)]
    public void Linear4bit_checkpoint_round_trip_is_bitwise_and_small(bool doubleQuant)
    {
        // spec §6.4: 300→400 layer, reloaded outputs bitwise equal, file < 0.143 of fp32.
        const int k = 300, n = 400, m = 7;
        var rng = new Random(4);
        float[] w = Uniform(rng, n * k, 1 / Math.Sqrt(k)), x = Randn(rng, m * k);
        var layer = Linear4bit.Quantize<float>(Q, w, n, k, null, QuantType.Nf4, 64, doubleQuant);
        InTempDirectory(dir =>
        {
            string path = Path.Combine(dir, "l.safetensors"), dense = Path.Combine(dir, "dense.safetensors");
            SafetensorsWriter.Save(path, layer.ToCheckpointEntries("fc"), alignTensors: true);
            SafetensorsWriter.Save(dense, [SafetensorsEntry.Of<float>("fc.weight", w, n, k)]);
            using var file = SafetensorsFile.Open(path);
            var back = Linear4bit.FromCheckpoint(Q, file, "fc");
            Assert.Equal(layer.Forward(x, m), back.Forward(x, m));
            Assert.Equal(layer.PackedWeight.ToArray(), back.PackedWeight.ToArray());
            double ratio = (double)new FileInfo(path).Length / new FileInfo(dense).Length;
            Assert.True(ratio < 0.143, $"size ratio {ratio}");
        });
    }

    [BackendFact("cpu_ref")]
    public void Linear8bitLt_checkpoint_round_trip_is_bitwise_and_small()
    {
        const int k = 256, n = 128, m = 5;
        var rng = new Random(9);
        float[] w = Randn(rng, n * k), bias = Randn(rng, n), x = Randn(rng, m * k);
        var layer = Linear8bitLt.Quantize<float>(Q, w, n, k, bias);
        InTempDirectory(dir =>
        {
            string path = Path.Combine(dir, "l.safetensors"), dense = Path.Combine(dir, "dense.safetensors");
            SafetensorsWriter.Save(path, layer.ToCheckpointEntries("fc", SafetensorsDType.F16), alignTensors: true);
            SafetensorsWriter.Save(dense, [SafetensorsEntry.Of<Half>("fc.weight", FromFloats<Half>(w), n, k), SafetensorsEntry.Of<Half>("fc.bias", FromFloats<Half>(bias))]);
            using var file = SafetensorsFile.Open(path);
            var back = Linear8bitLt.FromCheckpoint(Q, file, "fc");
            Assert.Equal(layer.Weight.CB, back.Weight.CB);
            Assert.Equal([.. bias.Select(v => (float)(Half)v)], back.Bias!);
            var rounded = new Linear8bitLt(Q, layer.Weight, back.Bias);
            Assert.Equal(rounded.Forward(x, m), back.Forward(x, m));

            // int8 weights + one float32 scale per row: about half the fp16 file (the scales cost 4 bytes per row).
            double ratio = (double)new FileInfo(path).Length / new FileInfo(dense).Length;
            Assert.True(ratio < 0.52, $"size ratio {ratio}");
        });
    }

    private static void InTempDirectory(Action<string> body)
    {
        string dir = Directory.CreateTempSubdirectory("bnb-nn-").FullName;
        try
        {
            body(dir);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [BackendFact("cpu_ref")]
    public void Linear4bit_shapes_agree_with_the_dequantized_reference_for_any_size()
    {
        Gen.Select(Gen.Int[0, 20], Gen.Int[1, 40], Gen.Int[1, 24], Gen.OneOfConst(32, 64, 128), Gen.Bool).Sample((m, n, k, bs, dq) =>
        {
            var rng = new Random((m * 1000) + (n * 10) + k);
            float[] w = Randn(rng, n * k), x = Randn(rng, m * k);
            var layer = Linear4bit.Quantize<float>(Q, w, n, k, blocksize: bs, doubleQuant: dq);
            float[] y = layer.Forward(x, m);
            Assert.Equal(m * n, y.Length);
            double[] exact = Linear(x, layer.DequantizeWeight(), null, m, n, k);
            Assert.True(FractionOutside(y, exact, 1e-4, 1e-4) == 0);
        }, iter: 40);
    }

    [BackendFact("cpu_ref")]
    public void Bad_inputs_are_rejected_with_the_argument_named()
    {
        var rng = new Random(3);
        float[] w = Randn(rng, 8 * 16);
        var l4 = Linear4bit.Quantize<float>(Q, w, 8, 16);
        var l8 = Linear8bitLt.Quantize<float>(Q, w, 8, 16);
        foreach (IQuantizedLinear layer in new IQuantizedLinear[] { l4, l8 })
        {
            Assert.Contains("input", Assert.Throws<ArgumentException>(() => layer.Forward(new float[15], 1)).Message, StringComparison.Ordinal);
            Assert.Throws<ArgumentException>(() => layer.Forward<float>(new float[16], 1, new float[7]));
            Assert.Throws<ArgumentException>(() => layer.Forward<int>(new int[16], 1, new int[8]));
            var x = new float[32];
            var yHalf = new Half[16];
            var e = Assert.Throws<ArgumentException>(() => layer.Forward(TensorRef.FromSpan<float>(x, 2, 16), TensorRef.FromSpan<Half>(yHalf, 2, 8)));
            Assert.Contains("F16", e.Message, StringComparison.Ordinal);
            Assert.Contains("last dimension must be 16", Assert.Throws<ArgumentException>(() => layer.Forward(TensorRef.FromSpan<float>(x, 4, 8), TensorRef.FromSpan<float>(new float[32], 4, 8))).Message, StringComparison.Ordinal);
            Assert.Throws<ArgumentException>(() => layer.Forward(TensorRef.FromSpan<int>(new int[32], 2, 16), TensorRef.FromSpan<int>(new int[16], 2, 8)));
            Assert.Throws<ArgumentException>(() => layer.Forward(TensorRef.FromReadOnlySpan<float>(x, 2, 16), TensorRef.FromReadOnlySpan<float>(new float[16], 2, 8)));

            // A tensor forward equals the span forward.
            float[] xs = Randn(rng, 32);
            var yt = new float[16];
            layer.Forward(TensorRef.FromReadOnlySpan<float>(xs, 2, 16), TensorRef.FromSpan<float>(yt, 2, 8));
            Assert.Equal(layer.Forward(xs, 2), yt);
        }

        Assert.Throws<ArgumentException>(() => Linear4bit.Quantize<float>(Q, w, 8, 15));
        Assert.Throws<ArgumentException>(() => new Linear4bit(Q, new byte[3], l4.State));
        Assert.Throws<ArgumentException>(() => new Linear4bit(Q, l4.PackedWeight.ToArray(), l4.State, bias: new float[3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Linear8bitLt(Q, l8.Weight, threshold: float.NaN));
        Assert.Throws<ArgumentException>(() => new Linear4bit(Q, l4.PackedWeight.ToArray(), l4.State, computeDType: DType.I32));
    }

    // ── Embeddings ──────────────────────────────────────────────────────────────────────────────────────────

    [BackendTheory("cpu_ref")]
    [InlineData(64)]
    [InlineData(65)]
    public void Embeddings_reproduce_plus_minus_one_tables_exactly(int dim)
    {
        const int num = 50;
        var rng = new Random(dim);
        float[] table = [.. Enumerable.Range(0, num * dim).Select(_ => rng.Next(2) == 0 ? -1f : 1f)];
        int[] idx = [0, 49, 7, 7, 23];
        float[] expected = [.. idx.SelectMany(i => table.Skip(i * dim).Take(dim))];
        Assert.Equal(expected, Embedding8bit.Quantize<float>(Q, table, num, dim).Forward(idx));
        foreach (QuantType qt in new[] { QuantType.Fp4, QuantType.Nf4 })
        {
            var e4 = Embedding4bit.Quantize<float>(Q, table, num, dim, qt);
            Assert.Equal(dim % 64 == 0, e4.RowwiseLookup);
            Assert.Equal(expected, e4.Forward(idx));
        }
    }

    [BackendFact("cpu_ref")]
    public void Embeddings_of_random_tables_are_within_bitsandbytes_tolerance()
    {
        const int num = 100, dim = 128;
        var rng = new Random(8);
        float[] table = Uniform(rng, num * dim, 1);
        int[] idx = [.. Enumerable.Range(0, 30).Select(_ => rng.Next(num))];
        double[] expected = [.. idx.SelectMany(i => table.Skip(i * dim).Take(dim)).Select(v => (double)v)];
        Assert.True(FractionOutside(Embedding8bit.Quantize<float>(Q, table, num, dim).Forward(idx), expected, 0.05, 0) == 0);
        var e4 = Embedding4bit.Quantize<float>(Q, table, num, dim, QuantType.Nf4);
        Assert.True(FractionOutside(e4.Forward(idx), expected, 0.20, 0) == 0);

        var half = new Half[idx.Length * dim];
        e4.Forward<Half>(idx, half);
        Assert.Equal([.. e4.Forward(idx).Select(v => (Half)v)], half);
        Assert.Throws<ArgumentOutOfRangeException>(() => e4.Forward([num]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Embedding8bit.Quantize<float>(Q, table, num, dim).Forward([-1]));
        Assert.Throws<ArgumentException>(() => e4.Forward<float>([1, 2], new float[dim]));
    }

    // ── LoRA ────────────────────────────────────────────────────────────────────────────────────────────────

    [BackendTheory("cpu_ref")]
    [InlineData(false)]
    [InlineData(true)]
    public void Lora_gradients_match_the_fp32_reference(bool eightBit)
    {
        const int m = 6, k = 48, n = 40, r = 4;
        var rng = new Random(21);
        float[] w = Uniform(rng, n * k, 1 / Math.Sqrt(k)), bias = Uniform(rng, n, 0.1), x = Randn(rng, m * k);
        IQuantizedLinear baseLayer = eightBit
            ? Linear8bitLt.Quantize<float>(Q, w, n, k, bias, threshold: 0f)
            : Linear4bit.Quantize<float>(Q, w, n, k, bias, QuantType.Nf4, 64, doubleQuant: true);
        var lora = new LoraLinear(baseLayer, r, alpha: 8, seed: 1);
        Assert.Equal(baseLayer.Forward(x, m), lora.Forward(x, m)); // B = 0: the adapter starts as a no-op
        Randn(rng, n * r, 0.3).CopyTo(lora.B, 0);

        float[] y = lora.Forward(x, m);
        float[] wd = baseLayer.DequantizeWeight();
        double s = lora.Scale;

        // Reference in double: y = x·Wdᵀ + b + s·(x·Aᵀ)·Bᵀ.
        double[] h = Linear(x, lora.A, null, m, r, k);
        double[] yRef = Linear(x, wd, bias, m, n, k);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                for (int t = 0; t < r; t++)
                {
                    yRef[(i * n) + j] += s * h[(i * r) + t] * lora.B[(j * r) + t];
                }
            }
        }

        double scale = MeanAbs(yRef);
        Assert.True(FractionOutside(y, yRef, (eightBit ? 0.02 : 1e-5) * scale, eightBit ? 0.02 : 1e-5) == 0, "forward");

        float[] g = Randn(rng, m * n);
        var dx = new float[m * k];
        lora.Backward(g, dx);
        var dB = new double[n * r];
        var dh = new double[m * r];
        var dA = new double[r * k];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                for (int t = 0; t < r; t++)
                {
                    dB[(j * r) + t] += s * g[(i * n) + j] * h[(i * r) + t];
                    dh[(i * r) + t] += s * g[(i * n) + j] * lora.B[(j * r) + t];
                }
            }
        }

        double[] dxRef = GradInput(g, wd, m, n, k);
        for (int i = 0; i < m; i++)
        {
            for (int t = 0; t < r; t++)
            {
                for (int c = 0; c < k; c++)
                {
                    dA[(t * k) + c] += dh[(i * r) + t] * x[(i * k) + c];
                    dxRef[(i * k) + c] += dh[(i * r) + t] * lora.A[(t * k) + c];
                }
            }
        }

        Assert.True(FractionOutside(lora.GradB, dB, 1e-5 * MeanAbs(dB), 1e-4) == 0, "dB");
        Assert.True(FractionOutside(lora.GradA, dA, 1e-5 * MeanAbs(dA), 1e-4) == 0, "dA");
        Assert.True(FractionOutside(dx, dxRef, 1e-5 * MeanAbs(dxRef), 1e-4) == 0, "dx");

        // Gradients accumulate over backward calls until ZeroGrad; a second backward needs a new forward.
        Assert.Throws<InvalidOperationException>(() => lora.Backward(g, dx));
        float[] gradA = (float[])lora.GradA.Clone();
        lora.Forward(x, m);
        lora.Backward(g, []);
        Assert.Equal(gradA.Select(v => 2 * v), lora.GradA, (a, b) => Math.Abs(a - b) <= 1e-6 * (1 + Math.Abs(a)));
        lora.ZeroGrad();
        Assert.All(lora.GradA, v => Assert.Equal(0f, v));
    }
}

/// <summary>A [Fact] skipped, with the reason, when a SIMD backend is not built or this CPU lacks its instruction set.</summary>
internal sealed class SimdBackendFactAttribute : FactAttribute
{
    public SimdBackendFactAttribute(string backend)
    {
        bool cpu = backend switch
        {
            "cpu_avx2" => System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported,
            "cpu_avx512" => System.Runtime.Intrinsics.X86.Avx512BW.IsSupported && System.Runtime.Intrinsics.X86.Avx512F.VL.IsSupported,
            _ => false,
        };
        if (!TestEnvironment.HasBackend(backend))
        {
            Skip = $"backend '{backend}' is not built ({TestEnvironment.LibraryPath(backend)} missing)";
        }
        else if (!cpu)
        {
            Skip = $"this CPU lacks the instruction set of backend '{backend}'";
        }
    }
}
