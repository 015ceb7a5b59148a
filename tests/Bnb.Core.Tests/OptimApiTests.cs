using Bnb.Errors;
using Bnb.Memory;
using Bnb.Optim;
using Bnb.Runtime;
using Bnb.Tests.Golden;
using CsCheck;

namespace Bnb.Tests;

/// <summary>
/// The optimizer API: parameter views over arrays, Memory, native pointers and handles (never copied); groups and
/// per-parameter overrides (GlobalOptimManager); bitsandbytes' rejections; bad input (shapes, dtypes, NaN/Inf) with
/// the optimizer unchanged; percentile clipping; thread-count invariance.
/// </summary>
public sealed class OptimApiTests(OptimBackendsFixture backends) : IClassFixture<OptimBackendsFixture>
{
    private BnbContext Ctx => backends.Context(OptimBackendsFixture.AvailableBackends[^1]);

    [CpuBackendsTheory]
    [MemberData(nameof(OptimBackendsFixture.Backends), MemberType = typeof(OptimBackendsFixture))]
    public unsafe void Parameters_over_arrays_memory_pointers_and_handles_are_updated_in_place(string backend)
    {
        BnbContext ctx = backends.Context(backend);
        const int n = 5000;
        float[] a = OptimData.Normal(n, 0.1, 1), ga = OptimData.Normal(n, 0.01, 2);
        float[] b = (float[])a.Clone(), gb = (float[])ga.Clone(), c = (float[])a.Clone(), gc = (float[])ga.Clone(), d = (float[])a.Clone(), gd = (float[])ga.Clone();
        fixed (float* pc = c, pgc = gc)
        {
            using TensorHandle hd = TensorHandle.FromMemory<float>(d, 50, 100), hgd = TensorHandle.FromMemory<float>(gd, 50, 100);
            ParameterRef[] ps =
            [
                ParameterRef.Create<float>(a, ga, "array"),
                ParameterRef.Create(b.AsMemory(), gb.AsMemory(), "memory", 50, 100),
                ParameterRef.FromPointers((nint)pc, (nint)pgc, DType.F32, [n], "pointer"),
                ParameterRef.FromHandles(hd, hgd, "handle"),
            ];
            using var opt = new AdamW(ctx, ps, optimBits: 8);
            opt.Step();
            opt.Step();
        }

        float[] expected = OptimData.Normal(n, 0.1, 1);
        Assert.NotEqual(expected, a); // updated in the caller's memory, not in a copy
        Assert.Equal(a, b);
        Assert.Equal(a, c);
        Assert.Equal(a, d);
    }

    [CpuBackendsTheory]
    [MemberData(nameof(OptimBackendsFixture.Backends), MemberType = typeof(OptimBackendsFixture))]
    public void Half_and_bfloat16_parameters_match_the_f32_run_within_their_rounding(string backend)
    {
        BnbContext ctx = backends.Context(backend);
        const int n = 4096;
        foreach (DType dtype in new[] { DType.F16, DType.BF16 })
        {
            float[] start = Views.ToFloat(Views.FromFloat(OptimData.Normal(n, 0.1, 3), dtype), dtype);
            float[] g = Views.ToFloat(Views.FromFloat(OptimData.Normal(n, 0.01, 4), dtype), dtype);
            float[] f = (float[])start.Clone();
            byte[] p = Views.FromFloat(start, dtype), gd = Views.FromFloat(g, dtype);
            using var a = new Lion(ctx, [ParameterRef.Create<float>(f, (float[])g.Clone())], lr: 1e-3);
            using var b = new Lion(ctx, [OptimSuiteTests.Bytes(p, gd, dtype)], lr: 1e-3);
            a.Step();
            b.Step();
            float[] got = Views.ToFloat(p, dtype);
            float tolerance = dtype == DType.F16 ? 1e-3f : 4e-3f; // half an ulp at |p| ≲ 0.5
            for (int i = 0; i < n; i++)
            {
                Assert.True(Math.Abs(got[i] - f[i]) <= tolerance * Math.Max(Math.Abs(f[i]), 0.05f), $"{dtype} [{i}]: {got[i]} vs f32 {f[i]}");
            }
        }
    }

