using Bnb.Memory;
using Bnb.Quantization;

namespace Bnb.Cli.Bench;

/// <summary>What one measurement runs: an op and its operand shapes/types (backend and threads vary separately).</summary>
internal sealed record BenchSpec(
    string Op,
    string Quant,
    string Dtype,
    long M,
    long K,
    long N,
    int Blocksize,
    bool Packed,
    string Rounding,
    bool Cold)
{
    public static DType ParseDtype(string dtype) => dtype switch
    {
        "f32" => DType.F32,
        "f16" => DType.F16,
        "bf16" => DType.BF16,
        _ => throw new ArgumentException($"--dtype {dtype}: expected f32, f16 or bf16"),
    };

    public static int DtypeSize(DType dtype) => dtype == DType.F32 ? 4 : 2;
}

/// <summary>Operands of one op, allocated and filled once; <see cref="Run"/> is what gets timed.</summary>
internal abstract class Workload : IDisposable
{
    private readonly List<NativeBuffer> _buffers = [];

    /// <summary>Bytes one call reads and writes (packed weights + absmax + activations read, outputs written).</summary>
    public long Bytes { get; protected set; }

    /// <summary>Floating-point (or integer multiply-add) operations of one call; 0 when not meaningful.</summary>
    public double Flops { get; protected set; }

    /// <summary>How many weight copies are rotated through (1 = none).</summary>
    public int Copies { get; protected set; } = 1;

    public abstract void Run(int iteration);

    public void Dispose()
    {
        foreach (var b in _buffers)
        {
            b.Dispose();
        }

        _buffers.Clear();
    }

    protected NativeBuffer Alloc(long bytes)
    {
        var b = new NativeBuffer(bytes);
        _buffers.Add(b);
        return b;
    }

    public static Workload Create(BenchSpec spec, Quantizer q, long llcBytes, Random random) => spec.Op switch
    {
        "gemv" or "gemm" => new Matmul4Workload(spec, q, llcBytes, random),
        "quantize" => new QuantizeWorkload(spec, q, random),
        "dequantize" => new DequantizeWorkload(spec, q, random),
        "int8-matmul" => new Int8MatmulWorkload(spec, q, random),
        _ => throw new ArgumentException($"unknown op '{spec.Op}'"),
    };

    protected static QuantType FourBit(string quant) => quant switch
    {
        "nf4" => QuantType.Nf4,
        "fp4" => QuantType.Fp4,
        _ => throw new ArgumentException($"--quant {quant}: this op takes nf4 or fp4"),
    };

    protected static long Blocks(long n, int blocksize) => (n + blocksize - 1) / blocksize;
}

/// <summary>
/// gemv_4bit / gemm_4bit: out[M, N] = A[M, K] · dequant(W)[N, K]ᵀ. For gemv (and gemm with <c>Cold</c>) the weights
/// are replicated into enough copies that together exceed 3× the last-level cache, and each call uses the next
/// copy, so every call streams its weights from DRAM (as in inference, where every layer's weights are cold).
/// </summary>
internal sealed class Matmul4Workload : Workload
{
    private const long MaxRotationBytes = 3L << 30;
    private readonly Quantizer _q;
    private readonly QuantType _quantType;
    private readonly DType _dtype;
    private readonly BenchSpec _spec;
    private readonly NativeBuffer _a;
    private readonly NativeBuffer _out;
    private readonly NativeBuffer[] _w;
    private readonly NativeBuffer[] _absmax;
    private readonly long _weightBytes;
    private readonly WeightFormat _format;

    public Matmul4Workload(BenchSpec spec, Quantizer q, long llcBytes, Random random)
    {
        _spec = spec;
        _q = q;
        _quantType = FourBit(spec.Quant);
        _dtype = BenchSpec.ParseDtype(spec.Dtype);
        int ds = BenchSpec.DtypeSize(_dtype);
        long nk = spec.N * spec.K;
        long standardBytes = (nk + 1) / 2;
        long absmaxBytes = Blocks(nk, spec.Blocksize) * 4;
        _format = spec.Packed ? WeightFormat.Backend : WeightFormat.Standard;
        _weightBytes = spec.Packed ? q.WeightPackSize(WeightFormat.Backend, spec.N, spec.K, spec.Blocksize) : standardBytes;

        long perCopy = _weightBytes + absmaxBytes;
        int copies = 1;
        if (spec.Cold)
        {
            copies = (int)Math.Clamp(((3 * llcBytes) + perCopy - 1) / perCopy, 1, 4096);
            copies = (int)Math.Max(1, Math.Min(copies, MaxRotationBytes / perCopy));
        }

        Copies = copies;
        _w = new NativeBuffer[copies];
        _absmax = new NativeBuffer[copies];
        NativeBuffer? standard = spec.Packed ? Alloc(standardBytes) : null;
        for (int c = 0; c < copies; c++)
        {
            _w[c] = Alloc(_weightBytes);
            if (standard is not null)
            {
                standard.FillRandomBytes(random);
                q.WeightPack(WeightFormat.Backend, standard.Tensor(DType.U8, standardBytes), spec.N, spec.K, spec.Blocksize, _w[c].Tensor(DType.U8, _weightBytes));
            }
            else
            {
                _w[c].FillRandomBytes(random);
            }

            _absmax[c] = Alloc(absmaxBytes);
            _absmax[c].FillRandomFloats(random, DType.F32, absmaxBytes / 4, 0.01f, 0.1f);
        }

        _a = Alloc(spec.M * spec.K * ds);
        _a.FillRandomFloats(random, _dtype, spec.M * spec.K);
        _out = Alloc(spec.M * spec.N * ds);
        _out.Touch();
        Bytes = _weightBytes + absmaxBytes + (spec.M * spec.K * ds) + (spec.M * spec.N * ds);
        Flops = 2.0 * spec.M * spec.N * spec.K;
    }

