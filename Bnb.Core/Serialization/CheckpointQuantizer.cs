using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Bnb.Memory;
using Bnb.Nn;
using Bnb.Quantization;

namespace Bnb.Serialization;

/// <summary>Target format of <see cref="CheckpointQuantizer"/>.</summary>
public enum CheckpointFormat
{
    /// <summary>LLM.int8() row-wise int8 (<c>Linear8bitLt</c> layout).</summary>
    Int8,

    /// <summary>NF4 (<c>Linear4bit</c> layout).</summary>
    Nf4,

    /// <summary>FP4 (<c>Linear4bit</c> layout).</summary>
    Fp4,
}

/// <summary>Options of <see cref="CheckpointQuantizer.Quantize"/>.</summary>
public sealed record CheckpointQuantizeOptions
{
    public CheckpointFormat Format { get; init; } = CheckpointFormat.Nf4;

    /// <summary>Double-quantize the 4-bit absmax (<c>bnb_4bit_use_double_quant</c>).</summary>
    public bool DoubleQuant { get; init; }

    /// <summary>4-bit blocksize (Transformers always uses 64).</summary>
    public int Blocksize { get; init; } = 64;

    /// <summary>
    /// Modules to leave unquantized: a name matches a pattern with <c>*</c>/<c>?</c> as a glob over the module name,
    /// else when the pattern is one or more whole dot-separated segments of it (<c>lm_head</c>, <c>attention.output</c>).
    /// </summary>
    public IReadOnlyList<string> Skip { get; init; } = [];

    /// <summary>Also skip <see cref="CheckpointQuantizer.DefaultSkips"/> (embeddings and the LM head, which are not nn.Linear layers bitsandbytes replaces, or which Transformers keeps in full precision).</summary>
    public bool UseDefaultSkips { get; init; } = true;

    /// <summary>Recorded as <c>bnb_4bit_compute_dtype</c>.</summary>
    public DType ComputeDType { get; init; } = DType.F32;

    /// <summary>Recorded as <c>llm_int8_threshold</c>.</summary>
    public double Int8Threshold { get; init; } = 6.0;
}

/// <summary>What happened to one tensor of the source file.</summary>
/// <param name="Name">Source key.</param>
/// <param name="Shape">Source shape.</param>
/// <param name="DType">Source dtype.</param>
/// <param name="Action"><c>int8</c>, <c>nf4</c>, <c>fp4</c> (with <c>+dq</c>), <c>skipped</c> (matched a skip pattern) or <c>copied</c>.</param>
/// <param name="BytesBefore">Source bytes.</param>
/// <param name="BytesAfter">Bytes in the output (all keys of the layer's weight).</param>
/// <param name="MeanAbsError">Mean |dequantized − original| (0 for copies).</param>
/// <param name="RelativeError">MeanAbsError / mean |original|.</param>
public sealed record TensorReport(string Name, long[] Shape, SafetensorsDType DType, string Action, long BytesBefore, long BytesAfter, double MeanAbsError, double RelativeError);

/// <summary>Result of <see cref="CheckpointQuantizer.Quantize"/>.</summary>
public sealed record CheckpointQuantizeResult(IReadOnlyList<TensorReport> Tensors, string SafetensorsPath, string ConfigPath)
{
    public long BytesBefore => Tensors.Sum(t => t.BytesBefore);

    public long BytesAfter => Tensors.Sum(t => t.BytesAfter);

    public int QuantizedCount => Tensors.Count(t => t.Action is not ("copied" or "skipped"));
}

