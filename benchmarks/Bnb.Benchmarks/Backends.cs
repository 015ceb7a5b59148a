using Bnb.Quantization;
using Bnb.Runtime;

namespace Bnb.Benchmarks;

/// <summary>
/// The backends every benchmark is parameterised over: each available backend the runtime loads (BNB_LIBRARY_PATH,
/// BNB_BACKENDS, the app directory), so cpu_ref, cpu_avx2 and cpu_avx512 land in one table.
/// </summary>
public static class Backends
{
    private static readonly Lazy<BnbRuntime> SharedRuntime = new(() => new BnbRuntime());

    public static BnbRuntime Runtime => SharedRuntime.Value;

    /// <summary>[ParamsSource] values: the names of every available backend.</summary>
    public static IEnumerable<string> Names()
    {
        var names = Runtime.Backends.Where(b => b.IsAvailable).Select(b => b.Name).ToList();
        return names.Count > 0 ? names : ["(no backend loaded: set BNB_LIBRARY_PATH)"];
    }

    /// <summary>[ParamsSource] values: 1 and every logical CPU.</summary>
    public static IEnumerable<int> Threads() => new[] { 1, Environment.ProcessorCount }.Distinct();

    public static Quantizer Open(string backend, int threads, out BnbContext context)
    {
        context = Runtime.GetBackend(backend).CreateContext(numThreads: threads);
        return new Quantizer(context);
    }

    public static float[] Floats(int n, int seed, float lo = -1f, float hi = 1f)
    {
        var r = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            x[i] = lo + (r.NextSingle() * (hi - lo));
        }

        return x;
    }

    public static byte[] Bytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }
}

/// <summary>Bytes moved and operations done by one call of a benchmark method, for the GB/s and GFLOP/s columns.</summary>
public readonly record struct Work(double Bytes, double Flops);

/// <summary>Implemented (statically) by each benchmark class: the work of one call of <paramref name="method"/>.</summary>
public interface IWorkModel
{
    static abstract Work WorkOf(string method, Func<string, object?> parameter);
}
