using Bnb.Optim;
using Bnb.Runtime;
using Bnb.Tests.Golden;

namespace Bnb.Tests;

/// <summary>
/// The golden optimizer trajectories (tests/golden/optim, bitsandbytes' CPU backend, 5 steps on 4099 parameters)
/// through the optimizer classes on every available CPU backend. Each step starts from the golden parameter and state
/// after the previous one (spec §9.4), so an error shows at the step where it starts. Tolerances: parameters and
/// 32-bit states atol 1e-6 / rtol 1e-5; 8-bit absmax rtol 1e-5 and at most 1 % of codes one index off.
/// </summary>
public sealed class OptimGoldenTests(OptimBackendsFixture backends) : IClassFixture<OptimBackendsFixture>
{
    public static TheoryData<string, string> Cases
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (string backend in OptimBackendsFixture.AvailableBackends)
            {
                foreach (string id in GoldenManifest.All.Keys.Where(k => k.StartsWith("optim/", StringComparison.Ordinal)))
                {
                    data.Add(backend, id);
                }
            }

            return data;
        }
    }

    [CpuBackendsTheory]
    [MemberData(nameof(Cases))]
    public void Golden_trajectory_through_the_optimizer(string backend, string id)
    {
        GoldenCase c = GoldenManifest.Get(id);
        bool eightBit = id.StartsWith("optim/8bit/", StringComparison.Ordinal);
        int steps = c.Int("steps"), n = c.Int("n");
        float[] p = c.Input("p0").Read<float>(), g = new float[n];
        float[] grads = c.InputsStartingWith("grads").Read<float>();
        var parameter = ParameterRef.Create<float>(p, g, name: "w");
        using Optimizer opt = Create(backends.Context(backend), c, parameter, eightBit);

        for (int s = 0; s < steps; s++)
        {
            grads.AsSpan(s * n, n).CopyTo(g);
            if (s > 0)
            {
                Row(c.OutputLike("param").Read<float>(), steps, s - 1).CopyTo(p);
                FeedState(opt.GetState(parameter)!, c, steps, s - 1, eightBit);
            }

            opt.Step();
            ParameterState state = opt.GetState(parameter)!;
            Assert.Equal(s + 1, state.Step);
            Assert.Equal(eightBit, state.IsEightBit);
            string at = $"{backend} {id} step {s + 1}";
            Compare.Close(Compare.ToDouble(Row(c.OutputLike("param").Read<float>(), steps, s)), Compare.ToDouble(p), 1e-6, 1e-5, $"{at}: param");
            foreach (string k in new[] { "1", "2" })
            {
                if (c.OptionalOutputLike("state" + k) is not { } golden)
                {
                    Assert.DoesNotContain("state" + k, state.TensorNames); // a 1-state optimizer has no state2
                    continue;
                }

                if (!eightBit)
                {
                    Compare.Close(Compare.ToDouble(Row(golden.Read<float>(), steps, s)), Compare.ToDouble(state.GetTensor<float>("state" + k)), 1e-6, 1e-5, $"{at}: state{k}");
                    continue;
                }

                Compare.Close(Compare.ToDouble(Row(c.OutputLike("absmax" + k).Read<float>(), steps, s)), Compare.ToDouble(state.GetTensor<float>("absmax" + k)), 0, 1e-5, $"{at}: absmax{k}");
                GoldenTests.AssertCodesClose(Row(golden.Read<byte>(), steps, s), state.GetTensor<byte>("state" + k), $"{at}: state{k}");
            }

            if (c.Has("max_unorm") && c.Double("max_unorm") > 0)
            {
                Assert.True(state.UpdateNorm > 0, $"{at}: unorm_vec must be > 0 for a trust-ratio optimizer");
            }
        }
    }

    /// <summary>The optimizer class bitsandbytes would use for the case's kernel and hyper-parameters.</summary>
    internal static Optimizer Create(BnbContext ctx, GoldenCase c, ParameterRef p, bool eightBit)
    {
        double lr = c.Double("lr"), b1 = c.Double("b1"), b2 = c.Double("b2"), eps = c.Double("eps"), wd = c.Double("wd");
        int bits = eightBit ? 8 : 32;
        ParameterRef[] ps = [p];
        return c.String("name") switch
        {
            "adam" => new AdamW(ctx, ps, lr, (b1, b2), eps, wd, optimBits: bits),
            "lamb" => new Lamb(ctx, ps, lr, (b1, b2), eps, wd, optimBits: bits, maxUnorm: c.Double("max_unorm")),
            "ademamix" => new AdEMAMix(ctx, ps, lr, (b1, b2, c.Double("b3")), c.Double("alpha"), eps: eps, weightDecay: wd, optimBits: bits),
            "momentum" => new Sgd(ctx, ps, lr, b1, wd, optimBits: bits),
            "lars" => new Lars(ctx, ps, lr, b1, wd, optimBits: bits, maxUnorm: c.Double("max_unorm")),
            "rmsprop" => new RmsProp(ctx, ps, lr, b1, eps, wd, optimBits: bits),
            "adagrad" => new Adagrad(ctx, ps, lr, weightDecay: wd, eps: eps, optimBits: bits),
            "lion" => new Lion(ctx, ps, lr, (b1, b2), wd, optimBits: bits),
            var other => throw new InvalidOperationException($"unknown optimizer '{other}'"),
        };
    }

    private static void FeedState(ParameterState state, GoldenCase c, int steps, int row, bool eightBit)
    {
        foreach (string k in new[] { "1", "2" })
        {
            if (c.OptionalOutputLike("state" + k) is not { } golden)
            {
                continue;
            }

            if (eightBit)
            {
                OptimData.SetTensor<byte>(state, "state" + k, Row(golden.Read<byte>(), steps, row));
                OptimData.SetTensor<float>(state, "absmax" + k, Row(c.OutputLike("absmax" + k).Read<float>(), steps, row));
            }
            else
            {
                OptimData.SetTensor<float>(state, "state" + k, Row(golden.Read<float>(), steps, row));
            }
        }
    }

    private static T[] Row<T>(T[] all, int steps, int step)
        where T : unmanaged => all.AsSpan(step * (all.Length / steps), all.Length / steps).ToArray();
}
