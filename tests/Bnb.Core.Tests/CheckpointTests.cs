using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Bnb.Memory;
using Bnb.Quantization;
using Bnb.Serialization;

namespace Bnb.Tests;

/// <summary>Hugging Face bitsandbytes checkpoint layout (spec §5): golden bytes, round trips and errors naming the tensor.</summary>
public sealed class CheckpointTests(CpuRefFixture fixture) : IClassFixture<CpuRefFixture>, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bnb-ckpt-").FullName;

    private Quantizer Q => fixture.Quantizer;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    private static byte[] Golden(string relative) => File.ReadAllBytes(Path.Combine(TestEnvironment.GoldenDirectory, relative));

    private static float[] GoldenFloats(string relative) => MemoryMarshal.Cast<byte, float>(Golden(relative)).ToArray();

    /// <summary>The golden q4/nested tensors under the keys transformers saves for a Linear4bit at <c>model.fc</c>.</summary>
    private static List<SafetensorsEntry> GoldenNestedEntries() =>
    [
        SafetensorsEntry.Of<byte>("model.fc.weight", Golden("q4/nested/nf4.packed.u8.bin"), 16384, 1),
        SafetensorsEntry.Of<byte>("model.fc.weight.absmax", Golden("q4/nested/nf4.absmax_q.u8.bin")),
        SafetensorsEntry.Of<float>("model.fc.weight.quant_map", GoldenFloats("tables/nf4_code.f32.bin")),
        SafetensorsEntry.Of<float>("model.fc.weight.nested_absmax", GoldenFloats("q4/nested/nf4.nested_absmax.f32.bin")),
        SafetensorsEntry.Of<float>("model.fc.weight.nested_quant_map", GoldenFloats("tables/dynamic_map_signed.f32.bin")),
        SafetensorsEntry.Of<byte>("model.fc.weight.quant_state.bitsandbytes__nf4", Golden("q4/nested/nf4.quant_state_json.u8.bin")),
    ];

    [BackendFact("cpu_ref")]
    public void Bitsandbytes_nested_nf4_checkpoint_loads_and_dequantizes_bit_identically()
    {
        string path = PathOf("golden.safetensors");
        SafetensorsWriter.Save(path, GoldenNestedEntries(), alignTensors: true);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal([new CheckpointLayer("model.fc", CheckpointLayerKind.FourBit)], BnbCheckpoint.FindLayers(file));

        FourBitWeight w = BnbCheckpoint.Read4Bit(file, "model.fc");
        Assert.Equal(QuantType.Nf4, w.State.QuantType);
        Assert.Equal([64L, 512L], w.State.Shape);
        Assert.True(w.State.Nested);
        Assert.Equal(BitConverter.ToSingle(Golden("q4/nested/nf4.offset.f32.bin")), w.State.Offset);
        Assert.Equal(Golden("q4/nested/nf4.quant_state_json.u8.bin"), w.State.ToPackedJson());

        float[] deq = Q.Dequantize4Bit<float>(w.Packed, w.State);
        Assert.Equal(Golden("q4/nested/nf4.deq.f32.bin"), MemoryMarshal.AsBytes(deq.AsSpan()).ToArray());

        // Saving what we loaded reproduces the file byte for byte.
        string again = PathOf("again.safetensors");
        SafetensorsWriter.Save(again, BnbCheckpoint.Entries4Bit("model.fc", w.Packed, w.State), alignTensors: true);
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(again));
    }

    [BackendTheory("cpu_ref")]
    [InlineData(QuantType.Nf4, false, 64)]
    [InlineData(QuantType.Nf4, true, 64)]
    [InlineData(QuantType.Fp4, false, 128)]
    [InlineData(QuantType.Fp4, true, 32)]
    public void Four_bit_layers_round_trip_byte_identically(QuantType qt, bool doubleQuant, int blocksize)
    {
        var rng = new Random(7);
        float[] w = [.. Enumerable.Range(0, 48 * 80).Select(_ => (float)((rng.NextDouble() * 2) - 1))];
        QuantizedTensor q = Q.Quantize4Bit<float>(w, [48, 80], qt, blocksize, doubleQuant);
        float[] bias = [.. Enumerable.Range(0, 48).Select(i => i * 0.5f)];
        string path = PathOf("rt.safetensors");
        SafetensorsWriter.Save(path, [.. BnbCheckpoint.Entries4Bit("l", q.Data, q.State), SafetensorsEntry.Of<float>("l.bias", bias)], alignTensors: true);

        using var file = SafetensorsFile.Open(path);
        FourBitWeight back = BnbCheckpoint.Read4Bit(file, "l");
        Assert.Equal(q.Data, back.Packed);
        Assert.Equal(q.State.ToPackedJson(), back.State.ToPackedJson());
        Assert.Equal(q.State.Absmax, back.State.Absmax);
        Assert.Equal(q.State.QuantizedAbsmax, back.State.QuantizedAbsmax);
        Assert.Equal(q.State.State2?.Absmax, back.State.State2?.Absmax);
        Assert.Equal(Q.Dequantize4Bit<float>(q.Data, q.State), Q.Dequantize4Bit<float>(back.Packed, back.State));
        Assert.Equal(bias, BnbCheckpoint.ReadBias(file, "l", 48));

        string again = PathOf("rt2.safetensors");
        SafetensorsWriter.Save(again, [.. BnbCheckpoint.Entries4Bit("l", back.Packed, back.State), SafetensorsEntry.Of<float>("l.bias", BnbCheckpoint.ReadBias(file, "l", 48)!)], alignTensors: true);
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(again));
    }

    [BackendFact("cpu_ref")]
    public void Int8_layers_round_trip_and_only_row_format_loads()
    {
        var rng = new Random(3);
        float[] w = [.. Enumerable.Range(0, 6 * 10).Select(_ => (float)rng.NextDouble() - 0.5f)];
        Int8Quantized q = Q.Int8VectorwiseQuant<float>(w, 6, 10);
        var weight = new Int8Weight(q.CA, q.RowStats, 6, 10);
        string path = PathOf("i8.safetensors");
        SafetensorsWriter.Save(path, BnbCheckpoint.EntriesInt8("enc.q", weight), alignTensors: true);
        using (var file = SafetensorsFile.Open(path))
        {
            Assert.Equal([new CheckpointLayer("enc.q", CheckpointLayerKind.Int8)], BnbCheckpoint.FindLayers(file));
            Int8Weight back = BnbCheckpoint.ReadInt8(file, "enc.q");
            Assert.Equal(q.CA, back.CB);
            Assert.Equal(q.RowStats, back.SCB);
            Assert.Equal((6, 10), (back.OutFeatures, back.InFeatures));
            Assert.Equal(SafetensorsDType.U8, file.GetInfo("enc.q.weight_format").DType);
            Assert.Empty(file.GetInfo("enc.q.weight_format").Shape);
        }

        var colFormat = BnbCheckpoint.EntriesInt8("enc.q", weight).Select(e => e.Name.EndsWith("weight_format", StringComparison.Ordinal) ? e with { Data = new byte[] { 2 } } : e);
        SafetensorsWriter.Save(path, colFormat);
        using (var file = SafetensorsFile.Open(path))
        {
            var e = Assert.Throws<CheckpointFormatException>(() => BnbCheckpoint.ReadInt8(file, "enc.q"));
            Assert.Equal("enc.q.weight_format", e.TensorName);
            Assert.Contains("col_turing", e.Message, StringComparison.Ordinal);
        }

        SafetensorsWriter.Save(path, BnbCheckpoint.EntriesInt8("enc.q", weight).Where(e => !e.Name.EndsWith("SCB", StringComparison.Ordinal)));
        using (var file = SafetensorsFile.Open(path))
        {
            Assert.Equal("enc.q.SCB", Assert.Throws<CheckpointFormatException>(() => BnbCheckpoint.ReadInt8(file, "enc.q")).TensorName);
        }
    }

    public static TheoryData<string, string, string> Corruptions() => new()
    {
        { "drop model.fc.weight.absmax", "model.fc.weight.absmax", "is missing" },
        { "drop model.fc.weight.nested_quant_map", "model.fc.weight.nested_quant_map", "is missing" },
        { "drop model.fc.weight.quant_state.bitsandbytes__nf4", "model.fc.weight", "no packed quant state" },
        { "f32 model.fc.weight.absmax", "model.fc.weight.absmax", "has dtype F32; expected U8" },
        { "short model.fc.weight", "model.fc.weight", "need [16384, 1]" },
        { "short model.fc.weight.nested_absmax", "model.fc.weight.nested_absmax", "expected [2]" },
        { "extra model.fc.weight.bogus", "model.fc.weight.bogus", "not part of a double-quantized" },
        { "extra model.fc.weight.quant_state.bitsandbytes__fp4", "model.fc.weight", "has both" },
        { "json model.fc.weight.quant_state.bitsandbytes__nf4", "model.fc.weight.quant_state.bitsandbytes__nf4", "packed quant state" },
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void Broken_4bit_layers_give_errors_naming_the_tensor(string corruption, string tensor, string expected)
    {
        string[] words = corruption.Split(' ');
        string op = words[0], key = words[1];
        List<SafetensorsEntry> entries = GoldenNestedEntries();
        int i = entries.FindIndex(e => e.Name == key);
        switch (op)
        {
            case "drop": entries.RemoveAt(i); break;
            case "f32": entries[i] = entries[i] with { DType = SafetensorsDType.F32, Shape = [entries[i].Data.Length / 4] }; break;
            case "short": entries[i] = entries[i] with { Data = entries[i].Data[..^4], Shape = entries[i].Shape.Length == 2 ? [(entries[i].Data.Length - 4), 1] : [(entries[i].Data.Length - 4) / 4] }; break;
            case "extra": entries.Add(SafetensorsEntry.Of<byte>(key, [1, 2])); break;
            case "json": entries[i] = SafetensorsEntry.Of<byte>(key, "{\"quant_type\": \"nf4\", \"blocksize\": 64}"u8); break;
        }

        string path = PathOf("broken.safetensors");
        SafetensorsWriter.Save(path, entries);
        using var file = SafetensorsFile.Open(path);
        var e = Assert.Throws<CheckpointFormatException>(() => BnbCheckpoint.Read4Bit(file, "model.fc"));
        Assert.Equal(tensor, e.TensorName);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Quantization_config_round_trips_into_an_existing_config()
    {
        var config = new BnbQuantizationConfig { LoadIn4Bit = true, QuantType = QuantType.Nf4, DoubleQuant = true, ComputeDType = DType.BF16, SkipModules = ["lm_head"] };
        string path = PathOf("config.json");
        config.WriteConfigFile(path, new JsonObject { ["model_type"] = "bert", ["hidden_size"] = 384 });
        JsonObject root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        Assert.Equal("bert", (string?)root["model_type"]);
        JsonObject q = root["quantization_config"]!.AsObject();
        Assert.Equal(
            ["quant_method", "load_in_4bit", "load_in_8bit", "_load_in_4bit", "_load_in_8bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant", "bnb_4bit_compute_dtype",
             "bnb_4bit_quant_storage", "llm_int8_threshold", "llm_int8_has_fp16_weight", "llm_int8_skip_modules", "llm_int8_enable_fp32_cpu_offload"],
            q.Select(p => p.Key));
        Assert.Equal("bfloat16", (string?)q["bnb_4bit_compute_dtype"]);
        Assert.Equal(6.0, (double)q["llm_int8_threshold"]!);
        Assert.Contains("\"llm_int8_threshold\": 6.0,", File.ReadAllText(path), StringComparison.Ordinal);
        var back = BnbQuantizationConfig.ReadConfigFile(path);
        Assert.Equal(config with { SkipModules = null }, back with { SkipModules = null });
        Assert.Equal(["lm_head"], back.SkipModules);

        Assert.Equal(QuantType.Fp4, BnbQuantizationConfig.FromJson(JsonNode.Parse("{\"load_in_4bit\": true}")).QuantType);
        Assert.Contains("exactly one", Assert.Throws<FormatException>(() => BnbQuantizationConfig.FromJson(JsonNode.Parse("{\"load_in_4bit\": true, \"load_in_8bit\": true}"))).Message, StringComparison.Ordinal);
        Assert.Contains("gptq", Assert.Throws<FormatException>(() => BnbQuantizationConfig.FromJson(JsonNode.Parse("{\"quant_method\": \"gptq\"}"))).Message, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => BnbQuantizationConfig.FromJson(JsonNode.Parse("{\"load_in_4bit\": \"yes\"}")));
        File.WriteAllText(path, "{\"model_type\": \"bert\"}");
        Assert.Contains("no quantization_config", Assert.Throws<FormatException>(() => BnbQuantizationConfig.ReadConfigFile(path)).Message, StringComparison.Ordinal);
    }
}
