using Bnb.Memory;
using Bnb.Quantization;

namespace Bnb.Tests;

/// <summary>Quantizer.WeightPack/WeightUnpack/WeightPackSize and the AbsmaxRef GEMV/GEMM overloads.</summary>
public sealed class WeightPackTests(CpuRefFixture fixture) : IClassFixture<CpuRefFixture>
{
    private Quantizer Q => fixture.Quantizer;

    private static float[] Sample(int n, int seed)
    {
        var r = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() * 2) - 1))];
    }

    [BackendTheory("cpu_ref")]
    [InlineData(WeightFormat.Standard)]
    [InlineData(WeightFormat.Backend)]
    public void Weight_pack_round_trips_and_the_packed_layout_gives_the_same_gemv(WeightFormat format)
    {
        const int n = 48, k = 256, blocksize = 64;
        float[] w = Sample(n * k, 7);
        var q = Q.Quantize4Bit<float>(w, [n, k], QuantType.Nf4, blocksize);

        long size = Q.WeightPackSize(format, n, k, blocksize);
        Assert.True(size >= (n * k) / 2);
        byte[] packed = Q.WeightPack(format, q.Data, n, k, blocksize);
        Assert.Equal(size, packed.Length);
        Assert.Equal(q.Data, Q.WeightUnpack(format, packed, n, k, blocksize));

        float[] a = Sample(k, 8);
        var expected = new float[n];
        var actual = new float[n];
        Q.Gemv4Bit(TensorRef.FromReadOnlySpan<float>(a, 1, k), TensorRef.FromReadOnlySpan<byte>(q.Data), q.State, TensorRef.FromSpan<float>(expected, 1, n));
        Q.Gemv4Bit(
            TensorRef.FromReadOnlySpan<float>(a, 1, k), TensorRef.FromReadOnlySpan<byte>(packed), AbsmaxRef.Plain(TensorRef.FromReadOnlySpan<float>(q.State.Absmax!)),
            QuantType.Nf4, blocksize, TensorRef.FromSpan<float>(actual, 1, n), format: format);
        Assert.Equal(expected, actual);

        var viaGemm = new float[n];
        Q.Gemm4Bit(
            TensorRef.FromReadOnlySpan<float>(a, 1, k), TensorRef.FromReadOnlySpan<byte>(packed), AbsmaxRef.Plain(TensorRef.FromReadOnlySpan<float>(q.State.Absmax!)),
            QuantType.Nf4, blocksize, TensorRef.FromSpan<float>(viaGemm, 1, n), format: format);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(expected[i], viaGemm[i], 1e-3f);
        }
    }
}
