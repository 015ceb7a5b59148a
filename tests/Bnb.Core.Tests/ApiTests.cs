using Bnb.Memory;
using Bnb.Quantization;
using CommunityToolkit.HighPerformance;

namespace Bnb.Tests;

/// <summary>The allocating and caller-buffer overloads agree, across every kind of tensor view.</summary>
public sealed class ApiTests(CpuRefFixture fixture) : IClassFixture<CpuRefFixture>
{
    private Quantizer Q => fixture.Quantizer;

    private static float[] Sample(int n, int seed)
    {
        var r = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() * 2) - 1))];
    }

    [BackendFact("cpu_ref")]
    public void Pinned_memory_handles_and_spans_give_the_same_codes()
    {
        float[] x = Sample(1000, 1);
        var expected = Q.Quantize4Bit<float>(x, blocksize: 64);
        var packed = new byte[500];
        var absmax = new float[16];
        using (var input = TensorHandle.FromReadOnlyMemory<float>(x))
        using (var outPacked = TensorHandle.FromMemory<byte>(packed))
        using (var outAbsmax = TensorHandle.FromMemory<float>(absmax))
        {
            Q.Quantize4Bit(input.AsRef(), outPacked.AsRef(), outAbsmax.AsRef(), QuantType.Nf4, 64);
        }

        Assert.Equal(expected.Data, packed);
        Assert.Equal(expected.State.Absmax!, absmax);
    }

    [BackendFact("cpu_ref")]
    public void A_row_strided_Span2D_slice_is_read_in_place()
    {
        // A [3, 8] window of a [3, 12] matrix: row stride 12, no copy at the boundary.
        float[] big = Sample(36, 2);
        Span2D<float> window = new Span2D<float>(big, 3, 12).Slice(0, 2, 3, 8);
        float[] dense = [.. Enumerable.Range(0, 3).SelectMany(r => big.Skip((r * 12) + 2).Take(8))];
        var expected = Q.Int8VectorwiseQuant<float>(dense, 3, 8);

        var ca = new sbyte[24];
        var stats = new float[3];
        Q.Int8VectorwiseQuant(TensorRef.FromSpan2D(window), TensorRef.FromSpan<sbyte>(ca, 3, 8), TensorRef.FromSpan<float>(stats));
        Assert.Equal(expected.CA, ca);
        Assert.Equal(expected.RowStats, stats);
    }

    [BackendFact("cpu_ref")]
    public void Gemm_matches_dequantize_then_matmul()
    {
        const int m = 20, n = 32, k = 128;
        float[] a = Sample(m * k, 3), w = Sample(n * k, 4), bias = Sample(n, 5);
        var qw = Q.Quantize4Bit<float>(w, [n, k], QuantType.Nf4, 64, compressStatistics: true);
        float[] wd = Q.Dequantize4Bit<float>(qw.Data, qw.State);
        float[] output = Q.Gemm4Bit<float>(a, m, qw.Data, qw.State, bias);
        float[] gemv = Q.Gemm4Bit<float>(a.AsSpan(0, k), 1, qw.Data, qw.State, bias);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = bias[j];
                for (int t = 0; t < k; t++)
                {
                    sum += (double)a[(i * k) + t] * wd[(j * k) + t];
                }

                Assert.Equal(sum, output[(i * n) + j], 1e-4);
                if (i == 0)
                {
                    Assert.Equal(sum, gemv[j], 1e-4);
                }
            }
        }
    }

    [BackendFact("cpu_ref")]
    public void Double_quant_rows_agree_with_vectorwise_quant()
    {
        float[] a = Sample(16 * 24, 6);
        a[(3 * 24) + 5] = 9f;
        var dq = Q.Int8DoubleQuant<float>(a, 16, 24, threshold: 6f);
        var vq = Q.Int8VectorwiseQuant<float>(a, 16, 24, threshold: 6f);
        Assert.Equal(vq.CA, dq.CA);
        Assert.Equal(vq.RowStats, dq.RowStats);
        Assert.Equal([5L], dq.OutlierColumns!);
        Assert.Equal(24, dq.ColStats.Length);
        Assert.Equal(0, dq.CAt[(3 * 24) + 5]);
    }

    [BackendFact("cpu_ref")]
    public void Nested_8bit_state_dequantizes_through_the_allocating_overloads()
    {
        float[] x = Sample(64 * 300, 7);
        var plain = Q.QuantizeBlockwise<float>(x, blocksize: 64);
        var nested = Q.QuantizeBlockwise<float>(x, blocksize: 64, nested: true);
        Assert.True(nested.State.Nested);
        Assert.Equal(plain.State.Absmax!.Length, nested.State.QuantizedAbsmax!.Length);
        Half[] h = Q.DequantizeBlockwise<Half>(nested.Data, nested.State);
        float[] f = Q.DequantizeBlockwise<float>(plain.Data, plain.State);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.True(Math.Abs((float)h[i] - f[i]) < 2e-2, $"[{i}] {h[i]} vs {f[i]}");
        }
    }

    [BackendFact("cpu_ref")]
    public void Code_tables_come_from_the_backend_and_are_copies()
    {
        float[] nf4 = Q.GetCodeTable(CodeTable.Nf4);
        Assert.Equal(16, nf4.Length);
        Assert.Equal(-1f, nf4[0]);
        nf4[0] = 42f;
        Assert.Equal(-1f, Q.GetCodeTable(CodeTable.Nf4)[0]);
        Assert.Equal(256, Q.GetCodeTable(CodeTable.DynamicUnsigned).Length);
    }
}
