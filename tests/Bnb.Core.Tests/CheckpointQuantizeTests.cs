using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Bnb.Memory;
using Bnb.Nn;
using Bnb.Quantization;
using Bnb.Serialization;

namespace Bnb.Tests;

/// <summary>The engine of <c>bnb quantize</c>: a small BERT-like safetensors model in, a bitsandbytes checkpoint out.</summary>
public sealed class CheckpointQuantizeTests(CpuRefFixture fixture) : IClassFixture<CpuRefFixture>, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bnb-cq-").FullName;

    private Quantizer Q => fixture.Quantizer;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static float[] Values(int n, int seed)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5))];
    }

    /// <summary>Embeddings, two linear layers (F32 and BF16), a LayerNorm and an lm_head, plus config.json.</summary>
    private string WriteModel()
    {
        string dir = Path.Combine(_dir, "src");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "model.safetensors");
        SafetensorsWriter.Save(path,
        [
            SafetensorsEntry.Of<float>("embeddings.word_embeddings.weight", Values(50 * 32, 1), 50, 32),
            SafetensorsEntry.Of<float>("encoder.layer.0.attention.query.weight", Values(32 * 32, 2), 32, 32),
            SafetensorsEntry.Of<float>("encoder.layer.0.attention.query.bias", Values(32, 3)),
            SafetensorsEntry.Of<BFloat16>("encoder.layer.0.output.dense.weight", [.. Values(48 * 32, 4).Select(v => (BFloat16)v)], 48, 32),
            SafetensorsEntry.Of<BFloat16>("encoder.layer.0.output.dense.bias", [.. Values(48, 5).Select(v => (BFloat16)v)]),
            SafetensorsEntry.Of<float>("encoder.layer.0.output.LayerNorm.weight", Values(48, 6)),
            SafetensorsEntry.Of<float>("lm_head.weight", Values(50 * 48, 7), 50, 48),
            SafetensorsEntry.Of<long>("position_ids", [0, 1, 2, 3], 1, 4),
        ], [new("format", "pt")]);
        File.WriteAllText(Path.Combine(dir, "config.json"), "{\"model_type\": \"bert\", \"hidden_size\": 32}");
        return path;
    }

    [BackendTheory("cpu_ref")]
    [InlineData(CheckpointFormat.Nf4, false)]
    [InlineData(CheckpointFormat.Nf4, true)]
    [InlineData(CheckpointFormat.Fp4, false)]
    [InlineData(CheckpointFormat.Int8, false)]
    public void A_quantized_checkpoint_reloads_bit_identically(CheckpointFormat format, bool doubleQuant)
    {
        string input = WriteModel();
        byte[] inputBytes = File.ReadAllBytes(input);
        string outDir = Path.Combine(_dir, "out");
        var options = new CheckpointQuantizeOptions { Format = format, DoubleQuant = doubleQuant, ComputeDType = DType.BF16 };
        var seen = new List<string>();
        var result = CheckpointQuantizer.Quantize(Q, input, outDir, options, new SyncProgress(p => seen.Add(p.Name)));

        Assert.Equal(inputBytes, File.ReadAllBytes(input));
        Assert.Contains("verified", seen);
        Assert.Equal(2, result.QuantizedCount);
        var actions = result.Tensors.ToDictionary(t => t.Name, t => t.Action);
        Assert.Equal("skipped", actions["embeddings.word_embeddings.weight"]);
        Assert.Equal("skipped", actions["lm_head.weight"]);
        Assert.Equal("copied", actions["encoder.layer.0.output.LayerNorm.weight"]);
        Assert.Equal("copied", actions["position_ids"]);
        Assert.StartsWith(format.ToString().ToLowerInvariant(), actions["encoder.layer.0.attention.query.weight"], StringComparison.Ordinal);
        Assert.True(result.BytesAfter < result.BytesBefore);

        CheckOutput(result, input, format, doubleQuant);

        // Deterministic: quantizing again writes the same bytes.
        byte[] first = File.ReadAllBytes(result.SafetensorsPath);
        CheckpointQuantizer.Quantize(Q, input, outDir, options);
        Assert.Equal(first, File.ReadAllBytes(result.SafetensorsPath));
    }

    /// <summary>Copies are byte-identical; quantized layers load and equal quantizing the source in memory; config.json is merged.</summary>
    private void CheckOutput(CheckpointQuantizeResult result, string input, CheckpointFormat format, bool doubleQuant)
    {
        using var source = SafetensorsFile.Open(input);
        using var written = SafetensorsFile.Open(result.SafetensorsPath);
        Assert.Equal("pt", written.Metadata["format"]);
        foreach (string copied in new[] { "embeddings.word_embeddings.weight", "encoder.layer.0.attention.query.bias", "encoder.layer.0.output.dense.bias", "position_ids", "lm_head.weight" })
        {
            Assert.Equal(source.GetBytes(copied).ToArray(), written.GetBytes(copied).ToArray());
        }

        var expectedLayers = new[] { "encoder.layer.0.attention.query", "encoder.layer.0.output.dense" };
        Assert.Equal(expectedLayers, BnbCheckpoint.FindLayers(written).Select(l => l.Prefix));
        foreach (string layer in expectedLayers)
        {
            var info = source.GetInfo(layer + ".weight");
            int n = (int)info.Shape[0], k = (int)info.Shape[1];
            float[] w = BnbCheckpoint.ReadFloats(source, layer + ".weight");
            if (format == CheckpointFormat.Int8)
            {
                var loaded = Linear8bitLt.FromCheckpoint(Q, written, layer);
                var direct = Linear8bitLt.QuantizeWeight<float>(Q, w, n, k);
                Assert.Equal(direct.CB, loaded.Weight.CB);
                Assert.Equal(direct.SCB, loaded.Weight.SCB);
                Assert.Equal(BnbCheckpoint.ReadFloats(source, layer + ".bias"), loaded.Bias);
            }
            else
            {
                var loaded = Linear4bit.FromCheckpoint(Q, written, layer);
                QuantType qt = format == CheckpointFormat.Fp4 ? QuantType.Fp4 : QuantType.Nf4;
                QuantizedTensor direct = info.DType == SafetensorsDType.BF16
                    ? Q.Quantize4Bit<BFloat16>(source.GetSpan<BFloat16>(layer + ".weight"), [n, k], qt, 64, doubleQuant)
                    : Q.Quantize4Bit<float>(source.GetSpan<float>(layer + ".weight"), [n, k], qt, 64, doubleQuant);
                Assert.Equal(direct.Data, loaded.PackedWeight.ToArray());
                Assert.Equal(direct.State.ToPackedJson(), loaded.State.ToPackedJson());
                Assert.Equal(info.DType == SafetensorsDType.BF16 ? DType.BF16 : DType.F32, loaded.State.DType);
                Assert.Equal(
                    MemoryMarshal.AsBytes(Q.Dequantize4Bit<float>(direct.Data, direct.State).AsSpan()).ToArray(),
                    MemoryMarshal.AsBytes(loaded.DequantizeWeight().AsSpan()).ToArray());
            }
        }

        JsonObject config = JsonNode.Parse(File.ReadAllText(result.ConfigPath))!.AsObject();
        Assert.Equal("bert", (string?)config["model_type"]);
        var qc = BnbQuantizationConfig.ReadConfigFile(result.ConfigPath);
        Assert.Equal(format != CheckpointFormat.Int8, qc.LoadIn4Bit);
        Assert.Equal(doubleQuant, qc.DoubleQuant);
        Assert.Equal(DType.BF16, qc.ComputeDType);
        Assert.Equal(["embeddings.word_embeddings", "lm_head"], qc.SkipModules);
    }

    [BackendFact("cpu_ref")]
    public void Skip_patterns_and_bad_requests()
    {
        string input = WriteModel();
        string outDir = Path.Combine(_dir, "out2");
        var result = CheckpointQuantizer.Quantize(Q, input, outDir, new CheckpointQuantizeOptions { Skip = ["*attention*"], UseDefaultSkips = false });
        var actions = result.Tensors.ToDictionary(t => t.Name, t => t.Action);
        Assert.Equal("skipped", actions["encoder.layer.0.attention.query.weight"]);
        Assert.Equal("nf4", actions["embeddings.word_embeddings.weight"]);
        Assert.Equal("nf4", actions["lm_head.weight"]);

        Assert.True(CheckpointQuantizer.Matches("encoder.layer.0.output.dense", "output.dense"));
        Assert.True(CheckpointQuantizer.Matches("lm_head", "lm_head"));
        Assert.False(CheckpointQuantizer.Matches("my_lm_head", "lm_head"));
        Assert.True(CheckpointQuantizer.Matches("encoder.layer.10.attention.self.key", "encoder.layer.1?.*"));

        // The output of a quantize run is not a valid input; nor is the input's own directory as output.
        var e = Assert.Throws<CheckpointFormatException>(() => CheckpointQuantizer.Quantize(Q, result.SafetensorsPath, Path.Combine(_dir, "out3"), new CheckpointQuantizeOptions()));
        Assert.Contains("already holds bitsandbytes-quantized layers", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => CheckpointQuantizer.Quantize(Q, input, Path.GetDirectoryName(input)!, new CheckpointQuantizeOptions()));
        Assert.Throws<ArgumentOutOfRangeException>(() => CheckpointQuantizer.Quantize(Q, input, outDir, new CheckpointQuantizeOptions { Blocksize = 48 }));

        // A truncated input fails before anything is written.
        string truncated = Path.Combine(_dir, "bad.safetensors");
        File.WriteAllBytes(truncated, File.ReadAllBytes(input)[..^10]);
        string outDir4 = Path.Combine(_dir, "out4");
        Assert.Throws<CheckpointFormatException>(() => CheckpointQuantizer.Quantize(Q, truncated, outDir4, new CheckpointQuantizeOptions()));
        Assert.False(Directory.Exists(outDir4));
    }

    /// <summary>Progress that reports synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class SyncProgress(Action<(int Done, int Total, string Name)> report) : IProgress<(int Done, int Total, string Name)>
    {
        public void Report((int Done, int Total, string Name) value) => report(value);
    }
}