    [CpuBackendsTheory]
    [MemberData(nameof(OptimBackendsFixture.Backends), MemberType = typeof(OptimBackendsFixture))]
    public void Overrides_choose_state_width_per_parameter_like_GlobalOptimManager(string backend)
    {
        BnbContext ctx = backends.Context(backend);
        const int n = 1024 * 32;
        ParameterRef p1 = P(n, 1), p2 = P(n, 2), p3 = P(n, 3);

        // bitsandbytes' test_global_config: a 32-bit Adam with optim_bits = 8 for p3 only.
        using (var adam = new Adam(ctx, [p1, p2, p3]))
        {
            adam.Overrides.Override(p3, new OptimizerSettings { OptimBits = 8 });
            adam.Step();
            Assert.False(adam.GetState(p1)!.IsEightBit);
            Assert.True(adam.GetState(p3)!.IsEightBit);
            Assert.Equal(DType.U8, adam.GetState(p3)!.Describe("state2").DType);

            // optim_bits acts when state is created: reset p1's state to switch it to 8 bits.
            adam.Overrides.Override(p1, new OptimizerSettings { OptimBits = 8 });
            adam.Step();
            Assert.False(adam.GetState(p1)!.IsEightBit);
            Assert.True(adam.ResetState(p1));
            Assert.Null(adam.GetState(p1));
            adam.Step();
            Assert.True(adam.GetState(p1)!.IsEightBit);
            Assert.Equal(1, adam.GetState(p1)!.Step);
            Assert.Equal(3, adam.GetState(p2)!.Step);
        }

        // The other way round, through the process-wide overrides: an "embedding" stays 32-bit in an 8-bit optimizer.
        ParameterRef embedding = P(n, 4), other = P(n, 5);
        ParameterOverrides.Global.Override(embedding, new OptimizerSettings { OptimBits = 32, LearningRate = 5e-4 });
        try
        {
            using var opt = new AdamW(ctx, [embedding, other], optimBits: 8);
            opt.Step();
            Assert.False(opt.GetState(embedding)!.IsEightBit);
            Assert.True(opt.GetState(other)!.IsEightBit);
            Assert.Equal(5e-4, opt.GetSettings(embedding).LearningRate);
            Assert.Equal(1e-3, opt.GetSettings(other).LearningRate);
            Assert.Equal(4L * n * 2, opt.GetState(embedding)!.StateBytes);
            Assert.Equal((2L * n) + (2L * 4 * (n / 256)) + (2 * 1024), opt.GetState(other)!.StateBytes);
        }
        finally
        {
            Assert.True(ParameterOverrides.Global.Remove(embedding));
        }
    }

    [CpuBackendsTheory]
    [MemberData(nameof(OptimBackendsFixture.Backends), MemberType = typeof(OptimBackendsFixture))]
    public void Groups_and_overrides_set_hyper_parameters_per_parameter(string backend)
    {
        BnbContext ctx = backends.Context(backend);
        const int n = 3000;
        float[] g = OptimData.Normal(n, 0.01, 9);
        float[] v1 = OptimData.Normal(n, 0.1, 8), v0 = (float[])v1.Clone(), v2 = (float[])v1.Clone(), v3 = (float[])v1.Clone(), v4 = (float[])v1.Clone();
        var a = ParameterRef.Create<float>(v1, (float[])g.Clone());
        var b = ParameterRef.Create<float>(v2, (float[])g.Clone());
        var c = ParameterRef.Create<float>(v3, (float[])g.Clone());
        var d = ParameterRef.Create<float>(v4, (float[])g.Clone());
        using var opt = new Sgd(ctx, [a], lr: 0.01, momentum: 0.9);
        opt.AddParamGroup(new ParameterGroup([b, c], new OptimizerSettings { LearningRate = 0.02 }));
        opt.Overrides.Override(c, new OptimizerSettings { LearningRate = 0.03 });
        opt.Step();

        // One momentum step from zero state: p -= lr·g.
        using var reference = new Sgd(ctx, [d], lr: 0.03, momentum: 0.9);
        reference.Step();
        Assert.Equal(v4, v3);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(v0[i] - (0.01f * g[i]), v1[i], 1e-6f);
        }

