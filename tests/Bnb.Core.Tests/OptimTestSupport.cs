using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Bnb.Optim;
using Bnb.Runtime;

namespace Bnb.Tests;

/// <summary>
/// The CPU backends the optimizer tests run on: every one of cpu_ref, cpu_avx2, cpu_avx512, cpu_neon that is built
/// and can run on this machine (under qemu/wine the cross-test exe finds the arm64/win-x64 ones).
/// </summary>
public sealed class OptimBackendsFixture : IDisposable
{
    internal static readonly string[] CpuBackends = ["cpu_ref", "cpu_avx2", "cpu_avx512", "cpu_neon"];

    private static readonly Lazy<string[]> Available = new(() =>
        [.. CpuBackends.Where(name =>
        {
            if (!TestEnvironment.HasBackend(name))
            {
                return false;
            }

            using BnbRuntime runtime = TestEnvironment.CreateRuntime(true, name);
            return runtime.GetBackend(name).IsAvailable;
        })]);

    private readonly ConcurrentDictionary<(string, NonFinitePolicy, int), BnbContext> _contexts = new();
    private readonly ConcurrentDictionary<string, BnbRuntime> _runtimes = new();

    /// <summary>Backend names for [MemberData] (theories are skipped by <see cref="CpuBackendsTheoryAttribute"/> when there are none).</summary>
    public static TheoryData<string> Backends => [.. Available.Value];

    internal static IReadOnlyList<string> AvailableBackends => Available.Value;

    /// <summary>A context on <paramref name="backend"/>, cached per (backend, policy, threads).</summary>
    internal BnbContext Context(string backend, NonFinitePolicy policy = NonFinitePolicy.Error, int threads = 0)
    {
        return _contexts.GetOrAdd((backend, policy, threads), k =>
            _runtimes.GetOrAdd(k.Item1, b => TestEnvironment.CreateRuntime(false, b)).GetBackend(k.Item1).CreateContext(numThreads: k.Item3, nonFinitePolicy: k.Item2));
    }

    public void Dispose()
    {
        foreach (BnbContext c in _contexts.Values)
        {
            c.Dispose();
        }

        foreach (BnbRuntime r in _runtimes.Values)
        {
            r.Dispose();
        }
    }
}

/// <summary>Deterministic data and comparisons shared by the optimizer tests.</summary>
internal static class OptimData
{
    /// <summary>N(0, 1)·scale values from a fixed seed (Box–Muller over System.Random's xoshiro).</summary>
    public static float[] Normal(int n, double scale, int seed)
    {
        var rng = new Random(seed);
        var result = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            result[i] = (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2) * scale);
        }

        return result;
    }

    /// <summary>Overwrites a state tensor (tests feed golden state into a step).</summary>
    public static void SetTensor<T>(ParameterState state, string name, ReadOnlySpan<T> values)
        where T : unmanaged => state.Get(name).CopyFrom(MemoryMarshal.AsBytes(values));
}

/// <summary>A [Theory] over the available CPU backends, skipped with the reason when none is built.</summary>
internal sealed class CpuBackendsTheoryAttribute : TheoryAttribute
{
    public CpuBackendsTheoryAttribute()
    {
        if (OptimBackendsFixture.AvailableBackends.Count == 0)
        {
            Skip = $"no CPU backend library is built in {TestEnvironment.NativeDirectory}; build native code or set BNB_LIBRARY_PATH";
        }
    }
}

/// <summary>A [Fact] that needs a CPU backend, skipped with the reason when none is built.</summary>
internal sealed class CpuBackendsFactAttribute : FactAttribute
{
    public CpuBackendsFactAttribute()
    {
        if (OptimBackendsFixture.AvailableBackends.Count == 0)
        {
            Skip = $"no CPU backend library is built in {TestEnvironment.NativeDirectory}; build native code or set BNB_LIBRARY_PATH";
        }
    }
}
