using Bnb.Memory;

namespace Bnb.Tests.Golden;

/// <summary>Comparisons used by the golden tests: bitwise (with +0 = -0 and NaN = NaN) and tolerance-based.</summary>
internal static class Compare
{
    public static void Bytes<T>(ReadOnlySpan<T> expected, ReadOnlySpan<T> actual, string what)
        where T : unmanaged, IEquatable<T>
    {
        Assert.True(expected.Length == actual.Length, $"{what}: expected {expected.Length} elements, got {actual.Length}");
        int bad = 0, first = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            if (!expected[i].Equals(actual[i]))
            {
                bad++;
                first = first < 0 ? i : first;
            }
        }

        Assert.True(bad == 0, $"{what}: {bad} of {expected.Length} elements differ; first at [{first}]: expected {(first >= 0 ? expected[first] : default)}, got {(first >= 0 ? actual[first] : default)}");
    }

    /// <summary>Bit-exact float comparison, except that +0 equals -0 and any NaN equals any NaN.</summary>
    public static void Floats(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: expected {expected.Length} elements, got {actual.Length}");
        int bad = 0, first = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            if (!Same(expected[i], actual[i]))
            {
                bad++;
                first = first < 0 ? i : first;
            }
        }

        Assert.True(bad == 0, $"{what}: {bad} of {expected.Length} elements differ bitwise; first at [{first}]: expected {(first >= 0 ? expected[first].ToString("R") : "")}, got {(first >= 0 ? actual[first].ToString("R") : "")}");
    }

    public static void Halves(ReadOnlySpan<Half> expected, ReadOnlySpan<Half> actual, string what) =>
        Floats(Widen(expected), Widen(actual), what);

    public static void BFloats(ReadOnlySpan<BFloat16> expected, ReadOnlySpan<BFloat16> actual, string what) =>
        Floats(Widen(expected), Widen(actual), what);

    /// <summary>|expected - actual| ≤ atol + rtol·|expected| for every element.</summary>
    public static void Close(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double atol, double rtol, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: expected {expected.Length} elements, got {actual.Length}");
        int bad = 0, first = -1;
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs(expected[i] - actual[i]);
            if (!(err <= atol + (rtol * Math.Abs(expected[i]))))
            {
                bad++;
                first = first < 0 ? i : first;
                worst = Math.Max(worst, err);
            }
        }

        Assert.True(bad == 0, $"{what}: {bad} of {expected.Length} elements outside atol {atol} + rtol {rtol}; first at [{first}] expected {(first >= 0 ? expected[first] : 0)}, got {(first >= 0 ? actual[first] : 0)}; worst error {worst}");
    }

    public static double[] ToDouble(ReadOnlySpan<float> values)
    {
        var r = new double[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            r[i] = values[i];
        }

        return r;
    }

    public static float[] Widen(ReadOnlySpan<Half> values)
    {
        var r = new float[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            r[i] = (float)values[i];
        }

        return r;
    }

    public static float[] Widen(ReadOnlySpan<BFloat16> values)
    {
        var r = new float[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            r[i] = values[i];
        }

        return r;
    }

    /// <summary>Units in the last place between two finite floats of the same sign.</summary>
    public static long Ulps(float a, float b) =>
        Math.Abs((long)BitConverter.SingleToInt32Bits(a) - BitConverter.SingleToInt32Bits(b));

    private static bool Same(float a, float b) =>
        (float.IsNaN(a) && float.IsNaN(b)) || (a == 0 && b == 0) || BitConverter.SingleToInt32Bits(a) == BitConverter.SingleToInt32Bits(b);
}
