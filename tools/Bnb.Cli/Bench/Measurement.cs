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
    /// <summary><c>bench optim</c>: parameters updated per second (one step over all parameters / median).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? ParamsPerS { get; init; }

    /// <summary><c>bench optim</c>: optimizer state bytes per parameter (all state tensors / parameters).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? StateBytesPerParam { get; init; }

    /// <summary><c>bench optim</c>: 32 or 8.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Bits { get; init; }

    /// <summary><c>bench optim</c>: paged state.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? Paged { get; init; }

    /// <summary><c>bench optim --paged</c>: the pager's budget and bytes it read back from the spill file per step.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? PagerBudgetBytes { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? PagerLoadedBytesPerStep { get; init; }

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
