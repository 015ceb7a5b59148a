using Bnb.Memory;
using Bnb.Quantization;

namespace Bnb.Serialization;

/// <summary>What kind of quantized layer a checkpoint prefix holds.</summary>
public enum CheckpointLayerKind
{
    /// <summary>bitsandbytes <c>Linear4bit</c> / <c>Params4bit</c>: packed NF4/FP4 + quant state.</summary>
    FourBit,

    /// <summary>bitsandbytes <c>Linear8bitLt</c> / <c>Int8Params</c>: row-wise int8 <c>weight</c> + <c>SCB</c>.</summary>
    Int8,
}

/// <summary>A quantized layer found in a checkpoint: its key prefix (<c>model.layers.0.mlp.up_proj</c>) and kind.</summary>
public sealed record CheckpointLayer(string Prefix, CheckpointLayerKind Kind);

/// <summary>A 4-bit weight as stored: the standard packed bytes (<c>(N·K + 1) / 2</c>) and its quant state.</summary>
/// <param name="Packed">Packed codes of W[N, K] row-major, element 2i in the high nibble.</param>
/// <param name="State">absmax (plain or nested), quant map, shape, dtype, blocksize, quant type.</param>
/// <param name="Storage">The dtype the packed bytes were stored as (bitsandbytes' <c>quant_storage</c>; usually U8).</param>
public sealed record FourBitWeight(byte[] Packed, QuantState State, SafetensorsDType Storage);

/// <summary>A row-wise int8 weight as stored by <c>Linear8bitLt</c>: <c>W ≈ CB · SCB[:, None] / 127</c>.</summary>
public sealed record Int8Weight(sbyte[] CB, float[] SCB, int OutFeatures, int InFeatures);

/// <summary>
/// The Hugging Face / bitsandbytes state-dict layout of quantized layers (spec §5), read from and written to
/// safetensors files. For a module prefix <c>P</c>:
/// <code>
///   4-bit  P.weight                                 U8  [(N·K+1)/2, 1]   packed codes (or quant_storage dtype)
///          P.weight.absmax                          F32 [blocks]         or U8 [blocks] when double-quantized
///          P.weight.quant_map                       F32 [16]             NF4/FP4 code table
///          P.weight.nested_absmax                   F32 [ceil(blocks/256)]  (double quant only)
///          P.weight.nested_quant_map                F32 [256]            signed dynamic map (double quant only)
///          P.weight.quant_state.bitsandbytes__nf4   U8  [len]            packed JSON (or __fp4)
///   int8   P.weight  I8 [N, K]    P.SCB  F32 [N]    P.weight_format  U8 []  (0 = row-major, the only accepted value)
///   both   P.bias    [N]          optional, in the model's dtype
/// </code>
/// Every read validates dtype, shape and presence of each key; errors name the tensor.
/// </summary>
public static class BnbCheckpoint
{
    /// <summary>Suffix (after <c>P.weight.</c>) of the packed JSON key, followed by the quant type name.</summary>
    public const string QuantStateKey = "quant_state.bitsandbytes__";