    public override void Run(int iteration)
    {
        int c = iteration % Copies;
        var a = _a.Tensor(_dtype, _spec.M, _spec.K);
        var w = _w[c].Tensor(DType.U8, _weightBytes);
        var absmax = AbsmaxRef.Plain(_absmax[c].Tensor(DType.F32, _absmax[c].Bytes / 4));
        var output = _out.Tensor(_dtype, _spec.M, _spec.N);
        if (_spec.Op == "gemv")
        {
            _q.Gemv4Bit(a, w, absmax, _quantType, _spec.Blocksize, output, format: _format);
        }
        else
        {
            _q.Gemm4Bit(a, w, absmax, _quantType, _spec.Blocksize, output, format: _format);
        }
    }
}

/// <summary>quantize_4bit (nf4/fp4), quantize_blockwise (q8) or int8_vectorwise_quant (int8) of N elements.</summary>
internal sealed class QuantizeWorkload : Workload
{
    private readonly Quantizer _q;
    private readonly BenchSpec _spec;
    private readonly DType _dtype;
    private readonly NativeBuffer _input;
    private readonly NativeBuffer _codes;
    private readonly NativeBuffer _stats;
    private readonly float[] _code;
    private readonly long _rows;
    private readonly long _cols;

    public QuantizeWorkload(BenchSpec spec, Quantizer q, Random random)
    {
        _q = q;
        _spec = spec;
        _dtype = BenchSpec.ParseDtype(spec.Dtype);
        int ds = BenchSpec.DtypeSize(_dtype);
        long n = spec.N;
        _code = q.GetCodeTable(CodeTable.DynamicSigned);
        _input = Alloc(n * ds);
        _input.FillRandomFloats(random, _dtype, n);
        switch (spec.Quant)
        {
            case "nf4" or "fp4":
                FourBit(spec.Quant);
                _codes = Alloc((n + 1) / 2);
                _stats = Alloc(Blocks(n, spec.Blocksize) * 4);
                break;
            case "q8":
                _codes = Alloc(n);
                _stats = Alloc(Blocks(n, spec.Blocksize) * 4);
                break;
            case "int8":
                _cols = spec.K > 0 && n % spec.K == 0 ? spec.K : 4096;
                _rows = n / _cols;
                if (_rows * _cols != n)
                {
                    throw new ArgumentException($"int8 quantize: {n} elements are not rows × {_cols} columns (choose --n as a multiple of --k)");
                }

                _codes = Alloc(n);
                _stats = Alloc(_rows * 4);
                break;
            default:
                throw new ArgumentException($"--quant {spec.Quant}: expected nf4, fp4, q8 or int8");
        }

        _codes.Touch();
        _stats.Touch();
        Bytes = (n * ds) + _codes.Bytes + _stats.Bytes;
    }

    public override unsafe void Run(int iteration)
    {
        long n = _spec.N;
        switch (_spec.Quant)
        {
            case "nf4" or "fp4":
                _q.Quantize4Bit(_input.Tensor(_dtype, n), _codes.Tensor(DType.U8, _codes.Bytes), _stats.Tensor(DType.F32, _stats.Bytes / 4), FourBit(_spec.Quant), _spec.Blocksize);
                break;
            case "q8":
                fixed (float* code = _code)
                {
                    _q.QuantizeBlockwise(
                        _input.Tensor(_dtype, n), _codes.Tensor(DType.U8, n), _stats.Tensor(DType.F32, _stats.Bytes / 4), _spec.Blocksize,
                        _spec.Rounding == "lut" ? Rounding.BnbCpuLut : Rounding.Nearest, TensorRef.FromPointer(code, DType.F32, [256]));
                }

                break;
            default:
                _q.Int8VectorwiseQuant(_input.Tensor(_dtype, _rows, _cols), _codes.Tensor(DType.I8, _rows, _cols), _stats.Tensor(DType.F32, _rows));
                break;
        }
    }
}

