using Bnb.Memory;

namespace Bnb.Quantization;

/// <summary>Row-wise int8 quantization result (LLM.int8()).</summary>
/// <param name="CA">int8 [rows, cols], row-major.</param>
/// <param name="RowStats">Per-row absmax over non-outlier elements.</param>
/// <param name="OutlierColumns">Ascending outlier column indices; null when the threshold was 0.</param>
public sealed record Int8Quantized(sbyte[] CA, float[] RowStats, long[]? OutlierColumns);

/// <summary>Row- and column-wise int8 quantization result.</summary>
/// <param name="CA">Row-quantized int8 [rows, cols].</param>
/// <param name="CAt">Column-quantized int8 [rows, cols].</param>
/// <param name="RowStats">Per-row absmax.</param>
/// <param name="ColStats">Per-column absmax.</param>
/// <param name="OutlierColumns">Ascending outlier column indices; null when the threshold was 0.</param>
public sealed record Int8DoubleQuantized(sbyte[] CA, sbyte[] CAt, float[] RowStats, float[] ColStats, long[]? OutlierColumns);

/// <summary>LLM.int8() primitives.</summary>
public sealed partial class Quantizer
{
    /// <summary>
    /// Row-wise absmax int8 quantization of <paramref name="a"/> [rows, cols] (spec §2.8.1). With a positive
    /// <paramref name="threshold"/>, columns holding any |a| ≥ threshold are outliers: excluded from the row stats,
    /// zeroed in CA and listed in <paramref name="outlierColumns"/> (i64, capacity ≥ cols).
    /// </summary>
    /// <returns>The number of outlier columns.</returns>
    public long Int8VectorwiseQuant(TensorRef a, TensorRef ca, TensorRef rowStats, TensorRef outlierColumns = default, float threshold = 0f) =>
        Context.Native.Int8VectorwiseQuant(Context.Handle, a, threshold, ca, rowStats, outlierColumns);

    /// <summary>Allocating row-wise int8 quantization of row-major <paramref name="a"/> [rows, cols].</summary>
    public Int8Quantized Int8VectorwiseQuant<T>(ReadOnlySpan<T> a, int rows, int cols, float threshold = 0f)
        where T : unmanaged
    {
        CheckMatrix(a.Length, rows, cols, nameof(a));
        var ca = new sbyte[a.Length];
        var stats = new float[rows];
        var outliers = new long[cols];
        long count = Int8VectorwiseQuant(TensorRef.FromReadOnlySpan(a, rows, cols), TensorRef.FromSpan<sbyte>(ca, rows, cols), TensorRef.FromSpan<float>(stats), TensorRef.FromSpan<long>(outliers), threshold);
        return new Int8Quantized(ca, stats, threshold > 0 ? outliers[..(int)count] : null);
    }

    /// <summary><c>output = CA · rowStats[:, None] / 127</c> as float32.</summary>
    public void Int8VectorwiseDequant(TensorRef ca, TensorRef rowStats, TensorRef output) =>
        Context.Native.Int8VectorwiseDequant(Context.Handle, ca, rowStats, output);

    /// <summary>Allocating <see cref="Int8VectorwiseDequant(TensorRef, TensorRef, TensorRef)"/>; CA is [rows, cols] with rows = rowStats.Length.</summary>
    public float[] Int8VectorwiseDequant(ReadOnlySpan<sbyte> ca, ReadOnlySpan<float> rowStats)
    {
        int rows = rowStats.Length;
        int cols = rows == 0 ? 0 : ca.Length / rows;
        CheckMatrix(ca.Length, rows, cols, nameof(ca));
        var output = new float[ca.Length];
        Int8VectorwiseDequant(TensorRef.FromReadOnlySpan(ca, rows, cols), TensorRef.FromReadOnlySpan(rowStats), TensorRef.FromSpan<float>(output, rows, cols));
        return output;
    }

    /// <summary><c>output[M, N] = a[M, K] · b[N, K]ᵀ</c> exactly in int32.</summary>
    public void Int8LinearMatmul(TensorRef a, TensorRef b, TensorRef output) =>
        Context.Native.Int8LinearMatmul(Context.Handle, a, b, output);

