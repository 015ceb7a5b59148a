using System.Runtime.InteropServices;
using Bnb.Memory;

namespace Bnb.Tests.Golden;

/// <summary>Typed tensor views over raw golden bytes (little-endian, C-contiguous), chosen by dtype at run time.</summary>
internal static class Views
{
    public static TensorRef Of(byte[] bytes, DType dtype, params long[] shape)
    {
        long[] s = shape.Length == 0 ? [bytes.Length / dtype.SizeOf()] : shape;
        return dtype switch
        {
            DType.F32 => TensorRef.FromSpan(MemoryMarshal.Cast<byte, float>(bytes.AsSpan()), s),
            DType.F16 => TensorRef.FromSpan(MemoryMarshal.Cast<byte, Half>(bytes.AsSpan()), s),
            DType.BF16 => TensorRef.FromSpan(MemoryMarshal.Cast<byte, BFloat16>(bytes.AsSpan()), s),
            DType.U8 => TensorRef.FromSpan(bytes.AsSpan(), s),
            DType.I8 => TensorRef.FromSpan(MemoryMarshal.Cast<byte, sbyte>(bytes.AsSpan()), s),
            DType.I32 => TensorRef.FromSpan(MemoryMarshal.Cast<byte, int>(bytes.AsSpan()), s),
            DType.I64 => TensorRef.FromSpan(MemoryMarshal.Cast<byte, long>(bytes.AsSpan()), s),
            DType.F64 => TensorRef.FromSpan(MemoryMarshal.Cast<byte, double>(bytes.AsSpan()), s),
            _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
        };
    }

    /// <summary>The input file as a view with its manifest shape.</summary>
    public static TensorRef Of(GoldenTensor t, byte[] bytes) => Of(bytes, t.SdkDType, t.Shape);

    /// <summary>A zeroed buffer shaped like a golden output.</summary>
    public static byte[] BufferLike(GoldenTensor t) => new byte[t.Shape.Aggregate(1L, (a, d) => a * d) * t.SdkDType.SizeOf()];

    /// <summary>Compares an output buffer with the golden file under the spec's bitwise rules.</summary>
    public static void AssertEqual(GoldenTensor expected, byte[] actual, string caseId)
    {
        byte[] e = expected.Bytes();
        string what = $"{caseId}: {expected.Name}";
        switch (expected.SdkDType)
        {
            case DType.F32:
                Compare.Floats(MemoryMarshal.Cast<byte, float>(e), MemoryMarshal.Cast<byte, float>(actual), what);
                break;
            case DType.F16:
                Compare.Halves(MemoryMarshal.Cast<byte, Half>(e), MemoryMarshal.Cast<byte, Half>(actual), what);
                break;
            case DType.BF16:
                Compare.BFloats(MemoryMarshal.Cast<byte, BFloat16>(e), MemoryMarshal.Cast<byte, BFloat16>(actual), what);
                break;
            default:
                Compare.Bytes<byte>(e, actual, what);
                break;
        }
    }

    /// <summary>Output values of any float dtype widened to float.</summary>
    public static float[] ToFloat(byte[] bytes, DType dtype) => dtype switch
    {
        DType.F32 => MemoryMarshal.Cast<byte, float>(bytes).ToArray(),
        DType.F16 => Compare.Widen(MemoryMarshal.Cast<byte, Half>(bytes)),
        DType.BF16 => Compare.Widen(MemoryMarshal.Cast<byte, BFloat16>(bytes)),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    /// <summary>Float values stored as <paramref name="dtype"/> bytes (RNE), as the reference conversion does.</summary>
    public static byte[] FromFloat(ReadOnlySpan<float> values, DType dtype)
    {
        switch (dtype)
        {
            case DType.F32:
                return MemoryMarshal.AsBytes(values).ToArray();
            case DType.F16:
                var h = new Half[values.Length];
                for (int i = 0; i < h.Length; i++)
                {
                    h[i] = (Half)values[i];
                }

                return MemoryMarshal.AsBytes(h.AsSpan()).ToArray();
            case DType.BF16:
                var b = new BFloat16[values.Length];
                for (int i = 0; i < b.Length; i++)
                {
                    b[i] = (BFloat16)values[i];
                }

                return MemoryMarshal.AsBytes(b.AsSpan()).ToArray();
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype));
        }
    }
}
