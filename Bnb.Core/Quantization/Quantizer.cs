using Bnb.Memory;
using Bnb.Runtime;

namespace Bnb.Quantization;

/// <summary>
/// bitsandbytes' quantization API on one <see cref="BnbContext"/>: blockwise 8-bit, NF4/FP4 with
/// <see cref="QuantState"/> (optionally double-quantized), 4-bit GEMV/GEMM and the LLM.int8() primitives.
/// Every op has an overload that writes into caller buffers (<see cref="TensorRef"/>) and one that allocates.
/// </summary>
/// <remarks>Like its context, a quantizer is used by one thread at a time.</remarks>
public sealed partial class Quantizer
{
    private readonly float[]?[] _tables = new float[]?[4];

    public Quantizer(BnbContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        Context = context;
    }

    public BnbContext Context { get; }

    /// <summary>A code table as the backend defines it (16 entries for NF4/FP4, 256 for the dynamic maps).</summary>
    public float[] GetCodeTable(CodeTable table)
    {
        int index = (int)table;
        if ((uint)index >= (uint)_tables.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(table), table, "unknown code table");
        }

        if (_tables[index] is not { } cached)
        {
            cached = new float[table is CodeTable.Nf4 or CodeTable.Fp4 ? 16 : 256];
            Context.Native.GetCodeTable(index, TensorRef.FromSpan<float>(cached));
            _tables[index] = cached;
        }

