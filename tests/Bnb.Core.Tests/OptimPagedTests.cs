using Bnb.Memory;
using Bnb.Optim;
using Bnb.Runtime;

namespace Bnb.Tests;

/// <summary>
/// Paged optimizers give exactly the unpaged results, also when the paging budget holds only one parameter's state
/// so that every step evicts and reloads every state; the allocator's counters show the traffic.
/// </summary>
public sealed class OptimPagedTests(OptimBackendsFixture backends) : IClassFixture<OptimBackendsFixture>
{
    private const int Params = 3, N = 20_000, Steps = 6;

    public static TheoryData<string, string, int> Cases
    {
        get
        {
            var data = new TheoryData<string, string, int>();
            foreach (string backend in OptimBackendsFixture.AvailableBackends)
            {
                foreach (string kind in new[] { "adamw", "lion", "ademamix" })
                {
                    data.Add(backend, kind, 32);
                    data.Add(backend, kind, 8);
                }
            }

            return data;
        }
    }

    [CpuBackendsTheory]
    [MemberData(nameof(Cases))]
    public void Paged_equals_unpaged_bit_for_bit_while_evicting_every_step(string backend, string kind, int bits)
    {
        // A context of its own: the pager (budget, counters) belongs to the context.
        using BnbContext ctx = backends.Context(backend).Backend.CreateContext();
        var (plain, plainParams, plainGrads) = Build(ctx, kind, bits, paged: false);
        var (paged, pagedParams, pagedGrads) = Build(ctx, kind, bits, paged: true);
        using (plain)
        using (paged)
        {
            // Budget: one parameter's state1 + state2 (+ 64-byte rounding), so each update evicts the previous one's.
            long perParam = kind == "ademamix" ? 3L * N * (bits / 8) : (kind == "lion" ? 1L : 2L) * N * (bits / 8);
            var allocator = new PagedAllocator(ctx, budgetBytes: perParam + 256);
            paged.PagedAllocator = allocator;
            paged.PagedMinElements = 10_000;

            for (int step = 0; step < Steps; step++)
            {
                for (int i = 0; i < Params; i++)
                {
                    float[] g = OptimData.Normal(N, 0.01, seed: (step * 31) + i);
                    g.CopyTo(plainGrads[i], 0);
                    g.CopyTo(pagedGrads[i], 0);
                }

                plain.Step();
                paged.Step();
                for (int i = 0; i < Params; i++)
                {
                    Assert.Equal(plainParams[i], pagedParams[i]);
                }
            }

            PagedMemoryStats stats = allocator.GetStats();
            Assert.True(stats.PagedBytes >= Params * perParam, $"paged bytes {stats.PagedBytes}");
            Assert.True(stats.PeakResidentBytes <= stats.BudgetBytes, $"peak resident {stats.PeakResidentBytes} > budget {stats.BudgetBytes}");
            // Every step after the first reloads every parameter's state that an earlier update evicted.
            Assert.True(stats.Evictions >= (long)Params * (Steps - 1), $"{stats.Evictions} evictions");
            Assert.True(stats.LoadedBytes >= (Steps - 1) * (Params - 1) * perParam, $"{stats.LoadedBytes} bytes loaded");

            foreach (var (a, b) in plain.Parameters.Zip(paged.Parameters))
            {
                ParameterState sa = plain.GetState(a)!, sb = paged.GetState(b)!;
                Assert.False(sa.IsPaged);
                Assert.True(sb.IsPaged);
                Assert.Equal(sa.TensorNames, sb.TensorNames);
                foreach (string name in sa.TensorNames)
                {
                    Assert.Equal(sa.GetBytes(name), sb.GetBytes(name));
                }
            }
        }
    }

    [CpuBackendsTheory]
    [MemberData(nameof(OptimBackendsFixture.Backends), MemberType = typeof(OptimBackendsFixture))]
    public void Small_parameters_of_a_paged_optimizer_stay_unpaged(string backend)
    {
        BnbContext ctx = backends.Context(backend);
        float[] small = new float[1000], big = new float[120_000];
        var ps = new[] { ParameterRef.Create<float>(small, new float[small.Length], "small"), ParameterRef.Create<float>(big, new float[big.Length], "big") };
        using var opt = new AdamW(ctx, ps, paged: true);
        opt.Step();
        Assert.False(opt.GetState(ps[0])!.IsPaged);
        Assert.True(opt.GetState(ps[1])!.IsPaged); // bitsandbytes pages tensors of at least 1e5 elements
        Assert.NotNull(opt.PagedAllocator);
    }

    private static (Optimizer, float[][], float[][]) Build(BnbContext ctx, string kind, int bits, bool paged)
    {
        var values = new float[Params][];
        var grads = new float[Params][];
        var ps = new ParameterRef[Params];
        for (int i = 0; i < Params; i++)
        {
            values[i] = OptimData.Normal(N, 0.1, seed: 100 + i);
            grads[i] = new float[N];
            ps[i] = ParameterRef.Create<float>(values[i], grads[i], $"p{i}");
        }

        Optimizer opt = kind switch
        {
            "adamw" => new AdamW(ctx, ps, optimBits: bits, paged: paged),
            "lion" => new Lion(ctx, ps, optimBits: bits, paged: paged),
            _ => new AdEMAMix(ctx, ps, optimBits: bits, paged: paged, tAlpha: 3, tBeta3: 3),
        };
        return (opt, values, grads);
    }
}
