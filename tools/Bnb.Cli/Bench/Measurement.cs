using System.Text.Json;
using System.Text.Json.Serialization;

namespace Bnb.Cli.Bench;

/// <summary>One measured configuration; serialized snake_case as one object of the <c>--json</c> array.</summary>
internal sealed record Measurement(
    string Backend,
    string Op,
    string Quant,
    string Dtype,
    long M,
    long K,
    long N,
    int Threads,
    bool Packed,
    int Blocksize,
    string Rounding,
    double MedianMs,
    double MinMs,
    double Gbps,
    double Gflops,
    long BytesPerCall,
    double FlopsPerCall,
    int Runs,
    int Warmup,
    int WeightCopies,
    string Cpu)
{
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>GB/s for bandwidth-bound ops, GFLOP/s (GOP/s for int8) for compute-bound ones.</summary>
    [JsonIgnore]
    public bool ComputeBound => Op is "gemm" or "int8-matmul";

    [JsonIgnore]
    public double Headline => ComputeBound ? Gflops : Gbps;

    [JsonIgnore]
    public string HeadlineUnit => Op == "int8-matmul" ? "GOP/s" : ComputeBound ? "GFLOP/s" : "GB/s";

    [JsonIgnore]
    public string Shape => Op switch
    {
        "gemv" or "gemm" or "int8-matmul" => $"M={M} K={K} N={N}",
        "stream" => $"{BytesPerCall / (1 << 20)} MiB",
        _ => $"{N:N0} el" + (N % (1 << 20) == 0 ? $" ({N >> 20}M)" : string.Empty),
    };

    [JsonIgnore]
    public string Variant => $"{Backend}{(Packed ? " (packed)" : string.Empty)}{(Quant == "q8" && Rounding == "lut" ? " (lut)" : string.Empty)}";

    [JsonIgnore]
    public string Label => $"{Variant} ×{Threads}";
}