        return (float[])cached.Clone();
    }

    // ── 8-bit blockwise ─────────────────────────────────────────────────────────────────────────────────────

    /// <summary>
    /// Quantizes <paramref name="input"/> (f32/f16/bf16) blockwise into 8-bit codes and one float32 absmax per block.
    /// <paramref name="code"/> defaults to the signed dynamic map.
    /// </summary>
    public void QuantizeBlockwise(TensorRef input, TensorRef codes, TensorRef absmax, int blocksize = 4096, Rounding rounding = Rounding.Nearest, TensorRef code = default)
    {
        float[]? defaultCode = code.IsPresent ? null : DynamicSigned;
        TensorRef c = code.IsPresent ? code : TensorRef.FromReadOnlySpan<float>(defaultCode);
        Context.Native.QuantizeBlockwise(Context.Handle, input, c, blocksize, (int)rounding, codes, absmax);
    }

    /// <summary>
    /// Quantizes <paramref name="input"/> blockwise into 8-bit codes. With <paramref name="nested"/>, the absmax is
    /// itself 8-bit quantized (after subtracting its mean) with the same blocksize, as bitsandbytes'
    /// <c>quantize_blockwise(nested=True)</c>.
    /// </summary>
    /// <param name="input">f32, Half or BFloat16 values.</param>
    /// <param name="shape">Shape recorded in the state; default 1-D.</param>
    /// <param name="blocksize">Power of two in [32, 4096].</param>
    /// <param name="rounding">Nearest (default) or the bitsandbytes CPU lookup table.</param>
    /// <param name="code">256-entry table; default the signed dynamic map.</param>
    /// <param name="nested">Double-quantize the absmax.</param>
    public QuantizedTensor QuantizeBlockwise<T>(ReadOnlySpan<T> input, ReadOnlySpan<long> shape = default, int blocksize = 4096, Rounding rounding = Rounding.Nearest, float[]? code = null, bool nested = false)
        where T : unmanaged
    {
        long[] s = ShapeOf(input.Length, shape);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blocksize);
        float[] table = code ?? GetCodeTable(CodeTable.DynamicSigned);
        var codes = new byte[input.Length];
        var absmax = new float[Blocks(input.Length, blocksize)];
        QuantizeBlockwise(TensorRef.FromReadOnlySpan(input), TensorRef.FromSpan<byte>(codes), TensorRef.FromSpan<float>(absmax), blocksize, rounding, TensorRef.FromReadOnlySpan<float>(table));
        if (!nested)
        {
            return new QuantizedTensor(codes, new QuantState(absmax, s, table, DTypes.Of<T>(), blocksize));
        }

        var (q, offset, state2) = CompressAbsmax(absmax, blocksize, rounding, null);
        return new QuantizedTensor(codes, new QuantState(q, offset, state2, s, table, DTypes.Of<T>(), blocksize));
    }

    /// <summary>
    /// Double quantization of a float32 absmax vector: <c>offset = mean(absmax)</c> (or <paramref name="offset"/>),
    /// then <c>absmax - offset</c> is 8-bit quantized with <paramref name="code"/> (default signed dynamic map).
    /// </summary>
    /// <returns>The offset used.</returns>
    public float QuantizeAbsmaxNested(TensorRef absmax, TensorRef codes, TensorRef nestedAbsmax, int nestedBlocksize, Rounding rounding = Rounding.Nearest, TensorRef code = default, float? offset = null)
    {
        float[]? defaultCode = code.IsPresent ? null : DynamicSigned;
        TensorRef c = code.IsPresent ? code : TensorRef.FromReadOnlySpan<float>(defaultCode);
        return Context.Native.QuantizeAbsmaxNested(Context.Handle, absmax, c, nestedBlocksize, (int)rounding, offset, codes, nestedAbsmax);
    }

    /// <summary>Dequantizes 8-bit codes into <paramref name="output"/> (f32/f16/bf16; its element count is produced).</summary>
    public void DequantizeBlockwise(TensorRef codes, AbsmaxRef absmax, TensorRef code, int blocksize, TensorRef output) =>
        Context.Native.DequantizeBlockwise(Context.Handle, codes, absmax, code, blocksize, output);

    /// <summary>Dequantizes 8-bit codes with their state into <paramref name="output"/>.</summary>
    public void DequantizeBlockwise<T>(ReadOnlySpan<byte> codes, QuantState state, Span<T> output)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(state);
        DequantizeBlockwise(TensorRef.FromReadOnlySpan(codes), state.AbsmaxView, TensorRef.FromReadOnlySpan<float>(state.Code), state.Blocksize, TensorRef.FromSpan(output));
    }

    /// <summary>Dequantizes 8-bit codes with their state into a new array of <typeparamref name="T"/> (float, Half or BFloat16).</summary>
    public T[] DequantizeBlockwise<T>(ReadOnlySpan<byte> codes, QuantState state)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(state);
        var output = new T[codes.Length];
        DequantizeBlockwise(codes, state, output.AsSpan());
        return output;
    }

    // ── 4-bit ───────────────────────────────────────────────────────────────────────────────────────────────

    /// <summary>NF4/FP4 quantization into caller buffers: packed bytes (<c>(n + 1) / 2</c>) and absmax (one per block).</summary>
    public void Quantize4Bit(TensorRef input, TensorRef packed, TensorRef absmax, QuantType quantType = QuantType.Nf4, int blocksize = 64) =>
        Context.Native.Quantize4Bit(Context.Handle, input, (int)quantType, blocksize, packed, absmax);

    /// <summary>
    /// NF4/FP4 quantization as bitsandbytes' <c>quantize_4bit</c>. With <paramref name="compressStatistics"/> the
    /// absmax is double-quantized (blocksize 256, signed dynamic map).
    /// </summary>
    /// <param name="input">f32, Half or BFloat16 values.</param>
    /// <param name="shape">Shape recorded in the state (e.g. [out_features, in_features]); default 1-D.</param>
    /// <param name="quantType">NF4 (default) or FP4.</param>
    /// <param name="blocksize">Power of two in [32, 4096]; default 64.</param>
    /// <param name="compressStatistics">Double-quantize the absmax.</param>
    /// <param name="statisticsRounding">Rounding of the nested absmax codes (bitsandbytes' CPU library: <see cref="Rounding.BnbCpuLut"/>).</param>
    /// <param name="statisticsOffset">Use this offset instead of the mean of the absmax (to reproduce stored statistics).</param>
    public QuantizedTensor Quantize4Bit<T>(
        ReadOnlySpan<T> input,
        ReadOnlySpan<long> shape = default,
        QuantType quantType = QuantType.Nf4,
        int blocksize = 64,
        bool compressStatistics = false,
        Rounding statisticsRounding = Rounding.Nearest,
        float? statisticsOffset = null)
        where T : unmanaged
    {
        long[] s = ShapeOf(input.Length, shape);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blocksize);
        var packed = new byte[(input.Length + 1) / 2];
        var absmax = new float[Blocks(input.Length, blocksize)];
        Quantize4Bit(TensorRef.FromReadOnlySpan(input), TensorRef.FromSpan<byte>(packed), TensorRef.FromSpan<float>(absmax), quantType, blocksize);
        float[] table = GetCodeTable(quantType.Table());
        if (!compressStatistics)
        {
            return new QuantizedTensor(packed, new QuantState(absmax, s, table, DTypes.Of<T>(), blocksize, quantType));
        }

        var (q, offset, state2) = CompressAbsmax(absmax, QuantState.NestedBlocksize4Bit, statisticsRounding, statisticsOffset);
        return new QuantizedTensor(packed, new QuantState(q, offset, state2, s, table, DTypes.Of<T>(), blocksize, quantType));
    }

    /// <summary>Dequantizes packed NF4/FP4 into <paramref name="output"/> (its element count is produced; flat blocks).</summary>
    public void Dequantize4Bit(TensorRef packed, AbsmaxRef absmax, TensorRef output, QuantType quantType, int blocksize) =>
        Context.Native.Dequantize4Bit(Context.Handle, packed, absmax, (int)quantType, blocksize, output);

    /// <summary>Dequantizes packed NF4/FP4 with its state into <paramref name="output"/>.</summary>
    public void Dequantize4Bit<T>(ReadOnlySpan<byte> packed, QuantState state, Span<T> output)
        where T : unmanaged
    {
        var qt = RequireQuantType(state);
        Dequantize4Bit(TensorRef.FromReadOnlySpan(packed), state.AbsmaxView, TensorRef.FromSpan(output), qt, state.Blocksize);
    }

    /// <summary>Dequantizes packed NF4/FP4 with its state into a new array of the state's element count.</summary>
    public T[] Dequantize4Bit<T>(ReadOnlySpan<byte> packed, QuantState state)
        where T : unmanaged
    {
        RequireQuantType(state);
        var output = new T[checked((int)state.ElementCount)];
        Dequantize4Bit(packed, state, output.AsSpan());
        return output;
    }

    // ── 4-bit matmul ────────────────────────────────────────────────────────────────────────────────────────

    /// <summary>
    /// <c>output[M, N] = a[M, K] · dequant(W)[N, K]ᵀ (+ bias)</c>, tuned for small M. <paramref name="state"/> describes
    /// W (shape [N, K]).
    /// </summary>
    public void Gemv4Bit(TensorRef a, TensorRef weight, QuantState state, TensorRef output, TensorRef bias = default, WeightFormat format = WeightFormat.Standard) =>
        Context.Native.Gemm4Bit(Context.Handle, gemv: true, a, weight, (int)format, state.AbsmaxView, (int)RequireQuantType(state), state.Blocksize, bias, output);

    /// <summary>As <see cref="Gemv4Bit(TensorRef, TensorRef, QuantState, TensorRef, TensorRef, WeightFormat)"/> for any M.</summary>
    public void Gemm4Bit(TensorRef a, TensorRef weight, QuantState state, TensorRef output, TensorRef bias = default, WeightFormat format = WeightFormat.Standard) =>
        Context.Native.Gemm4Bit(Context.Handle, gemv: false, a, weight, (int)format, state.AbsmaxView, (int)RequireQuantType(state), state.Blocksize, bias, output);

    /// <summary>
    /// <c>output[M, N] = a[M, K] · dequant(W)[N, K]ᵀ (+ bias)</c> with the absmax given directly (plain or nested), for
    /// callers that keep their own buffers (engines, benchmarks). Tuned for small M.
    /// </summary>
    public void Gemv4Bit(TensorRef a, TensorRef weight, AbsmaxRef absmax, QuantType quantType, int blocksize, TensorRef output, TensorRef bias = default, WeightFormat format = WeightFormat.Standard) =>
        Context.Native.Gemm4Bit(Context.Handle, gemv: true, a, weight, (int)format, absmax, (int)quantType, blocksize, bias, output);

    /// <summary>As <see cref="Gemv4Bit(TensorRef, TensorRef, AbsmaxRef, QuantType, int, TensorRef, TensorRef, WeightFormat)"/> for any M.</summary>
    public void Gemm4Bit(TensorRef a, TensorRef weight, AbsmaxRef absmax, QuantType quantType, int blocksize, TensorRef output, TensorRef bias = default, WeightFormat format = WeightFormat.Standard) =>
        Context.Native.Gemm4Bit(Context.Handle, gemv: false, a, weight, (int)format, absmax, (int)quantType, blocksize, bias, output);

    // ── 4-bit weight layouts ────────────────────────────────────────────────────────────────────────────────

    /// <summary>Bytes a packed W[N, K] needs in <paramref name="format"/> (<c>weight_pack_size</c>).</summary>
    public long WeightPackSize(WeightFormat format, long n, long k, int blocksize = 64) =>
        Context.Native.WeightPackSize(Context.Handle, (int)format, n, k, blocksize);

    /// <summary>
    /// Converts a standard packed W[N, K] (as <see cref="Quantize4Bit(TensorRef, TensorRef, TensorRef, QuantType, int)"/>
    /// wrote it) into <paramref name="format"/>; <paramref name="output"/> holds <see cref="WeightPackSize"/> bytes.
    /// <see cref="WeightFormat.Backend"/> is this backend's fastest GEMV/GEMM layout; pass the same format to
    /// <c>Gemv4Bit</c>/<c>Gemm4Bit</c>. Reversible with <see cref="WeightUnpack(WeightFormat, TensorRef, long, long, int, TensorRef)"/>.
    /// </summary>
    public void WeightPack(WeightFormat format, TensorRef packed, long n, long k, int blocksize, TensorRef output) =>
        Context.Native.WeightPack(Context.Handle, (int)format, packed, n, k, blocksize, output);

    /// <summary>Inverse of <see cref="WeightPack(WeightFormat, TensorRef, long, long, int, TensorRef)"/>: back to the standard layout (<c>(N*K+1)/2</c> bytes).</summary>
    public void WeightUnpack(WeightFormat format, TensorRef packed, long n, long k, int blocksize, TensorRef output) =>
        Context.Native.WeightUnpack(Context.Handle, (int)format, packed, n, k, blocksize, output);

    /// <summary>Allocating <see cref="WeightPack(WeightFormat, TensorRef, long, long, int, TensorRef)"/> of a standard packed W[N, K].</summary>
    public byte[] WeightPack(WeightFormat format, ReadOnlySpan<byte> packed, long n, long k, int blocksize = 64)
    {
        var output = new byte[checked((int)WeightPackSize(format, n, k, blocksize))];
        WeightPack(format, TensorRef.FromReadOnlySpan(packed), n, k, blocksize, TensorRef.FromSpan<byte>(output));
        return output;
    }

    /// <summary>Allocating <see cref="WeightUnpack(WeightFormat, TensorRef, long, long, int, TensorRef)"/>: the standard packed W[N, K].</summary>
    public byte[] WeightUnpack(WeightFormat format, ReadOnlySpan<byte> packed, long n, long k, int blocksize = 64)
    {
        var output = new byte[checked((int)((n * k + 1) / 2))];
        WeightUnpack(format, TensorRef.FromReadOnlySpan(packed), n, k, blocksize, TensorRef.FromSpan<byte>(output));
        return output;
    }

    /// <summary>Allocating 4-bit matmul: <paramref name="a"/> is [M, K] row-major; the result is [M, N] of the same dtype.</summary>
    public T[] Gemm4Bit<T>(ReadOnlySpan<T> a, int m, ReadOnlySpan<byte> weight, QuantState state, ReadOnlySpan<T> bias = default)
        where T : unmanaged
    {
        var (n, k) = WeightShape(state);
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        var output = new T[checked(m * (int)n)];
        TensorRef b = bias.IsEmpty ? default : TensorRef.FromReadOnlySpan(bias);
        if (m <= 16)
        {
            Gemv4Bit(TensorRef.FromReadOnlySpan(a, m, k), TensorRef.FromReadOnlySpan(weight), state, TensorRef.FromSpan<T>(output, m, n), b);
        }
        else
        {
            Gemm4Bit(TensorRef.FromReadOnlySpan(a, m, k), TensorRef.FromReadOnlySpan(weight), state, TensorRef.FromSpan<T>(output, m, n), b);
        }

        return output;
    }

    private static QuantType RequireQuantType(QuantState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        return state.QuantType ?? throw new ArgumentException("the state is not a 4-bit (NF4/FP4) state", nameof(state));
    }

    private static (long N, long K) WeightShape(QuantState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Shape.Length != 2)
        {
            throw new ArgumentException($"a 4-bit weight state must have shape [N, K]; it has [{string.Join(", ", state.Shape)}]", nameof(state));
        }

        return (state.Shape[0], state.Shape[1]);
    }

    /// <summary>The cached signed dynamic map, for passing to native calls only (never handed out: callers get copies).</summary>
    private float[] DynamicSigned
    {
        get
        {
            if (_tables[(int)CodeTable.DynamicSigned] is null)
            {
                GetCodeTable(CodeTable.DynamicSigned);
            }

            return _tables[(int)CodeTable.DynamicSigned]!;
        }
    }

    private (byte[] Codes, float Offset, QuantState State2) CompressAbsmax(float[] absmax, int nestedBlocksize, Rounding rounding, float? offset)
    {
        float[] code = GetCodeTable(CodeTable.DynamicSigned);
        var q = new byte[absmax.Length];
        var absmax2 = new float[Blocks(absmax.Length, nestedBlocksize)];
        float used = QuantizeAbsmaxNested(TensorRef.FromReadOnlySpan<float>(absmax), TensorRef.FromSpan<byte>(q), TensorRef.FromSpan<float>(absmax2), nestedBlocksize, rounding, TensorRef.FromReadOnlySpan<float>(code), offset);
        return (q, used, new QuantState(absmax2, [absmax.Length], code, DType.F32, nestedBlocksize));
    }

    private static long[] ShapeOf(int length, ReadOnlySpan<long> shape)
    {
        if (shape.IsEmpty)
        {
            return [length];
        }

        long[] s = TensorShape.Create(shape).ToArray();
        long n = s.Aggregate(1L, (a, d) => checked(a * d));
        if (n != length)
        {
            throw new ArgumentException($"shape [{string.Join(", ", s)}] has {n} elements but the input has {length}", nameof(shape));
        }

        return s;
    }

    private static int Blocks(int n, int blocksize) => (int)(((long)n + blocksize - 1) / blocksize);
}