/// <summary>dequantize_4bit (nf4/fp4), dequantize_blockwise (q8) or int8_vectorwise_dequant (int8, f32 out) of N elements.</summary>
internal sealed class DequantizeWorkload : Workload
{
    private readonly Quantizer _q;
    private readonly BenchSpec _spec;
    private readonly DType _dtype;
    private readonly NativeBuffer _codes;
    private readonly NativeBuffer _stats;
    private readonly NativeBuffer _output;
    private readonly float[] _code;
    private readonly long _rows;
    private readonly long _cols;

    public DequantizeWorkload(BenchSpec spec, Quantizer q, Random random)
    {
        _q = q;
        _spec = spec;
        _dtype = spec.Quant == "int8" ? DType.F32 : BenchSpec.ParseDtype(spec.Dtype);
        long n = spec.N;
        _code = q.GetCodeTable(CodeTable.DynamicSigned);
        switch (spec.Quant)
        {
            case "nf4" or "fp4":
                FourBit(spec.Quant);
                _codes = Alloc((n + 1) / 2);
                _stats = Alloc(Blocks(n, spec.Blocksize) * 4);
                _stats.FillRandomFloats(random, DType.F32, _stats.Bytes / 4, 0.01f, 1f);
                break;
            case "q8":
                _codes = Alloc(n);
                _stats = Alloc(Blocks(n, spec.Blocksize) * 4);
                _stats.FillRandomFloats(random, DType.F32, _stats.Bytes / 4, 0.01f, 1f);
                break;
            case "int8":
                _cols = spec.K > 0 && n % spec.K == 0 ? spec.K : 4096;
                _rows = n / _cols;
                if (_rows * _cols != n)
                {
                    throw new ArgumentException($"int8 dequantize: {n} elements are not rows × {_cols} columns (choose --n as a multiple of --k)");
                }

                _codes = Alloc(n);
                _stats = Alloc(_rows * 4);
                _stats.FillRandomFloats(random, DType.F32, _rows, 0.01f, 1f);
                break;
            default:
                throw new ArgumentException($"--quant {spec.Quant}: expected nf4, fp4, q8 or int8");
        }

        _codes.FillRandomBytes(random);
        _output = Alloc(n * BenchSpec.DtypeSize(_dtype));
        _output.Touch();
        Bytes = _codes.Bytes + _stats.Bytes + _output.Bytes;
    }

    public override unsafe void Run(int iteration)
    {
        long n = _spec.N;
        switch (_spec.Quant)
        {
            case "nf4" or "fp4":
                _q.Dequantize4Bit(_codes.Tensor(DType.U8, _codes.Bytes), AbsmaxRef.Plain(_stats.Tensor(DType.F32, _stats.Bytes / 4)), _output.Tensor(_dtype, n), FourBit(_spec.Quant), _spec.Blocksize);
                break;
            case "q8":
                fixed (float* code = _code)
                {
                    _q.DequantizeBlockwise(_codes.Tensor(DType.U8, n), AbsmaxRef.Plain(_stats.Tensor(DType.F32, _stats.Bytes / 4)), TensorRef.FromPointer(code, DType.F32, [256]), _spec.Blocksize, _output.Tensor(_dtype, n));
                }

                break;
            default:
                _q.Int8VectorwiseDequant(_codes.Tensor(DType.I8, _rows, _cols), _stats.Tensor(DType.F32, _rows), _output.Tensor(DType.F32, _rows, _cols));
                break;
        }
    }
}

/// <summary>int8_linear_matmul: out i32 [M, N] = A i8 [M, K] · B i8 [N, K]ᵀ (2·M·N·K integer ops).</summary>
internal sealed class Int8MatmulWorkload : Workload
{
    private readonly Quantizer _q;
    private readonly BenchSpec _spec;
    private readonly NativeBuffer _a;
    private readonly NativeBuffer _b;
    private readonly NativeBuffer _out;

    public Int8MatmulWorkload(BenchSpec spec, Quantizer q, Random random)
    {
        _q = q;
        _spec = spec;
        _a = Alloc(spec.M * spec.K);
        _a.FillRandomBytes(random);
        _b = Alloc(spec.N * spec.K);
        _b.FillRandomBytes(random);
        _out = Alloc(spec.M * spec.N * 4);
        _out.Touch();
        Bytes = _a.Bytes + _b.Bytes + _out.Bytes;
        Flops = 2.0 * spec.M * spec.N * spec.K;
    }

    public override void Run(int iteration) =>
        _q.Int8LinearMatmul(_a.Tensor(DType.I8, _spec.M, _spec.K), _b.Tensor(DType.I8, _spec.N, _spec.K), _out.Tensor(DType.I32, _spec.M, _spec.N));
}
