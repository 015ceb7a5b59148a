using Bnb.Memory;

namespace Bnb.Serialization;

/// <summary>Element types a safetensors header may name (the <c>"dtype"</c> field).</summary>
/// <remarks>
/// Declared in the reference implementation's enum order (its writer sorts tensors by it). Sub-byte types (F4, F6_*)
/// exist in newer safetensors versions; this reader rejects them by name.
/// </remarks>
public enum SafetensorsDType
{
    Bool,
    U8,
    I8,
    F8E5M2,
    F8E4M3,
    F8E8M0,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    C64,
    F64,
    I64,
    U64,
}

/// <summary>Names, sizes and <see cref="DType"/> mapping of <see cref="SafetensorsDType"/>.</summary>
public static class SafetensorsDTypes
{
    /// <summary>The header spelling (<c>"F32"</c>, <c>"BF16"</c>, <c>"F8_E4M3"</c>, ...).</summary>
    public static string Name(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.Bool => "BOOL",
        SafetensorsDType.U8 => "U8",
        SafetensorsDType.I8 => "I8",
        SafetensorsDType.F8E5M2 => "F8_E5M2",
        SafetensorsDType.F8E4M3 => "F8_E4M3",
        SafetensorsDType.F8E8M0 => "F8_E8M0",
        SafetensorsDType.I16 => "I16",
        SafetensorsDType.U16 => "U16",
        SafetensorsDType.F16 => "F16",
        SafetensorsDType.BF16 => "BF16",
        SafetensorsDType.I32 => "I32",
        SafetensorsDType.U32 => "U32",
        SafetensorsDType.F32 => "F32",
        SafetensorsDType.C64 => "C64",
        SafetensorsDType.F64 => "F64",
        SafetensorsDType.I64 => "I64",
        SafetensorsDType.U64 => "U64",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype"),
    };

    /// <summary>Parses a header dtype name; null when the name is not one this reader knows.</summary>
    public static SafetensorsDType? TryParse(string? name) => name switch
    {
        "BOOL" => SafetensorsDType.Bool,
        "U8" => SafetensorsDType.U8,
        "I8" => SafetensorsDType.I8,
        "F8_E5M2" => SafetensorsDType.F8E5M2,
        "F8_E4M3" => SafetensorsDType.F8E4M3,
        "F8_E8M0" => SafetensorsDType.F8E8M0,
        "I16" => SafetensorsDType.I16,
        "U16" => SafetensorsDType.U16,
        "F16" => SafetensorsDType.F16,
        "BF16" => SafetensorsDType.BF16,
        "I32" => SafetensorsDType.I32,
        "U32" => SafetensorsDType.U32,
        "F32" => SafetensorsDType.F32,
        "C64" => SafetensorsDType.C64,
        "F64" => SafetensorsDType.F64,
        "I64" => SafetensorsDType.I64,
        "U64" => SafetensorsDType.U64,
        _ => null,
    };

    /// <summary>Bytes per element.</summary>
    public static int SizeOf(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.Bool or SafetensorsDType.U8 or SafetensorsDType.I8 or SafetensorsDType.F8E5M2
            or SafetensorsDType.F8E4M3 or SafetensorsDType.F8E8M0 => 1,
        SafetensorsDType.I16 or SafetensorsDType.U16 or SafetensorsDType.F16 or SafetensorsDType.BF16 => 2,
        SafetensorsDType.I32 or SafetensorsDType.U32 or SafetensorsDType.F32 => 4,
        SafetensorsDType.C64 or SafetensorsDType.F64 or SafetensorsDType.I64 or SafetensorsDType.U64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype"),
    };

    /// <summary>The Bnb dtype with the same element layout, or null (BOOL, F8, I16, U16, U32, U64, C64 have none).</summary>
    public static DType? ToDType(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.U8 => DType.U8,
        SafetensorsDType.I8 => DType.I8,
        SafetensorsDType.F16 => DType.F16,
        SafetensorsDType.BF16 => DType.BF16,
        SafetensorsDType.I32 => DType.I32,
        SafetensorsDType.F32 => DType.F32,
        SafetensorsDType.F64 => DType.F64,
        SafetensorsDType.I64 => DType.I64,
        _ => null,
    };

    /// <summary>The safetensors dtype of a Bnb dtype (every Bnb dtype has one).</summary>
    public static SafetensorsDType FromDType(DType dtype) => dtype switch
    {
        DType.U8 => SafetensorsDType.U8,
        DType.I8 => SafetensorsDType.I8,
        DType.F16 => SafetensorsDType.F16,
        DType.BF16 => SafetensorsDType.BF16,
        DType.I32 => SafetensorsDType.I32,
        DType.F32 => SafetensorsDType.F32,
        DType.F64 => SafetensorsDType.F64,
        DType.I64 => SafetensorsDType.I64,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };
}
