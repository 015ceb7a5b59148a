using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Bnb.Memory;

namespace Bnb.Nn;

/// <summary>Element conversions between float, Half and BFloat16 and checks of module inputs.</summary>
internal static class FloatData
{
    /// <summary>True for the element types modules accept as activations: float, Half, BFloat16.</summary>
    public static bool IsFloat<T>()
        where T : unmanaged => typeof(T) == typeof(float) || typeof(T) == typeof(Half) || typeof(T) == typeof(BFloat16);

    public static void RequireFloat<T>(string argument)
        where T : unmanaged
    {
        if (!IsFloat<T>())
        {
            throw new ArgumentException($"{argument}: element type {typeof(T).Name} is not an activation type (float, Half or BFloat16)", argument);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat<T>(T value)
        where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Unsafe.As<T, float>(ref value);
        if (typeof(T) == typeof(Half)) return (float)Unsafe.As<T, Half>(ref value);
        if (typeof(T) == typeof(BFloat16)) return Unsafe.As<T, BFloat16>(ref value);
        throw new NotSupportedException(typeof(T).Name);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T FromFloat<T>(float value)
        where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Unsafe.As<float, T>(ref value);
        if (typeof(T) == typeof(Half))
        {
            Half h = (Half)value;
            return Unsafe.As<Half, T>(ref h);
        }

        if (typeof(T) == typeof(BFloat16))
        {
            BFloat16 b = (BFloat16)value;
            return Unsafe.As<BFloat16, T>(ref b);
        }

        throw new NotSupportedException(typeof(T).Name);
    }

    /// <summary>Elementwise conversion (round to nearest even) from <typeparamref name="TIn"/> to <typeparamref name="TOut"/>.</summary>
    public static void Convert<TIn, TOut>(ReadOnlySpan<TIn> input, Span<TOut> output)
        where TIn : unmanaged
        where TOut : unmanaged
    {
        if (typeof(TIn) == typeof(TOut))
        {
            MemoryMarshal.Cast<TIn, TOut>(input).CopyTo(output);
            return;
        }

        for (int i = 0; i < input.Length; i++)
        {
            output[i] = FromFloat<TOut>(ToFloat(input[i]));
        }
    }

    public static float[] ToFloats<T>(ReadOnlySpan<T> input)
        where T : unmanaged
    {
        var result = new float[input.Length];
        Convert(input, result.AsSpan());
        return result;
    }

    /// <summary>Rounds every value to <typeparamref name="T"/>'s precision (what casting to T and back gives).</summary>
    public static void RoundTo<T>(Span<float> values)
        where T : unmanaged
    {
        if (typeof(T) == typeof(float))
        {
            return;
        }

        for (int i = 0; i < values.Length; i++)
        {
            values[i] = ToFloat(FromFloat<T>(values[i]));
        }
    }

    /// <summary>The managed element type's <see cref="DType"/> among the activation types.</summary>
    public static DType DTypeOf<T>()
        where T : unmanaged => DTypes.Of<T>();

    /// <summary>Throws unless <paramref name="length"/> = rows × cols with rows ≥ 0.</summary>
    public static void CheckMatrix(int length, int rows, int cols, string argument)
    {
        if (rows < 0)
        {
            throw new ArgumentOutOfRangeException(argument, rows, $"{argument}: the row count must not be negative");
        }

        if ((long)rows * cols != length)
        {
            throw new ArgumentException($"{argument} has {length} elements; [{rows}, {cols}] needs {(long)rows * cols}", argument);
        }
    }

    /// <summary>Rows of an activation tensor whose last dimension is <paramref name="cols"/>.</summary>
    public static int RowsOf(TensorRef t, int cols, string argument)
    {
        if (!t.IsPresent)
        {
            throw new ArgumentNullException(argument, $"{argument} is absent");
        }

        if (t.Shape.Rank == 0 || t.Shape[t.Shape.Rank - 1] != cols)
        {
            throw new ArgumentException($"{argument} has shape {t.Shape}; its last dimension must be {cols}", argument);
        }

        if (!t.IsContiguous || t.Device is not null)
        {
            throw new ArgumentException($"{argument} must be a contiguous host tensor ({t.ToString()})", argument);
        }

        long rows = t.ElementCount / Math.Max(cols, 1);
        return rows > int.MaxValue ? throw new ArgumentException($"{argument} has too many rows ({rows})", argument) : (int)rows;
    }

    /// <summary>A span over a contiguous host tensor's elements.</summary>
    public static Span<T> Elements<T>(TensorRef t)
        where T : unmanaged =>
        MemoryMarshal.CreateSpan(ref Unsafe.As<byte, T>(ref t.GetPinnableReference()), checked((int)t.ElementCount));
}
