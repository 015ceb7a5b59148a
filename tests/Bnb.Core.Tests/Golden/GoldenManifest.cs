using System.Runtime.InteropServices;
using System.Text.Json;
using Bnb.Memory;

namespace Bnb.Tests.Golden;

/// <summary>One input or output file of a golden case (spec §9).</summary>
internal sealed record GoldenTensor(string Name, string File, string DType, long[] Shape)
{
    public string FullPath => Path.Combine(TestEnvironment.GoldenDirectory, File);

    public byte[] Bytes() => System.IO.File.ReadAllBytes(FullPath);

    public T[] Read<T>()
        where T : unmanaged => MemoryMarshal.Cast<byte, T>(Bytes()).ToArray();

    /// <summary>The SDK dtype of the file (<c>float32</c>, <c>bfloat16</c>, ...).</summary>
    public DType SdkDType => DTypes.FromTorchName(DType);
}

/// <summary>A case of tests/golden/manifest.json.</summary>
internal sealed record GoldenCase(string Id, string Function, JsonElement Args, IReadOnlyList<GoldenTensor> Inputs, IReadOnlyList<GoldenTensor> Outputs)
{
    public GoldenTensor Input(string name) => Inputs.Single(t => t.Name == name);

    public GoldenTensor Output(string name) => Outputs.Single(t => t.Name == name);

    /// <summary>The one input whose name starts with <paramref name="prefix"/> (names carry shape notes, e.g. "grads [steps,n]").</summary>
    public GoldenTensor InputsStartingWith(string prefix) => Inputs.Single(t => t.Name.StartsWith(prefix, StringComparison.Ordinal));

    /// <summary>The one output whose name contains <paramref name="fragment"/>.</summary>
    public GoldenTensor OutputLike(string fragment) => Outputs.Single(t => t.Name.Contains(fragment, StringComparison.OrdinalIgnoreCase));

    public GoldenTensor? OptionalOutputLike(string fragment) => Outputs.SingleOrDefault(t => t.Name.Contains(fragment, StringComparison.OrdinalIgnoreCase));

    public int Int(string name) => Args.GetProperty(name).GetInt32();

    public double Double(string name) => Args.GetProperty(name).GetDouble();

    public string? String(string name) => Args.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public bool Has(string name) => Args.TryGetProperty(name, out _);

    /// <summary>A golden table file named by an argument (e.g. <c>args.code</c>).</summary>
    public float[] TableArg(string name) =>
        MemoryMarshal.Cast<byte, float>(System.IO.File.ReadAllBytes(Path.Combine(TestEnvironment.GoldenDirectory, String(name)!))).ToArray();

    public override string ToString() => Id;
}

internal static class GoldenManifest
{
    private static readonly Lazy<IReadOnlyDictionary<string, GoldenCase>> Cases = new(Load);

    public static IReadOnlyDictionary<string, GoldenCase> All => Cases.Value;

    public static GoldenCase Get(string id) => All[id];

    private static Dictionary<string, GoldenCase> Load()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestEnvironment.GoldenDirectory, "manifest.json")));
        var result = new Dictionary<string, GoldenCase>(StringComparer.Ordinal);
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            var gc = new GoldenCase(
                c.GetProperty("id").GetString()!,
                c.GetProperty("function").GetString()!,
                c.GetProperty("args").Clone(),
                Tensors(c.GetProperty("inputs")),
                Tensors(c.GetProperty("outputs")));
            result.Add(gc.Id, gc);
        }

        return result;
    }

    private static List<GoldenTensor> Tensors(JsonElement array) =>
        [.. array.EnumerateArray().Select(t => new GoldenTensor(
            t.GetProperty("name").GetString()!,
            t.GetProperty("file").GetString()!,
            t.GetProperty("dtype").GetString()!,
            [.. t.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64())]))];
}
