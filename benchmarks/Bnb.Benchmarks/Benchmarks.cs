using BenchmarkDotNet.Attributes;
using Bnb.Memory;
using Bnb.Quantization;
using Bnb.Runtime;

namespace Bnb.Benchmarks;

/// <summary>Shared per-case set-up: one context per (backend, threads).</summary>
public abstract class BackendBenchmark
{
    private BnbContext? _context;

    [ParamsSource(typeof(Backends), nameof(Backends.Names))]
    public string Backend { get; set; } = "cpu_ref";

    [ParamsSource(typeof(Backends), nameof(Backends.Threads))]
    public int Threads { get; set; } = 1;

    protected Quantizer Q { get; private set; } = null!;

    protected void Open() => Q = Backends.Open(Backend, Threads, out _context);

    [GlobalCleanup]
    public void Close() => _context?.Dispose();
}

/// <summary>
/// NF4 4-bit matmul, bf16 activations, weights in the backend's weight_pack layout: GEMV M = 1, K = N = 4096 (8 MiB
/// of packed weights: warm in a 32 MiB LLC — `bnb bench gemv` measures the cold, DRAM-bound case) and GEMM
/// M = 64, K = N = 2048.
/// </summary>
public class Matmul4Benchmarks : BackendBenchmark, IWorkModel
{
    private const int GemvK = 4096, GemvN = 4096, GemmM = 64, GemmK = 2048, GemmN = 2048, Blocksize = 64;
    private byte[] _gemvW = [], _gemmW = [];
    private float[] _gemvAbsmax = [], _gemmAbsmax = [];
    private BFloat16[] _gemvA = [], _gemmA = [], _gemvOut = [], _gemmOut = [];

    public static Work WorkOf(string method, Func<string, object?> parameter) => method switch
    {
        nameof(GemvNf4) => new((GemvN * (long)GemvK / 2) + (GemvN * (long)GemvK / Blocksize * 4) + (GemvK * 2) + (GemvN * 2), 2.0 * GemvN * GemvK),
        nameof(GemmNf4) => new((GemmN * (long)GemmK / 2) + (GemmN * (long)GemmK / Blocksize * 4) + (GemmM * GemmK * 2) + (GemmM * GemmN * 2), 2.0 * GemmM * GemmN * GemmK),
        _ => default,
    };

    [GlobalSetup]
    public void Setup()
    {
        Open();
        (_gemvW, _gemvAbsmax) = Weights(GemvN, GemvK, 1);
        (_gemmW, _gemmAbsmax) = Weights(GemmN, GemmK, 2);
        _gemvA = [.. Backends.Floats(GemvK, 3).Select(x => (BFloat16)x)];
        _gemmA = [.. Backends.Floats(GemmM * GemmK, 4).Select(x => (BFloat16)x)];
        _gemvOut = new BFloat16[GemvN];
        _gemmOut = new BFloat16[GemmM * GemmN];
    }

    private (byte[] Packed, float[] Absmax) Weights(int n, int k, int seed)
    {
        byte[] standard = Backends.Bytes(n * k / 2, seed);
        return (Q.WeightPack(WeightFormat.Backend, standard, n, k, Blocksize), Backends.Floats(n * k / Blocksize, seed + 10, 0.01f, 0.1f));
    }

    [Benchmark]
    public void GemvNf4() => Q.Gemv4Bit(
        TensorRef.FromReadOnlySpan<BFloat16>(_gemvA, 1, GemvK), TensorRef.FromReadOnlySpan<byte>(_gemvW), AbsmaxRef.Plain(TensorRef.FromReadOnlySpan<float>(_gemvAbsmax)),
        QuantType.Nf4, Blocksize, TensorRef.FromSpan<BFloat16>(_gemvOut, 1, GemvN), format: WeightFormat.Backend);

    [Benchmark]
    public void GemmNf4() => Q.Gemm4Bit(
        TensorRef.FromReadOnlySpan<BFloat16>(_gemmA, GemmM, GemmK), TensorRef.FromReadOnlySpan<byte>(_gemmW), AbsmaxRef.Plain(TensorRef.FromReadOnlySpan<float>(_gemmAbsmax)),
        QuantType.Nf4, Blocksize, TensorRef.FromSpan<BFloat16>(_gemmOut, GemmM, GemmN), format: WeightFormat.Backend);
}

/// <summary>Quantize 4 M float32 elements: 8-bit blockwise (nearest and bnb_cpu_lut rounding, blocksize 4096) and NF4 (blocksize 64).</summary>
public class QuantizeBenchmarks : BackendBenchmark, IWorkModel
{
    private const int N = 4 << 20;
    private float[] _x = [], _absmax8 = [], _absmax4 = [], _code = [];
    private byte[] _codes8 = [], _packed4 = [];

