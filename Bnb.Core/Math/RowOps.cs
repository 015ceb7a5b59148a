using System.Numerics;
using System.Runtime.InteropServices;

namespace Bnb.Dense;

/// <summary>
/// Row-wise float32 operations on row-major matrices [rows × cols] (contiguous): bias add, residual add, GELU,
/// LayerNorm, softmax, mean pooling and the vector helpers an encoder needs. Inputs are validated; a failed call
/// leaves its output untouched.
/// </summary>
public static class RowOps
{
    /// <summary>x[r, c] += bias[c] for every row.</summary>
    public static void AddBias(Span<float> x, ReadOnlySpan<float> bias)
    {
        int cols = bias.Length;
        CheckRows(x.Length, cols, nameof(x));
        for (int r = 0; r < x.Length; r += cols)
        {
            Add(x.Slice(r, cols), bias);
        }
    }

    /// <summary>x[i] += y[i] (same length).</summary>
    public static void Add(Span<float> x, ReadOnlySpan<float> y)
    {
        if (x.Length != y.Length)
        {
            throw new ArgumentException($"length {y.Length} differs from {x.Length}", nameof(y));
        }

        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var xv = MemoryMarshal.Cast<float, Vector<float>>(x);
            var yv = MemoryMarshal.Cast<float, Vector<float>>(y);
            for (int v = 0; v < xv.Length; v++)
            {
                xv[v] += yv[v];
            }

            i = xv.Length * Vector<float>.Count;
        }

        for (; i < x.Length; i++)
        {
            x[i] += y[i];
        }
    }

    /// <summary>x[i] *= s.</summary>
    public static void Scale(Span<float> x, float s)
    {
        for (int i = 0; i < x.Length; i++)
        {
            x[i] *= s;
        }
    }

    /// <summary>GELU in the exact (erf) form BERT uses: x · ½ · (1 + erf(x / √2)), in place.</summary>
    public static void Gelu(Span<float> x)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            x[i] = (float)(0.5 * v * (1.0 + Erf(v * 0.70710678118654752440)));
        }
    }

    /// <summary>
    /// The error function, |error| &lt; 1.2e-7 everywhere (the Chebyshev-fitted erfc of Numerical Recipes §6.2,
    /// evaluated in double) — below float32 resolution of GELU's output.
    /// </summary>
    public static double Erf(double x)
    {
        double z = Math.Abs(x);
        double t = 1.0 / (1.0 + (0.5 * z));
        double poly = -z * z - 1.26551223 + (t * (1.00002368 + (t * (0.37409196 + (t * (0.09678418 + (t * (-0.18628806
                      + (t * (0.27886807 + (t * (-1.13520398 + (t * (1.48851587 + (t * (-0.82215223 + (t * 0.17087277)))))))))))))))));
        double erfc = t * Math.Exp(poly);
        return x >= 0 ? 1.0 - erfc : erfc - 1.0;
    }

    /// <summary>
    /// LayerNorm over each row of <paramref name="x"/> (in place): (x − mean) / √(var + eps) · gamma + beta, with the
    /// biased variance as PyTorch and ONNX compute it; sums in double.
    /// </summary>
    public static void LayerNorm(Span<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float epsilon)
    {
        int cols = gamma.Length;
        if (beta.Length != cols)
        {
            throw new ArgumentException($"beta has {beta.Length} elements, gamma {cols}", nameof(beta));
        }

        if (!(epsilon >= 0) || float.IsInfinity(epsilon))
        {
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "epsilon must be finite and ≥ 0");
        }

        CheckRows(x.Length, cols, nameof(x));
        for (int r = 0; r < x.Length; r += cols)
        {
            Span<float> row = x.Slice(r, cols);
            double sum = 0;
            foreach (float v in row)
            {
                sum += v;
            }

            double mean = sum / cols, sq = 0;
            foreach (float v in row)
            {
                double d = v - mean;
                sq += d * d;
            }

            double inv = 1.0 / Math.Sqrt((sq / cols) + epsilon);
            for (int c = 0; c < cols; c++)
            {
                row[c] = (float)((row[c] - mean) * inv * gamma[c]) + beta[c];
            }
        }
    }

    /// <summary>Softmax over each row of <paramref name="x"/> [rows × cols] (in place), max-subtracted.</summary>
    public static void Softmax(Span<float> x, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        CheckRows(x.Length, cols, nameof(x));
        for (int r = 0; r < x.Length; r += cols)
        {
            Span<float> row = x.Slice(r, cols);
            float max = float.NegativeInfinity;
            foreach (float v in row)
            {
                max = Math.Max(max, v);
            }

            double sum = 0;
            for (int c = 0; c < cols; c++)
            {
                float e = MathF.Exp(row[c] - max);
                row[c] = e;
                sum += e;
            }

            float inv = (float)(1.0 / sum);
            for (int c = 0; c < cols; c++)
            {
                row[c] *= inv;
            }
        }
    }

    /// <summary>output[c] = mean over rows of x[r, c] (mean pooling of token vectors); sums in double.</summary>
    public static void MeanRows(ReadOnlySpan<float> x, int cols, Span<float> output)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        CheckRows(x.Length, cols, nameof(x));
        if (x.Length == 0)
        {
            throw new ArgumentException("mean of zero rows", nameof(x));
        }

        if (output.Length != cols)
        {
            throw new ArgumentException($"output has {output.Length} elements, expected {cols}", nameof(output));
        }

        int rows = x.Length / cols;
        Span<double> sums = cols <= 4096 ? stackalloc double[cols] : new double[cols];
        sums.Clear();
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> row = x.Slice(r * cols, cols);
            for (int c = 0; c < cols; c++)
            {
                sums[c] += row[c];
            }
        }

        for (int c = 0; c < cols; c++)
        {
            output[c] = (float)(sums[c] / rows);
        }
    }

    /// <summary>Dot product in double.</summary>
    public static double Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        if (x.Length != y.Length)
        {
            throw new ArgumentException($"length {y.Length} differs from {x.Length}", nameof(y));
        }

        double s = 0;
        for (int i = 0; i < x.Length; i++)
        {
            s += (double)x[i] * y[i];
        }

        return s;
    }

    /// <summary>Cosine similarity in double; 0 when either vector is all zeros.</summary>
    public static double Cosine(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        double xy = Dot(x, y), xx = Dot(x, x), yy = Dot(y, y);
        return xx == 0 || yy == 0 ? 0 : xy / Math.Sqrt(xx * yy);
    }

    private static void CheckRows(int length, int cols, string name)
    {
        if (cols <= 0 || length % cols != 0)
        {
            throw new ArgumentException($"{length} elements are not whole rows of {cols}", name);
        }
    }
}
