using System.Globalization;
using System.Text;
using System.Text.Json;
using Bnb.Memory;

namespace Bnb.Quantization;

/// <summary>
/// Everything needed to dequantize a blockwise-quantized tensor, mirroring bitsandbytes' <c>QuantState</c>:
/// per-block absmax (float32, or 8-bit codes plus <see cref="State2"/> when double-quantized), the original shape
/// and dtype, the code table, the blocksize and, for 4-bit, the quant type.
/// </summary>
public sealed class QuantState
{
    /// <summary>bitsandbytes always double-quantizes 4-bit statistics with this blocksize.</summary>
    public const int NestedBlocksize4Bit = 256;

    /// <summary>A state with plain float32 absmax.</summary>
    public QuantState(float[] absmax, long[] shape, float[] code, DType dtype, int blocksize, QuantType? quantType = null)
        : this(shape, code, dtype, blocksize, quantType)
    {
        ArgumentNullException.ThrowIfNull(absmax);
        Absmax = absmax;
    }

    /// <summary>A double-quantized state: 8-bit absmax codes, their offset and the nested state (absmax2, code2, blocksize2).</summary>
    public QuantState(byte[] quantizedAbsmax, float offset, QuantState state2, long[] shape, float[] code, DType dtype, int blocksize, QuantType? quantType = null)
        : this(shape, code, dtype, blocksize, quantType)
    {
        ArgumentNullException.ThrowIfNull(quantizedAbsmax);
        ArgumentNullException.ThrowIfNull(state2);
        if (state2.Absmax is null)
        {
            throw new ArgumentException("the nested state must hold plain float32 absmax", nameof(state2));
        }

        QuantizedAbsmax = quantizedAbsmax;
        Offset = offset;
        State2 = state2;
    }