/// <summary>
/// Quantizes the linear weights of a safetensors model (F32/F16/BF16) into a bitsandbytes-layout checkpoint that
/// Transformers loads with its <c>quantization_config</c>: every 2-D <c>*.weight</c> that no skip pattern matches
/// becomes a <see cref="Linear4bit"/> or <see cref="Linear8bitLt"/> state dict (spec §5), everything else is copied
/// unchanged, and <c>config.json</c> (the source's, when one sits next to it) gets <c>quantization_config</c>.
/// </summary>
public static class CheckpointQuantizer
{
    /// <summary>Skipped unless <see cref="CheckpointQuantizeOptions.UseDefaultSkips"/> is off.</summary>
    public static readonly IReadOnlyList<string> DefaultSkips = ["*embed*", "lm_head"];

    /// <summary>The output file names inside the output directory.</summary>
    public const string ModelFileName = "model.safetensors", ConfigFileName = "config.json";

    /// <summary>
    /// Reads <paramref name="inputPath"/>, writes <c>model.safetensors</c> and <c>config.json</c> into
    /// <paramref name="outputDirectory"/> (each atomically), and reloads the output to check it bit for bit.
    /// </summary>
    /// <param name="quantizer">Backend that quantizes.</param>
    /// <param name="inputPath">Source safetensors file.</param>
    /// <param name="outputDirectory">Created if needed; must not hold the source file.</param>
    /// <param name="options">Format and skip rules.</param>
    /// <param name="progress">Reports (tensors done, total, current name).</param>
    /// <exception cref="CheckpointFormatException">The source is not a valid safetensors file, or already quantized.</exception>
    public static CheckpointQuantizeResult Quantize(Quantizer quantizer, string inputPath, string outputDirectory, CheckpointQuantizeOptions options, IProgress<(int Done, int Total, string Name)>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Blocksize is < 32 or > 4096 || (options.Blocksize & (options.Blocksize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Blocksize, "blocksize must be a power of two in [32, 4096]");
        }

        string output = Path.GetFullPath(Path.Combine(outputDirectory, ModelFileName));
        if (string.Equals(output, Path.GetFullPath(inputPath), StringComparison.Ordinal))
        {
            throw new ArgumentException($"the output {output} would overwrite the input", nameof(outputDirectory));
        }

        using var source = SafetensorsFile.Open(inputPath);
        if (BnbCheckpoint.FindLayers(source).Count > 0)
        {
            throw new CheckpointFormatException("already holds bitsandbytes-quantized layers", BnbCheckpoint.FindLayers(source)[0].Prefix, source.Source);
        }

        List<string> skips = [.. options.Skip, .. options.UseDefaultSkips ? DefaultSkips : []];
        var reports = new List<TensorReport>();
        var quantized = new Dictionary<string, IReadOnlyList<SafetensorsEntry>>(StringComparer.Ordinal);
        var skippedModules = new List<string>();
        int done = 0;
        foreach (SafetensorsTensorInfo t in source.Tensors)
        {
            progress?.Report((done, source.Tensors.Count, t.Name));
            bool candidate = IsLinearWeight(t);
            string module = candidate ? ModuleOf(t.Name) : "";
            if (candidate && skips.Any(p => Matches(module, p)))
            {
                skippedModules.Add(module);
                reports.Add(new TensorReport(t.Name, t.Shape, t.DType, "skipped", t.ByteLength, t.ByteLength, 0, 0));
            }
            else if (candidate)
            {
                var (entries, report) = QuantizeOne(quantizer, source, t, module, options);
                quantized[t.Name] = entries;
                reports.Add(report);
            }
            else
            {
                reports.Add(new TensorReport(t.Name, t.Shape, t.DType, "copied", t.ByteLength, t.ByteLength, 0, 0));
            }

            done++;
        }

        progress?.Report((done, source.Tensors.Count, "writing"));
        Directory.CreateDirectory(outputDirectory);
        var metadata = new List<KeyValuePair<string, string>>(source.Header.MetadataEntries);
        if (!metadata.Any(p => p.Key == "format"))
        {
            // Transformers refuses safetensors files without format=pt metadata.
            metadata.Insert(0, new("format", "pt"));
        }

        var specs = new List<SafetensorsTensorSpec>();
        foreach (SafetensorsTensorInfo t in source.Tensors)
        {
            if (quantized.TryGetValue(t.Name, out var entries))
            {
                specs.AddRange(entries.Select(e => new SafetensorsTensorSpec(e.Name, e.DType, e.Shape)));
            }
            else
            {
                specs.Add(new SafetensorsTensorSpec(t.Name, t.DType, t.Shape));
            }
        }

        using (var writer = SafetensorsWriter.Create(output, specs, metadata, alignTensors: true))
        {
            foreach (SafetensorsTensorInfo t in source.Tensors)
            {
                if (quantized.TryGetValue(t.Name, out var entries))
                {
                    foreach (var e in entries)
                    {
                        writer.Write(e.Name, e.Data.Span);
                    }
                }
                else
                {
                    writer.Write(t.Name, source.GetBytes(t.Name));
                }
            }

            writer.Commit();
        }

        string configPath = Path.Combine(outputDirectory, ConfigFileName);
        string sourceConfig = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(inputPath)) ?? ".", ConfigFileName);
        JsonObject? baseConfig = File.Exists(sourceConfig) ? JsonNode.Parse(File.ReadAllText(sourceConfig)) as JsonObject : null;
        new BnbQuantizationConfig
        {
            LoadIn4Bit = options.Format != CheckpointFormat.Int8,
            QuantType = options.Format == CheckpointFormat.Fp4 ? QuantType.Fp4 : QuantType.Nf4,
            DoubleQuant = options.DoubleQuant,
            ComputeDType = options.ComputeDType,
            Int8Threshold = options.Int8Threshold,
            SkipModules = skippedModules.Count == 0 ? null : skippedModules,
        }.WriteConfigFile(configPath, baseConfig);

        var result = new CheckpointQuantizeResult(reports, output, configPath);
        Verify(source, quantized, result, options);
        progress?.Report((done, source.Tensors.Count, "verified"));
        return result;
    }

    /// <summary>A 2-D float tensor named <c>weight</c> or <c>*.weight</c>.</summary>
    public static bool IsLinearWeight(SafetensorsTensorInfo t) =>
        t.Shape.Length == 2 && t.DType is SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16
        && (t.Name == "weight" || t.Name.EndsWith(".weight", StringComparison.Ordinal))
        && t.Shape[0] > 0 && t.Shape[1] > 0 && t.Shape[0] <= int.MaxValue && t.Shape[1] <= int.MaxValue && t.Shape[0] * t.Shape[1] <= int.MaxValue;

    /// <summary>Does skip <paramref name="pattern"/> match <paramref name="module"/> (see <see cref="CheckpointQuantizeOptions.Skip"/>)?</summary>
    public static bool Matches(string module, string pattern)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(pattern);
        if (pattern.Contains('*', StringComparison.Ordinal) || pattern.Contains('?', StringComparison.Ordinal))
        {
            string regex = "^" + Regex.Escape(pattern).Replace("\\*", ".*", StringComparison.Ordinal).Replace("\\?", ".", StringComparison.Ordinal) + "$";
            return Regex.IsMatch(module, regex, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }

        return ("." + module + ".").Contains("." + pattern + ".", StringComparison.Ordinal);
    }

    private static string ModuleOf(string weightName) => weightName == "weight" ? "" : weightName[..^".weight".Length];

    private static (IReadOnlyList<SafetensorsEntry> Entries, TensorReport Report) QuantizeOne(Quantizer q, SafetensorsFile source, SafetensorsTensorInfo t, string module, CheckpointQuantizeOptions options) =>
        t.DType switch
        {
            SafetensorsDType.F32 => QuantizeOne<float>(q, source, t, module, options),
            SafetensorsDType.F16 => QuantizeOne<Half>(q, source, t, module, options),
            _ => QuantizeOne<BFloat16>(q, source, t, module, options),
        };

    private static (IReadOnlyList<SafetensorsEntry> Entries, TensorReport Report) QuantizeOne<T>(Quantizer q, SafetensorsFile source, SafetensorsTensorInfo t, string module, CheckpointQuantizeOptions options)
        where T : unmanaged
    {
        ReadOnlySpan<T> w = source.GetSpan<T>(t.Name);
        int n = (int)t.Shape[0], k = (int)t.Shape[1];
        IReadOnlyList<SafetensorsEntry> entries;
        float[] restored;
        string action;
        if (options.Format == CheckpointFormat.Int8)
        {
            Int8Weight weight = Linear8bitLt.QuantizeWeight(q, w, n, k);
            entries = BnbCheckpoint.EntriesInt8(module, weight);
            restored = q.Int8VectorwiseDequant(weight.CB, weight.SCB);
            action = "int8";
        }
        else
        {
            QuantType qt = options.Format == CheckpointFormat.Fp4 ? QuantType.Fp4 : QuantType.Nf4;
            QuantizedTensor r = q.Quantize4Bit(w, [n, k], qt, options.Blocksize, options.DoubleQuant);
            entries = BnbCheckpoint.Entries4Bit(module, r.Data, r.State);
            restored = q.Dequantize4Bit<float>(r.Data, r.State);
            action = qt.Name() + (options.DoubleQuant ? "+dq" : "");
        }

        double err = 0, mag = 0;
        for (int i = 0; i < restored.Length; i++)
        {
            double x = FloatValue(w[i]);
            err += Math.Abs(restored[i] - x);
            mag += Math.Abs(x);
        }

        long after = entries.Sum(e => (long)e.Data.Length);
        var report = new TensorReport(t.Name, t.Shape, t.DType, action, t.ByteLength, after, err / restored.Length, mag == 0 ? 0 : err / mag);
        return (entries, report);
    }

    private static double FloatValue<T>(T v)
        where T : unmanaged => v switch
        {
            float f => f,
            Half h => (double)h,
            BFloat16 b => (float)b,
            _ => throw new NotSupportedException(typeof(T).Name),
        };

    /// <summary>Reloads the written file: every tensor byte-identical to what was meant to be written, every quantized layer parses back through the checkpoint reader.</summary>
    private static void Verify(SafetensorsFile source, Dictionary<string, IReadOnlyList<SafetensorsEntry>> quantized, CheckpointQuantizeResult result, CheckpointQuantizeOptions options)
    {
        using var written = SafetensorsFile.Open(result.SafetensorsPath);
        foreach (SafetensorsTensorInfo t in source.Tensors)
        {
            if (!quantized.TryGetValue(t.Name, out var entries))
            {
                if (!source.GetBytes(t.Name).SequenceEqual(written.GetBytes(t.Name)))
                {
                    throw new InvalidOperationException($"verification failed: copied tensor '{t.Name}' differs after reload");
                }

                continue;
            }

            foreach (var e in entries)
            {
                if (!e.Data.Span.SequenceEqual(written.GetBytes(e.Name)))
                {
                    throw new InvalidOperationException($"verification failed: '{e.Name}' differs after reload");
                }
            }

            string module = ModuleOf(t.Name);
            if (options.Format == CheckpointFormat.Int8)
            {
                Int8Weight back = BnbCheckpoint.ReadInt8(written, module);
                if (!MemoryMarshal.AsBytes(back.CB.AsSpan()).SequenceEqual(written.GetBytes(t.Name)))
                {
                    throw new InvalidOperationException($"verification failed: '{t.Name}' int8 weights differ after reload");
                }
            }
            else
            {
                FourBitWeight back = BnbCheckpoint.Read4Bit(written, module);
                if (!back.Packed.AsSpan().SequenceEqual(entries[0].Data.Span))
                {
                    throw new InvalidOperationException($"verification failed: '{t.Name}' packed weights differ after reload");
                }
            }
        }
    }
}