    /// <summary>Allocating int8 matmul of row-major a [M, K] and b [N, K].</summary>
    public int[] Int8LinearMatmul(ReadOnlySpan<sbyte> a, ReadOnlySpan<sbyte> b, int m, int n, int k)
    {
        CheckMatrix(a.Length, m, k, nameof(a));
        CheckMatrix(b.Length, n, k, nameof(b));
        var output = new int[checked(m * n)];
        Int8LinearMatmul(TensorRef.FromReadOnlySpan(a, m, k), TensorRef.FromReadOnlySpan(b, n, k), TensorRef.FromSpan<int>(output, m, n));
        return output;
    }

    /// <summary>
    /// <c>output = T(fma(C·rowStats[m]·colStats[n], 1/127², bias[n]))</c> — CUDA's formula (spec §2.8.4).
    /// </summary>
    public void Int8MmDequant(TensorRef c, TensorRef rowStats, TensorRef colStats, TensorRef output, TensorRef bias = default) =>
        Context.Native.Int8MmDequant(Context.Handle, c, rowStats, colStats, bias, output);

    /// <summary>Allocating int8 matmul dequantization; C is [rowStats.Length, colStats.Length], the result dtype is <typeparamref name="T"/>.</summary>
    public T[] Int8MmDequant<T>(ReadOnlySpan<int> c, ReadOnlySpan<float> rowStats, ReadOnlySpan<float> colStats, ReadOnlySpan<T> bias = default)
        where T : unmanaged
    {
        int m = rowStats.Length, n = colStats.Length;
        CheckMatrix(c.Length, m, n, nameof(c));
        var output = new T[c.Length];
        Int8MmDequant(TensorRef.FromReadOnlySpan(c, m, n), TensorRef.FromReadOnlySpan(rowStats), TensorRef.FromReadOnlySpan(colStats), TensorRef.FromSpan<T>(output, m, n), bias.IsEmpty ? default : TensorRef.FromReadOnlySpan(bias));
        return output;
    }

    /// <summary>Row- and column-wise int8 quantization in one pass (spec §2.8.2).</summary>
    /// <returns>The number of outlier columns.</returns>
    public long Int8DoubleQuant(TensorRef a, TensorRef ca, TensorRef cat, TensorRef rowStats, TensorRef colStats, TensorRef outlierColumns = default, float threshold = 0f) =>
        Context.Native.Int8DoubleQuant(Context.Handle, a, threshold, ca, cat, rowStats, colStats, outlierColumns);

    /// <summary>Allocating <see cref="Int8DoubleQuant(TensorRef, TensorRef, TensorRef, TensorRef, TensorRef, TensorRef, float)"/>.</summary>
    public Int8DoubleQuantized Int8DoubleQuant<T>(ReadOnlySpan<T> a, int rows, int cols, float threshold = 0f)
        where T : unmanaged
    {
        CheckMatrix(a.Length, rows, cols, nameof(a));
        var ca = new sbyte[a.Length];
        var cat = new sbyte[a.Length];
        var rs = new float[rows];
        var cs = new float[cols];
        var outliers = new long[cols];
        long count = Int8DoubleQuant(
            TensorRef.FromReadOnlySpan(a, rows, cols), TensorRef.FromSpan<sbyte>(ca, rows, cols), TensorRef.FromSpan<sbyte>(cat, rows, cols),
            TensorRef.FromSpan<float>(rs), TensorRef.FromSpan<float>(cs), TensorRef.FromSpan<long>(outliers), threshold);
        return new Int8DoubleQuantized(ca, cat, rs, cs, threshold > 0 ? outliers[..(int)count] : null);
    }

    private static void CheckMatrix(int length, int rows, int cols, string argument)
    {
        if (rows < 0 || cols < 0)
        {
            throw new ArgumentOutOfRangeException(argument, $"matrix dimensions [{rows}, {cols}] must not be negative");
        }

        if ((long)rows * cols != length)
        {
            throw new ArgumentException($"{argument} has {length} elements, not [{rows}, {cols}] = {(long)rows * cols}", argument);
        }
    }
}