        Assert.Equal(0.02, opt.ParamGroups[1].LearningRate);
        Assert.Equal(0.9, opt.ParamGroups[1].Settings.Beta1); // inherited from the defaults
        Assert.Throws<ArgumentException>(() => opt.AddParamGroup(new ParameterGroup([a])));
    }

    [CpuBackendsTheory]
    [MemberData(nameof(OptimBackendsFixture.Backends), MemberType = typeof(OptimBackendsFixture))]
    public void Lamb_max_unorm_reaches_the_update(string backend)
    {
        // bitsandbytes' test_lamb_max_unorm: the trust ratio bound changes the step (32-bit state).
        BnbContext ctx = backends.Context(backend);
        const int n = 5000;
        float[] g = OptimData.Normal(n, 0.01, 2);
        float[] a = OptimData.Normal(n, 0.1, 1), b = (float[])a.Clone(), c = (float[])a.Clone();
        using var bounded = new Lamb(ctx, [ParameterRef.Create<float>(a, g)], maxUnorm: 0.001);
        using var loose = new Lamb(ctx, [ParameterRef.Create<float>(b, g)], maxUnorm: 1.0);
        using var adam = new Adam(ctx, [ParameterRef.Create<float>(c, g)]);
        bounded.Step();
        loose.Step();
        adam.Step();
        Assert.Equal(0.001, bounded.GetSettings(bounded.Parameters.Single()).MaxUnorm);
        float[] start = OptimData.Normal(n, 0.1, 1);
        double moved(float[] x) => x.Zip(start).Sum(t => Math.Abs(t.First - t.Second));
        Assert.True(moved(a) < 0.1 * moved(b), $"max_unorm 0.001 moved {moved(a)}, 1.0 moved {moved(b)}");
        Assert.True(bounded.GetState(bounded.Parameters.Single())!.UpdateNorm > 0);
        // The first Adam direction has norm ≈ 3.2·√n against ‖p‖ ≈ 0.1·√n: even max_unorm = 1 scales the step down.
        Assert.True(moved(b) < 0.1 * moved(c), $"max_unorm 1.0 moved {moved(b)}, Adam {moved(c)}");
    }

    [CpuBackendsFact]
    public void Bitsandbytes_rejections_are_clear_errors()
    {
        BnbContext ctx = Ctx;
        ParameterRef[] ps = [P(10, 1)];
        Assert.Contains("amsgrad", Assert.Throws<NotSupportedException>(() => new Adam(ctx, ps, amsgrad: true)).Message, StringComparison.Ordinal);
        Assert.Contains("amsgrad", Assert.Throws<NotSupportedException>(() => new AdamW(ctx, ps, amsgrad: true, optimBits: 8)).Message, StringComparison.Ordinal);
        Assert.Contains("max_unorm = 1.0", Assert.Throws<ArgumentException>(() => new Lamb(ctx, ps, optimBits: 8, maxUnorm: 0.5)).Message, StringComparison.Ordinal);
        Assert.Contains("without momentum", Assert.Throws<NotSupportedException>(() => new Sgd(ctx, ps, 0.1, 0)).Message, StringComparison.Ordinal);
        Assert.Contains("without momentum", Assert.Throws<NotSupportedException>(() => new Lars(ctx, ps, 0.1, 0)).Message, StringComparison.Ordinal);
        Assert.Contains("centered", Assert.Throws<NotSupportedException>(() => new RmsProp(ctx, ps, centered: true)).Message, StringComparison.Ordinal);
        Assert.Contains("alpha = 0", Assert.Throws<ArgumentException>(() => new RmsProp(ctx, ps, alpha: 0)).Message, StringComparison.Ordinal);
        Assert.Contains("lr_decay", Assert.Throws<NotSupportedException>(() => new Adagrad(ctx, ps, lrDecay: 0.1)).Message, StringComparison.Ordinal);
        Assert.Contains("initial_accumulator_value", Assert.Throws<NotSupportedException>(() => new Adagrad(ctx, ps, initialAccumulatorValue: 0.1)).Message, StringComparison.Ordinal);
        Assert.Contains("optim_bits = 16", Assert.Throws<ArgumentException>(() => new Lion(ctx, ps, optimBits: 16)).Message, StringComparison.Ordinal);
        Assert.Contains("betas[0] = 1", Assert.Throws<ArgumentException>(() => new AdamW(ctx, ps, betas: (1.0, 0.999))).Message, StringComparison.Ordinal);
        Assert.Contains("lr = -1", Assert.Throws<ArgumentException>(() => new AdamW(ctx, ps, lr: -1)).Message, StringComparison.Ordinal);
        Assert.Contains("percentile_clipping = 101", Assert.Throws<ArgumentException>(() => new AdamW(ctx, ps, percentileClipping: 101)).Message, StringComparison.Ordinal);

        // A scheduler setting a bad value later is rejected and the old value stays.
        using var opt = new AdamW(ctx, ps);
        Assert.Throws<ArgumentException>(() => opt.ParamGroups[0].LearningRate = double.NaN);
        Assert.Equal(1e-3, opt.ParamGroups[0].LearningRate);
    }

    [Fact]
    public void Gradient_shape_and_dtype_mismatches_are_rejected_when_attached()
    {
        var p = ParameterRef.Create<float>(new float[12], default, "w", 3, 4);
        using (TensorHandle flat = TensorHandle.FromMemory<float>(new float[12]))
        {
            Assert.Contains("shape [12] but the parameter has shape [3, 4]", Assert.Throws<ArgumentException>(() => p.SetGradient(flat)).Message, StringComparison.Ordinal);
        }

        Assert.Contains("shape [3, 4] has 12 elements but the memory has 11", Assert.Throws<ArgumentException>(() => p.SetGradient<float>(new float[11])).Message, StringComparison.Ordinal);
        Assert.Contains("has dtype F16 but the parameter is F32", Assert.Throws<ArgumentException>(() => p.SetGradient<Half>(new Half[12])).Message, StringComparison.Ordinal);
        Assert.Contains("shape [3, 4] has 12 elements but the memory has 11", Assert.Throws<ArgumentException>(() => ParameterRef.Create<float>(new float[11], default, "w", 3, 4)).Message, StringComparison.Ordinal);
        Assert.Contains("optimizers take f32, f16 or bf16", Assert.Throws<ArgumentException>(() => ParameterRef.Create<int>(new int[4], new int[4], "ints")).Message, StringComparison.Ordinal);
        Assert.Contains("no gradient", Assert.Throws<InvalidOperationException>(() => _ = p.Gradient.ElementCount).Message, StringComparison.Ordinal);
        Assert.False(p.HasGradient);
    }

    [CpuBackendsTheory]
    [MemberData(nameof(OptimBackendsFixture.Backends), MemberType = typeof(OptimBackendsFixture))]
    public void A_non_finite_gradient_fails_the_whole_step_and_changes_nothing(string backend)
    {
        BnbContext ctx = backends.Context(backend);
        foreach (int bits in new[] { 32, 8 })
        {
            float[] v1 = OptimData.Normal(5000, 0.1, 1), v2 = OptimData.Normal(5000, 0.1, 2);
            float[] g1 = OptimData.Normal(5000, 0.01, 3), g2 = OptimData.Normal(5000, 0.01, 4);
            ParameterRef a = ParameterRef.Create<float>(v1, g1, "a"), b = ParameterRef.Create<float>(v2, g2, "b");
            using var opt = new AdamW(ctx, [a, b], optimBits: bits);
            opt.Step();
            float[] before1 = (float[])v1.Clone(), before2 = (float[])v2.Clone();
            byte[] state = opt.GetState(a)!.GetBytes("state1");
            foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
            {
                g2[4321] = bad; // the second parameter: the first must not be updated either
                var e = Assert.Throws<BnbInvalidArgumentException>(opt.Step);
                Assert.Equal(BnbStatus.NonFinite, e.Status);
                Assert.Contains("parameter 'b' is not finite at index 4321", e.Message, StringComparison.Ordinal);
                Assert.Equal(before1, v1);
                Assert.Equal(before2, v2);
                Assert.Equal(state, opt.GetState(a)!.GetBytes("state1"));
                Assert.Equal(1, opt.GetState(a)!.Step);
            }

            // A single parameter is checked by the backend itself, before it writes anything.
            using var single = new AdamW(ctx, [b], optimBits: bits);
            Assert.Equal(BnbStatus.NonFinite, Assert.Throws<BnbInvalidArgumentException>(single.Step).Status);
            Assert.Equal(before2, v2);
            Assert.Null(single.GetState(b) is { Step: > 0 } ? "stepped" : null);
        }
    }

    [CpuBackendsTheory]
    [MemberData(nameof(OptimBackendsFixture.Backends), MemberType = typeof(OptimBackendsFixture))]
    public void Under_the_propagate_policy_non_finite_gradients_flow_as_in_bitsandbytes(string backend)
    {
        BnbContext ctx = backends.Context(backend, NonFinitePolicy.Propagate);
        float[] v = OptimData.Normal(100, 0.1, 1), g = OptimData.Normal(100, 0.01, 2);
        g[7] = float.NaN;
        using var opt = new AdamW(ctx, [ParameterRef.Create<float>(v, g)]);
        opt.Step();
        Assert.True(float.IsNaN(v[7]));
        Assert.True(float.IsFinite(v[8]));
    }

    [CpuBackendsTheory]
    [MemberData(nameof(OptimBackendsFixture.Backends), MemberType = typeof(OptimBackendsFixture))]
    public void Percentile_clipping_equals_clipping_the_gradient_by_hand(string backend)
    {
        // bitsandbytes' test_adam_percentile_clipping (32-bit): Adam(percentile_clipping = 5) == Adam on g · gnorm_scale.
        BnbContext ctx = backends.Context(backend);
        const int n = 1024 * 32;
        float[] p1 = OptimData.Normal(n, 0.1, 1), p2 = (float[])p1.Clone(), g1 = new float[n], g2 = new float[n];
        float[] history = new float[100];
        using var plain = new Adam(ctx, [ParameterRef.Create<float>(p1, g1)]);
        using var clipped = new Adam(ctx, [ParameterRef.Create<float>(p2, g2)], percentileClipping: 5);
        var kernels = new OptimizerKernels(ctx);
        for (int step = 1; step <= 20; step++)
        {
            float[] g = OptimData.Normal(n, 0.1, step);
            for (int i = 0; i < n; i++)
            {
                g[i] += 0.01f * step;
            }

            g.CopyTo(g2, 0);
            var (_, scale) = kernels.PercentileClipping(TensorRef.FromSpan<float>(g), TensorRef.FromSpan<float>(history), step, 5);
            for (int i = 0; i < n; i++)
            {
                g1[i] = g[i] * scale;
            }

            plain.Step();
            clipped.Step();
            Compare.Close(Compare.ToDouble(p1), Compare.ToDouble(p2), 1e-6, 1e-5, $"step {step}");
        }

        Assert.Equal(history, clipped.GetState(clipped.Parameters.Single())!.GetTensor<float>("gnorm_vec"));
    }

    [CpuBackendsTheory]
    [MemberData(nameof(OptimBackendsFixture.Backends), MemberType = typeof(OptimBackendsFixture))]
    public void Results_are_identical_for_every_thread_count(string backend)
    {
        const int n = 300_001;
        float[] g = OptimData.Normal(n, 0.01, 5);
        byte[]? first = null;
        foreach (int threads in new[] { 1, 2, 3 })
        {
            float[] v = OptimData.Normal(n, 0.1, 6);
            using var opt = new AdEMAMix(backends.Context(backend, threads: threads), [ParameterRef.Create<float>(v, g)], optimBits: 8);
            opt.Step();
            opt.Step();
            byte[] result = [.. System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan()), .. opt.GetState(opt.Parameters.Single())!.GetBytes("state1")];
            if (first is null)
            {
                first = result;
            }
            else
            {
                Assert.Equal(first, result);
            }
        }
    }

    [CpuBackendsFact]
    public void Resuming_from_a_state_file_is_bit_identical_for_random_runs()
    {
        BnbContext ctx = Ctx;
        string dir = Directory.CreateTempSubdirectory("bnb-optim-prop-").FullName;
        try
        {
            Gen.Select(Gen.Int[1, 9000], Gen.Int[0, 8], Gen.OneOfConst(8, 32), Gen.Int[1, 3]).Sample((n, kind, bits, before) =>
            {
                float[] g = OptimData.Normal(n, 0.01, n);
                float[] a = OptimData.Normal(n, 0.1, kind), b;
                using Optimizer first = Make(ctx, kind, bits, ParameterRef.Create<float>(a, g));
                for (int s = 0; s < before; s++)
                {
                    first.Step();
                }

                string path = Path.Combine(dir, $"{Guid.NewGuid():N}.safetensors");
                first.SaveState(path);
                b = (float[])a.Clone();
                using Optimizer second = Make(ctx, kind, bits, ParameterRef.Create<float>(b, g));
                second.LoadState(path);
                first.Step();
                second.Step();
                return a.AsSpan().SequenceEqual(b) && first.GetState(first.Parameters.Single())!.GetBytes("state1").AsSpan().SequenceEqual(second.GetState(second.Parameters.Single())!.GetBytes("state1"));
            }, iter: 40, threads: 1); // one context: used from one thread at a time
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static Optimizer Make(BnbContext ctx, int kind, int bits, ParameterRef p) => kind switch
    {
        0 => new Adam(ctx, [p], optimBits: bits),
        1 => new AdamW(ctx, [p], optimBits: bits),
        2 => new Lion(ctx, [p], optimBits: bits),
        3 => new Sgd(ctx, [p], 0.01, 0.9, optimBits: bits),
        4 => new RmsProp(ctx, [p], optimBits: bits),
        5 => new Adagrad(ctx, [p], optimBits: bits),
        6 => new Lamb(ctx, [p], optimBits: bits),
        7 => new Lars(ctx, [p], 0.01, 0.9, optimBits: bits),
        _ => new AdEMAMix(ctx, [p], optimBits: bits, tAlpha: 2, tBeta3: 2),
    };

    private static ParameterRef P(int n, int seed) => ParameterRef.Create<float>(OptimData.Normal(n, 0.1, seed), OptimData.Normal(n, 0.01, seed + 100), $"p{seed}");
}