    public static Work WorkOf(string method, Func<string, object?> parameter) => method switch
    {
        nameof(Q8Nearest) or nameof(Q8Lut) => new((N * 4L) + N + (N / 4096 * 4), 0),
        nameof(Nf4) => new((N * 4L) + (N / 2) + (N / 64 * 4), 0),
        _ => default,
    };

    [GlobalSetup]
    public void Setup()
    {
        Open();
        _x = Backends.Floats(N, 5);
        _code = Q.GetCodeTable(CodeTable.DynamicSigned);
        _codes8 = new byte[N];
        _absmax8 = new float[N / 4096];
        _packed4 = new byte[N / 2];
        _absmax4 = new float[N / 64];
    }

    [Benchmark]
    public void Q8Nearest() => Q.QuantizeBlockwise(TensorRef.FromReadOnlySpan<float>(_x), TensorRef.FromSpan<byte>(_codes8), TensorRef.FromSpan<float>(_absmax8), 4096, Rounding.Nearest, TensorRef.FromReadOnlySpan<float>(_code));

    [Benchmark]
    public void Q8Lut() => Q.QuantizeBlockwise(TensorRef.FromReadOnlySpan<float>(_x), TensorRef.FromSpan<byte>(_codes8), TensorRef.FromSpan<float>(_absmax8), 4096, Rounding.BnbCpuLut, TensorRef.FromReadOnlySpan<float>(_code));

    [Benchmark]
    public void Nf4() => Q.Quantize4Bit(TensorRef.FromReadOnlySpan<float>(_x), TensorRef.FromSpan<byte>(_packed4), TensorRef.FromSpan<float>(_absmax4), QuantType.Nf4, 64);
}

/// <summary>Dequantize 4 M elements to float32: 8-bit blockwise (blocksize 4096) and NF4 (blocksize 64).</summary>
public class DequantizeBenchmarks : BackendBenchmark, IWorkModel
{
    private const int N = 4 << 20;
    private float[] _out = [], _absmax8 = [], _absmax4 = [], _code = [];
    private byte[] _codes8 = [], _packed4 = [];

    public static Work WorkOf(string method, Func<string, object?> parameter) => method switch
    {
        nameof(Q8) => new(N + (N / 4096 * 4) + (N * 4L), 0),
        nameof(Nf4) => new((N / 2) + (N / 64 * 4) + (N * 4L), 0),
        _ => default,
    };

    [GlobalSetup]
    public void Setup()
    {
        Open();
        _code = Q.GetCodeTable(CodeTable.DynamicSigned);
        _codes8 = Backends.Bytes(N, 6);
        _packed4 = Backends.Bytes(N / 2, 7);
        _absmax8 = Backends.Floats(N / 4096, 8, 0.01f, 1f);
        _absmax4 = Backends.Floats(N / 64, 9, 0.01f, 1f);
        _out = new float[N];
    }

    [Benchmark]
    public void Q8() => Q.DequantizeBlockwise(TensorRef.FromReadOnlySpan<byte>(_codes8), AbsmaxRef.Plain(TensorRef.FromReadOnlySpan<float>(_absmax8)), TensorRef.FromReadOnlySpan<float>(_code), 4096, TensorRef.FromSpan<float>(_out));

    [Benchmark]
    public void Nf4() => Q.Dequantize4Bit(TensorRef.FromReadOnlySpan<byte>(_packed4), AbsmaxRef.Plain(TensorRef.FromReadOnlySpan<float>(_absmax4)), TensorRef.FromSpan<float>(_out), QuantType.Nf4, 64);
}

/// <summary>LLM.int8() matmul: int32 [M, N] = int8 A [M, K] · int8 B [N, K]ᵀ with M = 64, K = N = 2048.</summary>
public class Int8MatmulBenchmarks : BackendBenchmark, IWorkModel
{
    private const int M = 64, K = 2048, N = 2048;
    private sbyte[] _a = [], _b = [];
    private int[] _out = [];

    public static Work WorkOf(string method, Func<string, object?> parameter) => new((M * K) + (N * K) + (M * N * 4L), 2.0 * M * N * K);

    [GlobalSetup]
    public void Setup()
    {
        Open();
        _a = [.. Backends.Bytes(M * K, 10).Select(b => (sbyte)b)];
        _b = [.. Backends.Bytes(N * K, 11).Select(b => (sbyte)b)];
        _out = new int[M * N];
    }

    [Benchmark]
    public void Int8Matmul() => Q.Int8LinearMatmul(TensorRef.FromReadOnlySpan<sbyte>(_a, M, K), TensorRef.FromReadOnlySpan<sbyte>(_b, N, K), TensorRef.FromSpan<int>(_out, M, N));
}
