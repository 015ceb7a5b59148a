using BenchmarkDotNet.Attributes;
using Bnb.Memory;
using Bnb.Optim;
using Bnb.Runtime;

namespace Bnb.Benchmarks;

/// <summary>
/// One AdamW step over <see cref="Params"/> f32 parameters (tensors of 4 M elements, random values and gradients,
/// state warmed by one step): 32-bit state, 8-bit blockwise state, and 8-bit paged state under a budget of a quarter
/// of the state (every step evicts and reloads; the spill file stays in the page cache). Backend: the runtime's
/// default (best) backend; BNB_OPTIM_BENCH_PARAMS sets the size (default 16 M; the README's table uses 100 M).
/// </summary>
public class OptimizerBenchmarks : IWorkModel
{
    private const long TensorParams = 1L << 22;
    private float[] _values = [], _grads = [];
    private BnbContext? _context;
    private Optimizer? _adamW32, _adamW8, _paged8;

    /// <summary>Total parameters (BNB_OPTIM_BENCH_PARAMS, default 16 M).</summary>
    [ParamsSource(nameof(Sizes))]
    public long Params { get; set; }

    [ParamsSource(typeof(Backends), nameof(Backends.Threads))]
    public int Threads { get; set; } = 1;

    public static IEnumerable<long> Sizes() =>
        [long.TryParse(Environment.GetEnvironmentVariable("BNB_OPTIM_BENCH_PARAMS"), out long n) && n > 0 ? n : 16L << 20];

    /// <summary>Bytes one step reads and writes: gradient, parameter (read + write), state (read + write).</summary>
    public static Work WorkOf(string method, Func<string, object?> parameter)
    {
        long n = (long)parameter(nameof(Params))!;
        double state = method.EndsWith('8') ? 2.03125 : 8;
        return new Work(n * (12 + (2 * state)), 0);
    }

    [GlobalSetup]
    public virtual void Setup()
    {
        _context = Backends.Runtime.CreateContext(numThreads: Threads);
        _values = GC.AllocateUninitializedArray<float>(checked((int)Params), pinned: true);
        _grads = GC.AllocateUninitializedArray<float>(checked((int)Params), pinned: true);
        var random = new Random(20240601);
        float[] v = _values, g = _grads;
        for (int i = 0; i < v.Length; i++)
        {
            v[i] = (random.NextSingle() - 0.5f) * 0.2f;
            g[i] = (random.NextSingle() - 0.5f) * 0.02f;
        }

        _adamW32 = new AdamW(_context, Split());
        _adamW8 = new AdamW(_context, Split(), optimBits: 8);
        _paged8 = new AdamW(_context, Split(), optimBits: 8, paged: true)
        {
            // A quarter of the state, but at least one tensor's state1 + state2 (the update maps both).
            PagedAllocator = new PagedAllocator(_context, budgetBytes: Math.Max(Params * 2 / 4, (2 * Math.Min(Params, TensorParams)) + 4096)),
            PagedMinElements = 0,
        };
        foreach (Optimizer o in new[] { _adamW32, _adamW8, _paged8 })
        {
            o.Step(); // allocate the state
        }
    }

    [Benchmark]
    public void AdamW32() => _adamW32!.Step();

    [Benchmark]
    public void AdamW8() => _adamW8!.Step();

    [Benchmark]
    public void PagedAdamW8() => _paged8!.Step();

    [GlobalCleanup]
    public virtual void Cleanup()
    {
        _adamW32?.Dispose();
        _adamW8?.Dispose();
        _paged8?.Dispose();
        _context?.Dispose();
    }

    /// <summary>The parameters as 4 M-element tensors over the shared buffers (the optimizers update the same memory in turn).</summary>
    private ParameterRef[] Split()
    {
        var result = new List<ParameterRef>();
        for (long start = 0; start < Params; start += TensorParams)
        {
            long n = Math.Min(TensorParams, Params - start);
            result.Add(ParameterRef.Create(_values.AsMemory((int)start, (int)n), _grads.AsMemory((int)start, (int)n), $"p{result.Count}"));
        }

        return [.. result];
    }
}