    /// <summary>The key of <paramref name="name"/> under module prefix <paramref name="prefix"/> (empty prefix: the bare name).</summary>
    public static string Key(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    /// <summary>Every quantized layer in <paramref name="file"/>, in key order.</summary>
    public static IReadOnlyList<CheckpointLayer> FindLayers(SafetensorsFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var layers = new List<CheckpointLayer>();
        foreach (var t in file.Tensors)
        {
            int at = t.Name.IndexOf("weight." + QuantStateKey, StringComparison.Ordinal);
            if (at >= 0 && (at == 0 || t.Name[at - 1] == '.') && t.Name.IndexOf('.', at + 7 + QuantStateKey.Length) < 0)
            {
                layers.Add(new CheckpointLayer(at == 0 ? "" : t.Name[..(at - 1)], CheckpointLayerKind.FourBit));
            }
            else if (t.Name == "SCB" || t.Name.EndsWith(".SCB", StringComparison.Ordinal))
            {
                string prefix = t.Name.Length == 3 ? "" : t.Name[..^4];
                if (file.TryGetInfo(Key(prefix, "weight"), out var w) && w.DType == SafetensorsDType.I8)
                {
                    layers.Add(new CheckpointLayer(prefix, CheckpointLayerKind.Int8));
                }
            }
        }

        layers.Sort((a, b) => string.CompareOrdinal(a.Prefix, b.Prefix));
        return layers;
    }

    /// <summary>Reads the 4-bit layer at <paramref name="prefix"/> (see the class remarks for the keys).</summary>
    /// <exception cref="CheckpointFormatException">A key is missing or unexpected, or has the wrong dtype or shape, or the packed JSON is invalid.</exception>
    public static FourBitWeight Read4Bit(SafetensorsFile file, string prefix)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(prefix);
        string weightKey = Key(prefix, "weight");
        string nf4Key = weightKey + "." + QuantStateKey + "nf4", fp4Key = weightKey + "." + QuantStateKey + "fp4";
        bool hasNf4 = file.Contains(nf4Key), hasFp4 = file.Contains(fp4Key);
        if (hasNf4 == hasFp4)
        {
            throw new CheckpointFormatException(
                hasNf4 ? $"has both {nf4Key} and {fp4Key}; exactly one packed quant state is allowed" : $"has no packed quant state ({nf4Key} or {fp4Key}); not a 4-bit bitsandbytes layer",
                weightKey, file.Source);
        }

        string stateKey = hasNf4 ? nf4Key : fp4Key;
        Expect(file, stateKey, SafetensorsDType.U8, null);
        PackedQuantStateInfo info;
        try
        {
            info = QuantState.ParsePackedJson(file.GetBytes(stateKey));
        }
        catch (FormatException e)
        {
            throw new CheckpointFormatException(e.Message, stateKey, file.Source, e);
        }

        if (info.QuantType != (hasNf4 ? QuantType.Nf4 : QuantType.Fp4))
        {
            throw new CheckpointFormatException($"says quant_type '{info.QuantType.Name()}' but its key says '{(hasNf4 ? "nf4" : "fp4")}'", stateKey, file.Source);
        }

        if (info.Blocksize <= 0 || info.Shape.Any(d => d < 0))
        {
            throw new CheckpointFormatException($"has blocksize {info.Blocksize} and shape [{string.Join(", ", info.Shape)}]; both must be positive", stateKey, file.Source);
        }

        long n = info.Shape.Aggregate(1L, (a, d) => checked(a * d));
        long blocks = (n + info.Blocksize - 1) / info.Blocksize;
        byte[] packed = ReadPacked(file, weightKey, n);
        string absmaxKey = weightKey + ".absmax", mapKey = weightKey + ".quant_map";
        string nestedAbsmaxKey = weightKey + ".nested_absmax", nestedMapKey = weightKey + ".nested_quant_map";
        float[] quantMap = Expect(file, mapKey, SafetensorsDType.F32, [16]).ToArray<float>(mapKey);
        HashSet<string> known = [stateKey, absmaxKey, mapKey];
        QuantState state;
        if (info.NestedBlocksize is int nestedBlocksize)
        {
            if (info.NestedDType != DType.F32 || nestedBlocksize <= 0)
            {
                throw new CheckpointFormatException($"nested_dtype must be float32 and nested_blocksize positive (got {info.NestedDType?.TorchName()}, {nestedBlocksize})", stateKey, file.Source);
            }

            byte[] codes = Expect(file, absmaxKey, SafetensorsDType.U8, [blocks]).ToArray<byte>(absmaxKey);
            float[] nestedAbsmax = Expect(file, nestedAbsmaxKey, SafetensorsDType.F32, [(blocks + nestedBlocksize - 1) / nestedBlocksize]).ToArray<float>(nestedAbsmaxKey);
            float[] nestedMap = Expect(file, nestedMapKey, SafetensorsDType.F32, [256]).ToArray<float>(nestedMapKey);
            known.UnionWith([nestedAbsmaxKey, nestedMapKey]);
            var state2 = new QuantState(nestedAbsmax, [nestedAbsmax.Length], nestedMap, DType.F32, nestedBlocksize);
            state = new QuantState(codes, (float)info.NestedOffset!.Value, state2, info.Shape, quantMap, info.DType, info.Blocksize, info.QuantType);
        }
        else
        {
            float[] absmax = Expect(file, absmaxKey, SafetensorsDType.F32, [blocks]).ToArray<float>(absmaxKey);
            state = new QuantState(absmax, info.Shape, quantMap, info.DType, info.Blocksize, info.QuantType);
        }

        // bitsandbytes' QuantState.from_dict rejects keys it does not know; so do we.
        string? stray = file.Tensors.Select(t => t.Name).FirstOrDefault(k => k.StartsWith(weightKey + ".", StringComparison.Ordinal) && !known.Contains(k));
        if (stray is not null)
        {
            throw new CheckpointFormatException($"is not part of a {(state.Nested ? "double-quantized" : "plain")} 4-bit quant state", stray, file.Source);
        }

        return new FourBitWeight(packed, state, file.GetInfo(weightKey).DType);
    }

