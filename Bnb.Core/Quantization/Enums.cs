using Bnb.Interop;

namespace Bnb.Quantization;

/// <summary>4-bit data types (<c>BNB_QUANT_*</c>).</summary>
public enum QuantType
{
    /// <summary>1 sign, 2 exponent, 1 mantissa bit, normalised to [-1, 1].</summary>
    Fp4 = BnbNative.BNB_QUANT_FP4,

    /// <summary>NormalFloat4: 16 quantiles of N(0, 1) normalised to [-1, 1].</summary>
    Nf4 = BnbNative.BNB_QUANT_NF4,
}

/// <summary>Rounding of 8-bit blockwise quantization (<c>BNB_ROUND_*</c>, spec §2.5).</summary>
public enum Rounding
{
    /// <summary>Exact nearest code, ties to the lower index (bitsandbytes' default backend; also the CUDA result).</summary>
    Nearest = BnbNative.BNB_ROUND_NEAREST,

    /// <summary>Bit-identical to bitsandbytes' CPU library (65 536-bin lookup table).</summary>
    BnbCpuLut = BnbNative.BNB_ROUND_BNB_CPU_LUT,
}

/// <summary>Code tables served by the backend (<c>BNB_TABLE_*</c>).</summary>
public enum CodeTable
{
    Nf4 = BnbNative.BNB_TABLE_NF4,
    Fp4 = BnbNative.BNB_TABLE_FP4,

    /// <summary>create_dynamic_map(signed=True): the default 8-bit code and the nested-statistics code.</summary>
    DynamicSigned = BnbNative.BNB_TABLE_DYNAMIC_SIGNED,

    /// <summary>create_dynamic_map(signed=False): optimizer state2.</summary>
    DynamicUnsigned = BnbNative.BNB_TABLE_DYNAMIC_UNSIGNED,
}

/// <summary>Packed 4-bit weight layouts (<c>BNB_WEIGHT_*</c>).</summary>
public enum WeightFormat
{
    /// <summary>bitsandbytes layout: W[N, K] row-major codes, element 2i in the high nibble.</summary>
    Standard = BnbNative.BNB_WEIGHT_STANDARD,

    /// <summary>bitsandbytes' _convert_weight_packed_for_cpu layout [N, K/2].</summary>
    BnbCpu = BnbNative.BNB_WEIGHT_BNB_CPU,

    /// <summary>The backend's own fastest layout.</summary>
    Backend = BnbNative.BNB_WEIGHT_BACKEND,
}

/// <summary>Helpers for enum ↔ bitsandbytes names.</summary>
public static class QuantTypes
{
    /// <summary><c>"nf4"</c> or <c>"fp4"</c>.</summary>
    public static string Name(this QuantType type) => type switch
    {
        QuantType.Nf4 => "nf4",
        QuantType.Fp4 => "fp4",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown quant type"),
    };

    /// <summary>Inverse of <see cref="Name"/>.</summary>
    public static QuantType Parse(string name) => name switch
    {
        "nf4" => QuantType.Nf4,
        "fp4" => QuantType.Fp4,
        _ => throw new FormatException($"unknown quant_type '{name}' (expected nf4 or fp4)"),
    };

    /// <summary>The backend table that holds the 16 code values of <paramref name="type"/>.</summary>
    public static CodeTable Table(this QuantType type) => type == QuantType.Nf4 ? CodeTable.Nf4 : CodeTable.Fp4;
}
