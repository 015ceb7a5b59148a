using Bnb.Interop;

namespace Bnb.Memory;

/// <summary>Element types of the C ABI (<c>BNB_DTYPE_*</c>). Bit <c>i</c> of a capability mask stands for dtype <c>i</c>.</summary>
public enum DType
{
    F32 = BnbNative.BNB_DTYPE_F32,
    F16 = BnbNative.BNB_DTYPE_F16,
    BF16 = BnbNative.BNB_DTYPE_BF16,
    U8 = BnbNative.BNB_DTYPE_U8,
    I8 = BnbNative.BNB_DTYPE_I8,
    I32 = BnbNative.BNB_DTYPE_I32,
    I64 = BnbNative.BNB_DTYPE_I64,
    F64 = BnbNative.BNB_DTYPE_F64,
}

/// <summary>Helpers that relate <see cref="DType"/> to CLR element types.</summary>
public static class DTypes
{
    /// <summary>The dtype of a CLR element type: float, Half, BFloat16, byte, sbyte, int, long, double.</summary>
    /// <exception cref="ArgumentException">T has no Bnb dtype.</exception>
    public static DType Of<T>()
        where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return DType.F32;
        if (typeof(T) == typeof(Half)) return DType.F16;
        if (typeof(T) == typeof(BFloat16)) return DType.BF16;
        if (typeof(T) == typeof(byte)) return DType.U8;
        if (typeof(T) == typeof(sbyte)) return DType.I8;
        if (typeof(T) == typeof(int)) return DType.I32;
        if (typeof(T) == typeof(long)) return DType.I64;
        if (typeof(T) == typeof(double)) return DType.F64;
        throw new ArgumentException($"element type {typeof(T).Name} has no Bnb dtype (use float, Half, BFloat16, byte, sbyte, int, long or double)", nameof(T));
    }

    /// <summary>Bytes per element.</summary>
    public static int SizeOf(this DType dtype) => dtype switch
    {
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 => 2,
        DType.U8 or DType.I8 => 1,
        DType.I64 or DType.F64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };

    /// <summary>True for F32, F16 and BF16 — the dtypes the quantizers accept as input.</summary>
    public static bool IsFloatActivation(this DType dtype) => dtype is DType.F32 or DType.F16 or DType.BF16;

    /// <summary>The name PyTorch prints for the dtype (<c>float32</c>, <c>bfloat16</c>, ...), as stored in QuantState JSON.</summary>
    public static string TorchName(this DType dtype) => dtype switch
    {
        DType.F32 => "float32",
        DType.F16 => "float16",
        DType.BF16 => "bfloat16",
        DType.U8 => "uint8",
        DType.I8 => "int8",
        DType.I32 => "int32",
        DType.I64 => "int64",
        DType.F64 => "float64",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };

    /// <summary>Inverse of <see cref="TorchName"/>.</summary>
    public static DType FromTorchName(string name) => name switch
    {
        "float32" or "float" => DType.F32,
        "float16" or "half" => DType.F16,
        "bfloat16" => DType.BF16,
        "uint8" => DType.U8,
        "int8" => DType.I8,
        "int32" or "int" => DType.I32,
        "int64" or "long" => DType.I64,
        "float64" or "double" => DType.F64,
        _ => throw new FormatException($"unknown torch dtype name '{name}'"),
    };
}