    /// <summary>Reads the int8 layer at <paramref name="prefix"/>: <c>weight</c> I8 [N, K], <c>SCB</c> F32 [N], optional <c>weight_format</c> (must be 0).</summary>
    /// <exception cref="CheckpointFormatException">A key is missing, has the wrong dtype or shape, or the weight format is not row-major.</exception>
    public static Int8Weight ReadInt8(SafetensorsFile file, string prefix)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(prefix);
        string weightKey = Key(prefix, "weight"), scbKey = Key(prefix, "SCB"), formatKey = Key(prefix, "weight_format");
        var w = Expect(file, weightKey, SafetensorsDType.I8, null).GetInfo(weightKey);
        if (w.Shape.Length != 2 || w.Shape[0] > int.MaxValue || w.Shape[1] > int.MaxValue)
        {
            throw new CheckpointFormatException($"must be a 2-D [out_features, in_features] int8 matrix, not {w.ShapeText}", weightKey, file.Source);
        }

        float[] scb = Expect(file, scbKey, SafetensorsDType.F32, [w.Shape[0]]).ToArray<float>(scbKey);
        if (file.TryGetInfo(formatKey, out var f))
        {
            if (f.DType != SafetensorsDType.U8 || f.ElementCount != 1 || f.Shape.Length > 1)
            {
                throw new CheckpointFormatException($"must be a uint8 scalar, not {f.DType.Name()} {f.ShapeText}", formatKey, file.Source);
            }

            byte format = file.GetBytes(formatKey)[0];
            if (format != 0)
            {
                string name = format switch { 1 => "col32", 2 => "col_turing", 3 => "col_ampere", _ => "unknown" };
                throw new CheckpointFormatException($"is {format} ({name}); only 0 (row-major) weights can be loaded", formatKey, file.Source);
            }
        }

