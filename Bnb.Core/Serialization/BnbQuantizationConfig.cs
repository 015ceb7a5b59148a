using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bnb.Memory;
using Bnb.Quantization;

namespace Bnb.Serialization;

/// <summary>
/// The <c>quantization_config</c> object Transformers writes into <c>config.json</c> for bitsandbytes models
/// (<c>BitsAndBytesConfig</c>, spec §5.4).
/// </summary>
public sealed record BnbQuantizationConfig
{
    /// <summary>True for 4-bit (NF4/FP4) models, false for LLM.int8() models.</summary>
    public bool LoadIn4Bit { get; init; }

    /// <summary><c>bnb_4bit_quant_type</c>; Transformers' default is FP4.</summary>
    public QuantType QuantType { get; init; } = QuantType.Fp4;

    /// <summary><c>bnb_4bit_use_double_quant</c> (bitsandbytes' <c>compress_statistics</c>).</summary>
    public bool DoubleQuant { get; init; }

    /// <summary><c>bnb_4bit_compute_dtype</c>.</summary>
    public DType ComputeDType { get; init; } = DType.F32;

    /// <summary><c>bnb_4bit_quant_storage</c>.</summary>
    public DType QuantStorage { get; init; } = DType.U8;

    /// <summary><c>llm_int8_threshold</c> (outlier threshold of Linear8bitLt).</summary>
    public double Int8Threshold { get; init; } = 6.0;

    /// <summary><c>llm_int8_has_fp16_weight</c>.</summary>
    public bool Int8HasFp16Weight { get; init; }

    /// <summary><c>llm_int8_skip_modules</c>: module names left unquantized; null = Transformers' default.</summary>
    public IReadOnlyList<string>? SkipModules { get; init; }

    /// <summary>The JSON object, keys in the order Transformers documents them.</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["quant_method"] = "bitsandbytes",
            ["load_in_4bit"] = LoadIn4Bit,
            ["load_in_8bit"] = !LoadIn4Bit,
            ["_load_in_4bit"] = LoadIn4Bit,
            ["_load_in_8bit"] = !LoadIn4Bit,
            ["bnb_4bit_quant_type"] = QuantType.Name(),
            ["bnb_4bit_use_double_quant"] = DoubleQuant,
            ["bnb_4bit_compute_dtype"] = ComputeDType.TorchName(),
            ["bnb_4bit_quant_storage"] = QuantStorage.TorchName(),
            // Python float syntax ("6.0"): Transformers' BitsAndBytesConfig rejects an int threshold.
            ["llm_int8_threshold"] = JsonNode.Parse(PythonFloat.Repr(Int8Threshold)),
            ["llm_int8_has_fp16_weight"] = Int8HasFp16Weight,
            ["llm_int8_skip_modules"] = SkipModules is null ? null : new JsonArray([.. SkipModules.Select(s => (JsonNode?)JsonValue.Create(s))]),
            ["llm_int8_enable_fp32_cpu_offload"] = false,
        };
        return o;
    }

    /// <summary>Reads a <c>quantization_config</c> object; absent keys take Transformers' defaults.</summary>
    /// <exception cref="FormatException">Not a bitsandbytes config, or a value of the wrong kind.</exception>
    public static BnbQuantizationConfig FromJson(JsonNode? node)
    {
        if (node is not JsonObject o)
        {
            throw new FormatException("quantization_config must be a JSON object");
        }

        try
        {
            string method = o["quant_method"]?.GetValue<string>() ?? "bitsandbytes";
            if (method != "bitsandbytes")
            {
                throw new FormatException($"quant_method is '{method}', not 'bitsandbytes'");
            }

            bool four = o["load_in_4bit"]?.GetValue<bool>() ?? false;
            bool eight = o["load_in_8bit"]?.GetValue<bool>() ?? false;
            if (four == eight)
            {
                throw new FormatException($"exactly one of load_in_4bit and load_in_8bit must be true (got {four}, {eight})");
            }

            return new BnbQuantizationConfig
            {
                LoadIn4Bit = four,
                QuantType = QuantTypes.Parse(o["bnb_4bit_quant_type"]?.GetValue<string>() ?? "fp4"),
                DoubleQuant = o["bnb_4bit_use_double_quant"]?.GetValue<bool>() ?? false,
                ComputeDType = DTypes.FromTorchName(StripTorch(o["bnb_4bit_compute_dtype"]?.GetValue<string>() ?? "float32")),
                QuantStorage = DTypes.FromTorchName(StripTorch(o["bnb_4bit_quant_storage"]?.GetValue<string>() ?? "uint8")),
                Int8Threshold = o["llm_int8_threshold"]?.GetValue<double>() ?? 6.0,
                Int8HasFp16Weight = o["llm_int8_has_fp16_weight"]?.GetValue<bool>() ?? false,
                SkipModules = o["llm_int8_skip_modules"] is JsonArray a ? [.. a.Select(e => e?.GetValue<string>() ?? throw new FormatException("llm_int8_skip_modules holds a null"))] : null,
            };
        }
        catch (InvalidOperationException e)
        {
            throw new FormatException($"quantization_config has a value of the wrong kind: {e.Message}", e);
        }
    }

    /// <summary>
    /// Writes <c>config.json</c> at <paramref name="path"/>: the JSON object in <paramref name="baseConfig"/> (e.g. the
    /// source model's config) or an empty one, with <c>quantization_config</c> set to this config. Written to a
    /// temporary file and renamed, like the safetensors writer.
    /// </summary>
    public void WriteConfigFile(string path, JsonObject? baseConfig = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        JsonObject root = baseConfig is null ? [] : (JsonObject)baseConfig.DeepClone();
        root["quantization_config"] = ToJson();
        string json = root.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";
        string full = Path.GetFullPath(path);
        string temp = Path.Combine(Path.GetDirectoryName(full) ?? ".", "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N")[..12] + ".tmp");
        try
        {
            File.WriteAllText(temp, json, new UTF8Encoding(false));
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>Reads <c>quantization_config</c> from a <c>config.json</c> file.</summary>
    /// <exception cref="FormatException">Invalid JSON, or no bitsandbytes quantization_config.</exception>
    public static BnbQuantizationConfig ReadConfigFile(string path)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new FormatException($"{path}: not valid JSON: {e.Message}", e);
        }

        JsonNode? q = (root as JsonObject)?["quantization_config"] ?? throw new FormatException($"{path}: has no quantization_config");
        try
        {
            return FromJson(q);
        }
        catch (FormatException e)
        {
            throw new FormatException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>Transformers sometimes writes <c>"torch.bfloat16"</c>.</summary>
    private static string StripTorch(string name) => name.StartsWith("torch.", StringComparison.Ordinal) ? name[6..] : name;
}