    private QuantState(long[] shape, float[] code, DType dtype, int blocksize, QuantType? quantType)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(code);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blocksize);
        foreach (long d in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(d, nameof(shape));
        }

        Shape = shape;
        Code = code;
        DType = dtype;
        Blocksize = blocksize;
        QuantType = quantType;
    }

    /// <summary>Float32 absmax per block; null when <see cref="Nested"/>.</summary>
    public float[]? Absmax { get; }

    /// <summary>8-bit codes of <c>absmax - Offset</c> when <see cref="Nested"/>; else null.</summary>
    public byte[]? QuantizedAbsmax { get; }

    /// <summary>Shape of the original tensor.</summary>
    public long[] Shape { get; }

    /// <summary>Code table: 256 entries for 8-bit, 16 for 4-bit.</summary>
    public float[] Code { get; }

    /// <summary>Dtype of the original tensor (what dequantization returns by default).</summary>
    public DType DType { get; }

    public int Blocksize { get; }

    /// <summary>NF4/FP4 for 4-bit states; null for 8-bit blockwise states.</summary>
    public QuantType? QuantType { get; }

    /// <summary>Mean of the original absmax, added back after dequantizing the nested codes.</summary>
    public float Offset { get; }

    /// <summary>The nested statistics (absmax2, code2, blocksize2) when double-quantized.</summary>
    public QuantState? State2 { get; }

    public bool Nested => State2 is not null;

    /// <summary>Number of elements of the original tensor.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, d) => checked(a * d));

    /// <summary>Number of absmax blocks.</summary>
    public long BlockCount => (ElementCount + Blocksize - 1) / Blocksize;

    /// <summary>The absmax as the ABI's <c>bnb_absmax</c> view.</summary>
    public AbsmaxRef AbsmaxView => State2 is { } s2
        ? AbsmaxRef.Nested(TensorRef.FromReadOnlySpan<byte>(QuantizedAbsmax), TensorRef.FromReadOnlySpan<float>(s2.Absmax), TensorRef.FromReadOnlySpan<float>(s2.Code), s2.Blocksize, Offset)
        : AbsmaxRef.Plain(TensorRef.FromReadOnlySpan<float>(Absmax));

    /// <summary>
    /// The bytes bitsandbytes stores under <c>quant_state.bitsandbytes__&lt;qt&gt;</c>: <c>json.dumps</c> of
    /// quant_type, blocksize, dtype, shape and, when nested, nested_blocksize, nested_dtype, nested_offset.
    /// </summary>
    /// <exception cref="InvalidOperationException">An 8-bit state (no quant type) has no packed form.</exception>
    public byte[] ToPackedJson()
    {
        if (QuantType is not { } qt)
        {
            throw new InvalidOperationException("only 4-bit states have a packed quant_state entry");
        }

        var sb = new StringBuilder();
        sb.Append("{\"quant_type\": \"").Append(qt.Name()).Append('"');
        sb.Append(", \"blocksize\": ").Append(Blocksize.ToString(CultureInfo.InvariantCulture));
        sb.Append(", \"dtype\": \"").Append(DType.TorchName()).Append('"');
        sb.Append(", \"shape\": [").Append(string.Join(", ", Shape.Select(d => d.ToString(CultureInfo.InvariantCulture)))).Append(']');
        if (State2 is { } s2)
        {
            sb.Append(", \"nested_blocksize\": ").Append(s2.Blocksize.ToString(CultureInfo.InvariantCulture));
            sb.Append(", \"nested_dtype\": \"").Append(s2.DType.TorchName()).Append('"');
            sb.Append(", \"nested_offset\": ").Append(PythonFloat.Repr(Offset));
        }

        sb.Append('}');
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>Parses the packed JSON entry (see <see cref="ToPackedJson"/>).</summary>
    /// <exception cref="FormatException">Not valid JSON, a missing or unknown key, or a value of the wrong kind.</exception>
    public static PackedQuantStateInfo ParsePackedJson(ReadOnlySpan<byte> json)
    {
        string? quantType = null, dtype = null, nestedDtype = null;
        int? blocksize = null, nestedBlocksize = null;
        long[]? shape = null;
        double? nestedOffset = null;
        try
        {
            using var doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { AllowTrailingCommas = false });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException("packed quant state must be a JSON object");
            }

            foreach (var p in doc.RootElement.EnumerateObject())
            {
                switch (p.Name)
                {
                    case "quant_type": quantType = p.Value.GetString(); break;
                    case "blocksize": blocksize = p.Value.GetInt32(); break;
                    case "dtype": dtype = p.Value.GetString(); break;
                    case "shape": shape = p.Value.ValueKind == JsonValueKind.Null ? [] : [.. p.Value.EnumerateArray().Select(e => e.GetInt64())]; break;
                    case "nested_blocksize": nestedBlocksize = p.Value.GetInt32(); break;
                    case "nested_dtype": nestedDtype = p.Value.GetString(); break;
                    case "nested_offset": nestedOffset = ParseNumber(p.Value); break;
                    default: throw new FormatException($"unknown key '{p.Name}' in packed quant state");
                }
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new FormatException($"packed quant state is not valid: {e.Message}", e);
        }

        if (quantType is null || blocksize is null || dtype is null || shape is null)
        {
            throw new FormatException("packed quant state lacks one of quant_type, blocksize, dtype, shape");
        }

        bool nested = nestedBlocksize.HasValue || nestedDtype is not null || nestedOffset.HasValue;
        if (nested && (nestedBlocksize is null || nestedDtype is null || nestedOffset is null))
        {
            throw new FormatException("packed quant state has some but not all of nested_blocksize, nested_dtype, nested_offset");
        }

        return new PackedQuantStateInfo(
            QuantTypes.Parse(quantType), blocksize.Value, DTypes.FromTorchName(dtype), shape,
            nestedBlocksize, nestedDtype is null ? null : DTypes.FromTorchName(nestedDtype), nestedOffset);
    }

    /// <summary>
    /// Rebuilds a 4-bit state from what a checkpoint holds: the packed JSON plus the tensors <c>absmax</c>,
    /// <c>quant_map</c> and, when nested, <c>nested_absmax</c> and <c>nested_quant_map</c>.
    /// </summary>
    public static QuantState FromPacked(ReadOnlySpan<byte> packedJson, ReadOnlyMemory<byte> absmaxBytes, float[] quantMap, float[]? nestedAbsmax = null, float[]? nestedQuantMap = null)
    {
        var info = ParsePackedJson(packedJson);
        ArgumentNullException.ThrowIfNull(quantMap);
        if (info.NestedBlocksize is int nb)
        {
            if (nestedAbsmax is null || nestedQuantMap is null)
            {
                throw new ArgumentException("a nested quant state needs nested_absmax and nested_quant_map");
            }

            var state2 = new QuantState(nestedAbsmax, [nestedAbsmax.Length], nestedQuantMap, info.NestedDType ?? DType.F32, nb);
            return new QuantState(absmaxBytes.ToArray(), (float)info.NestedOffset!.Value, state2, info.Shape, quantMap, info.DType, info.Blocksize, info.QuantType);
        }

        if (absmaxBytes.Length % sizeof(float) != 0)
        {
            throw new ArgumentException($"absmax has {absmaxBytes.Length} bytes, not a whole number of float32 values", nameof(absmaxBytes));
        }

        float[] absmax = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(absmaxBytes.Span).ToArray();
        return new QuantState(absmax, info.Shape, quantMap, info.DType, info.Blocksize, info.QuantType);
    }

    private static double ParseNumber(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Number => e.GetDouble(),
        _ => throw new FormatException("nested_offset must be a number"),
    };
}

/// <summary>The non-tensor fields of a packed 4-bit quant state.</summary>
public sealed record PackedQuantStateInfo(
    QuantType QuantType,
    int Blocksize,
    DType DType,
    long[] Shape,
    int? NestedBlocksize,
    DType? NestedDType,
    double? NestedOffset);

/// <summary>A quantized tensor: its bytes (8-bit codes or packed 4-bit) and the state to dequantize them.</summary>
public sealed record QuantizedTensor(byte[] Data, QuantState State);