        return new Int8Weight(file.ToArray<sbyte>(weightKey), scb, (int)w.Shape[0], (int)w.Shape[1]);
    }

    /// <summary>The optional <c>P.bias</c> [N] as float32 (stored as F32, F16 or BF16); null when absent.</summary>
    public static float[]? ReadBias(SafetensorsFile file, string prefix, long outFeatures)
    {
        ArgumentNullException.ThrowIfNull(file);
        string key = Key(prefix, "bias");
        if (!file.TryGetInfo(key, out var info))
        {
            return null;
        }

        if (info.Shape.Length != 1 || info.Shape[0] != outFeatures)
        {
            throw new CheckpointFormatException($"has shape {info.ShapeText}; the layer has {outFeatures} outputs", key, file.Source);
        }

        return ReadFloats(file, key);
    }

    /// <summary>A float tensor (F32, F16 or BF16) converted to float32.</summary>
    public static float[] ReadFloats(SafetensorsFile file, string key)
    {
        ArgumentNullException.ThrowIfNull(file);
        var info = file.GetInfo(key);
        return info.DType switch
        {
            SafetensorsDType.F32 => file.ToArray<float>(key),
            SafetensorsDType.F16 => [.. file.GetSpan<Half>(key).ToArray().Select(h => (float)h)],
            SafetensorsDType.BF16 => [.. file.GetSpan<BFloat16>(key).ToArray().Select(b => (float)b)],
            _ => throw new CheckpointFormatException($"has dtype {info.DType.Name()}; expected F32, F16 or BF16", key, file.Source),
        };
    }

    /// <summary>A layer's weight entries with <c>P.bias</c> (when there is one) inserted after <c>P.weight</c>, as a state dict orders them.</summary>
    public static IReadOnlyList<SafetensorsEntry> WithBias(IReadOnlyList<SafetensorsEntry> weightEntries, string prefix, float[]? bias, SafetensorsDType biasDType)
    {
        ArgumentNullException.ThrowIfNull(weightEntries);
        var entries = new List<SafetensorsEntry>(weightEntries);
        if (bias is not null)
        {
            entries.Insert(1, FloatEntry(Key(prefix, "bias"), bias, biasDType));
        }

        return entries;
    }

    /// <summary>A float32 vector stored as F32, F16 or BF16 (rounded to nearest even).</summary>
    public static SafetensorsEntry FloatEntry(string name, ReadOnlySpan<float> values, SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F32 => SafetensorsEntry.Of(name, values),
        SafetensorsDType.F16 => SafetensorsEntry.Of<Half>(name, [.. values.ToArray().Select(v => (Half)v)]),
        SafetensorsDType.BF16 => SafetensorsEntry.Of<BFloat16>(name, [.. values.ToArray().Select(v => (BFloat16)v)]),
        _ => throw new ArgumentException($"{name}: dtype {dtype.Name()} is not F32, F16 or BF16", nameof(dtype)),
    };

    /// <summary>The entries bitsandbytes' <c>Linear4bit</c> state dict holds for a weight (bias not included), in its order.</summary>
    public static IReadOnlyList<SafetensorsEntry> Entries4Bit(string prefix, ReadOnlySpan<byte> packed, QuantState state)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        ArgumentNullException.ThrowIfNull(state);
        QuantType qt = state.QuantType ?? throw new ArgumentException("the state is not a 4-bit (NF4/FP4) state", nameof(state));
        long n = state.ElementCount;
        if (packed.Length != (n + 1) / 2)
        {
            throw new ArgumentException($"packed weight has {packed.Length} bytes; shape [{string.Join(", ", state.Shape)}] needs {(n + 1) / 2}", nameof(packed));
        }

        if (state.Code.Length != 16)
        {
            throw new ArgumentException($"a 4-bit quant map has 16 entries, not {state.Code.Length}", nameof(state));
        }

        string w = Key(prefix, "weight");
        var entries = new List<SafetensorsEntry> { SafetensorsEntry.Of(w, packed, packed.Length, 1) };
        if (state.State2 is { } s2)
        {
            entries.Add(SafetensorsEntry.Of<byte>(w + ".absmax", state.QuantizedAbsmax));
            entries.Add(SafetensorsEntry.Of<float>(w + ".quant_map", state.Code));
            entries.Add(SafetensorsEntry.Of<float>(w + ".nested_absmax", s2.Absmax));
            entries.Add(SafetensorsEntry.Of<float>(w + ".nested_quant_map", s2.Code));
        }
        else
        {
            entries.Add(SafetensorsEntry.Of<float>(w + ".absmax", state.Absmax));
            entries.Add(SafetensorsEntry.Of<float>(w + ".quant_map", state.Code));
        }

        entries.Add(SafetensorsEntry.Of<byte>(w + "." + QuantStateKey + qt.Name(), state.ToPackedJson()));
        return entries;
    }

    /// <summary>The entries bitsandbytes' <c>Linear8bitLt</c> state dict holds for a weight (bias not included): weight, SCB, weight_format.</summary>
    public static IReadOnlyList<SafetensorsEntry> EntriesInt8(string prefix, Int8Weight weight)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.CB.Length != (long)weight.OutFeatures * weight.InFeatures || weight.SCB.Length != weight.OutFeatures)
        {
            throw new ArgumentException($"CB has {weight.CB.Length} and SCB {weight.SCB.Length} values for [{weight.OutFeatures}, {weight.InFeatures}]", nameof(weight));
        }

        return
        [
            SafetensorsEntry.Of<sbyte>(Key(prefix, "weight"), weight.CB, weight.OutFeatures, weight.InFeatures),
            SafetensorsEntry.Of<float>(Key(prefix, "SCB"), weight.SCB),
            new SafetensorsEntry(Key(prefix, "weight_format"), SafetensorsDType.U8, [], new byte[] { 0 }),
        ];
    }

    /// <summary>The packed bytes of <paramref name="weightKey"/>: any storage dtype, shape [x, 1] or [x], holding ⌈n/2⌉ bytes.</summary>
    private static byte[] ReadPacked(SafetensorsFile file, string weightKey, long n)
    {
        var w = file.GetInfo(weightKey);
        long needed = (n + 1) / 2;
        int itemsize = w.DType.SizeOf();

        // quantize_4bit allocates ((n + 1) // (2·itemsize), 1) elements of the storage dtype.
        long rows = (n + 1) / (2 * itemsize);
        bool shapeOk = (w.Shape.Length == 2 && w.Shape[1] == 1 && w.Shape[0] == rows) || (w.Shape.Length == 1 && w.Shape[0] == rows);
        if (!shapeOk || w.ByteLength < needed)
        {
            throw new CheckpointFormatException($"is {w.DType.Name()} {w.ShapeText}; {n} packed 4-bit values need [{rows}, 1] of {w.DType.Name()} ({needed} bytes)", weightKey, file.Source);
        }

        return file.GetBytes(weightKey)[..(int)needed].ToArray();
    }

    /// <summary>Checks presence, dtype and (when given) shape of <paramref name="key"/>.</summary>
    private static SafetensorsFile Expect(SafetensorsFile file, string key, SafetensorsDType dtype, long[]? shape)
    {
        if (!file.TryGetInfo(key, out var info))
        {
            throw new CheckpointFormatException("is missing", key, file.Source);
        }

        if (info.DType != dtype)
        {
            throw new CheckpointFormatException($"has dtype {info.DType.Name()}; expected {dtype.Name()}", key, file.Source);
        }

        if (shape is not null && !info.Shape.AsSpan().SequenceEqual(shape))
        {
            throw new CheckpointFormatException($"has shape {info.ShapeText}; expected [{string.Join(", ", shape)}]", key, file.Source);
        }

        return file;
    }
}
