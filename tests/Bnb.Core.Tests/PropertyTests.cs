using Bnb.Quantization;
using CsCheck;

namespace Bnb.Tests;

/// <summary>CsCheck properties of the quantizers on the reference backend.</summary>
public sealed class PropertyTests(CpuRefFixture fixture) : IClassFixture<CpuRefFixture>
{
    private static readonly int[] Blocksizes = [32, 64, 128, 256, 512, 1024, 2048, 4096];

    private static readonly Gen<float[]> Values = Gen.Float[-100f, 100f].Array[1, 3000];

    private Quantizer Q => fixture.Quantizer;

    /// <summary>Largest distance from any point of [-1, 1] to its nearest table entry.</summary>
    private static double HalfGap(float[] table)
    {
        float[] t = [.. table.Order()];
        double worst = Math.Max(t[0] + 1.0, 1.0 - t[^1]);
        for (int i = 1; i < t.Length; i++)
        {
            worst = Math.Max(worst, (t[i] - (double)t[i - 1]) / 2);
        }

        return worst;
    }

    private static void AssertWithinBlockBound(float[] x, float[] y, float[] absmax, int blocksize, double halfGap, string what)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double bound = (absmax[i / blocksize] * halfGap * (1 + 1e-5)) + 1e-30;
            Assert.True(Math.Abs(x[i] - (double)y[i]) <= bound, $"{what}: |{x[i]} - {y[i]}| > {bound} at [{i}]");
        }
    }

    [BackendTheory("cpu_ref")]
    [InlineData(Rounding.Nearest)]
    [InlineData(Rounding.BnbCpuLut)]
    public void Blockwise_8bit_round_trip_error_is_bounded_by_the_table_gap(Rounding rounding)
    {
        float[] table = Q.GetCodeTable(CodeTable.DynamicSigned);

        // The LUT quantizer is not exact nearest: it may be off by its grid resolution 2/65535 (spec §2.5.3).
        double halfGap = HalfGap(table) + (rounding == Rounding.BnbCpuLut ? 2.0 / 65535 : 0);
        Gen.Select(Values, Gen.OneOfConst(Blocksizes)).Sample((x, bs) =>
        {
            var r = Q.QuantizeBlockwise<float>(x, blocksize: bs, rounding: rounding);
            float[] y = Q.DequantizeBlockwise<float>(r.Data, r.State);
            AssertWithinBlockBound(x, y, r.State.Absmax!, bs, halfGap, $"8-bit {rounding} bs {bs}");
        }, iter: 60);
    }

    [BackendTheory("cpu_ref")]
    [InlineData(QuantType.Nf4)]
    [InlineData(QuantType.Fp4)]
    public void Four_bit_round_trip_error_is_bounded_by_the_table_gap(QuantType type)
    {
        double halfGap = HalfGap(Q.GetCodeTable(type.Table()));
        Gen.Select(Values, Gen.OneOfConst(Blocksizes)).Sample((x, bs) =>
        {
            var r = Q.Quantize4Bit<float>(x, quantType: type, blocksize: bs);
            float[] y = Q.Dequantize4Bit<float>(r.Data, r.State);
            AssertWithinBlockBound(x, y, r.State.Absmax!, bs, halfGap, $"{type} bs {bs}");
        }, iter: 60);
    }

    [BackendFact("cpu_ref")]
    public void Quantizing_dequantized_8bit_codes_gives_the_same_codes()
    {
        // Representable values: each block holds code 255 (1.0) once, so its absmax survives the round trip.
        var gen = Gen.Select(Gen.Byte.Array[1, 2000], Gen.OneOfConst(Blocksizes), Gen.Float[1e-3f, 1e3f]);
        gen.Sample((codes, bs, scale) =>
        {
            for (int i = 0; i < codes.Length; i += bs)
            {
                codes[i] = 255;
            }

            int blocks = (codes.Length + bs - 1) / bs;
            var absmax = Enumerable.Range(0, blocks).Select(b => scale * (1 + b)).ToArray();
            float[] table = Q.GetCodeTable(CodeTable.DynamicSigned);
            var state = new QuantState(absmax, [codes.Length], table, Memory.DType.F32, bs);
            float[] y = Q.DequantizeBlockwise<float>(codes, state);
            var again = Q.QuantizeBlockwise<float>(y, blocksize: bs);
            Assert.Equal(codes, again.Data);
            Assert.Equal(absmax, again.State.Absmax!);
        }, iter: 60);
    }

    [BackendTheory("cpu_ref")]
    [InlineData(QuantType.Nf4)]
    [InlineData(QuantType.Fp4)]
    public void Quantizing_dequantized_4bit_codes_gives_the_same_codes(QuantType type)
    {
        float[] table = Q.GetCodeTable(type.Table());
        int one = Array.IndexOf(table, 1f);

        // FP4 code 8 is "-0", stored as +0 like code 0; +0 re-quantizes to code 0, so it is not a distinct value.
        int[] usable = [.. Enumerable.Range(0, 16).Where(c => !(type == QuantType.Fp4 && c == 8))];
        var gen = Gen.Select(Gen.OneOfConst(usable).Array[1, 2000], Gen.OneOfConst(Blocksizes), Gen.Float[1e-3f, 1e3f]);
        gen.Sample((nibbles, bs, scale) =>
        {
            if (nibbles.Length % 2 == 1)
            {
                nibbles = [.. nibbles, 0];
            }

            for (int i = 0; i < nibbles.Length; i += bs)
            {
                nibbles[i] = one;
            }

            var packed = new byte[nibbles.Length / 2];
            for (int i = 0; i < packed.Length; i++)
            {
                packed[i] = (byte)((nibbles[2 * i] << 4) | nibbles[(2 * i) + 1]);
            }

            int blocks = (nibbles.Length + bs - 1) / bs;
            var absmax = Enumerable.Range(0, blocks).Select(b => scale * (1 + b)).ToArray();
            var state = new QuantState(absmax, [nibbles.Length], table, Memory.DType.F32, bs, type);
            float[] y = Q.Dequantize4Bit<float>(packed, state);
            var again = Q.Quantize4Bit<float>(y, quantType: type, blocksize: bs);
            Assert.Equal(packed, again.Data);
            Assert.Equal(absmax, again.State.Absmax!);
        }, iter: 60);
    }

    [BackendTheory("cpu_ref")]
    [InlineData(Rounding.Nearest)]
    [InlineData(Rounding.BnbCpuLut)]
    public void Blockwise_8bit_results_do_not_depend_on_how_blocks_are_split_into_calls(Rounding rounding)
    {
        Gen.Select(Values, Gen.OneOfConst(Blocksizes), Gen.Int[0, 100]).Sample((x, bs, cut) =>
        {
            int blocks = (x.Length + bs - 1) / bs;
            int split = Math.Min(cut % (blocks + 1), blocks) * bs;
            split = Math.Min(split, x.Length);
            var whole = Q.QuantizeBlockwise<float>(x, blocksize: bs, rounding: rounding);
            var head = Q.QuantizeBlockwise<float>(x.AsSpan(0, split), blocksize: bs, rounding: rounding);
            var tail = Q.QuantizeBlockwise<float>(x.AsSpan(split), blocksize: bs, rounding: rounding);
            Assert.Equal(whole.Data, head.Data.Concat(tail.Data).ToArray());
            Assert.Equal(whole.State.Absmax!, head.State.Absmax!.Concat(tail.State.Absmax!).ToArray());
        }, iter: 60);
    }

    [BackendTheory("cpu_ref")]
    [InlineData(QuantType.Nf4)]
    [InlineData(QuantType.Fp4)]
    public void Four_bit_results_do_not_depend_on_how_blocks_are_split_into_calls(QuantType type)
    {
        Gen.Select(Values, Gen.OneOfConst(Blocksizes), Gen.Int[0, 100]).Sample((x, bs, cut) =>
        {
            int blocks = (x.Length + bs - 1) / bs;
            int split = Math.Min(Math.Min(cut % (blocks + 1), blocks) * bs, x.Length);
            var whole = Q.Quantize4Bit<float>(x, quantType: type, blocksize: bs);
            var head = Q.Quantize4Bit<float>(x.AsSpan(0, split), quantType: type, blocksize: bs);
            var tail = Q.Quantize4Bit<float>(x.AsSpan(split), quantType: type, blocksize: bs);
            Assert.Equal(whole.Data, head.Data.Concat(tail.Data).ToArray());
            Assert.Equal(whole.State.Absmax!, head.State.Absmax!.Concat(tail.State.Absmax!).ToArray());
        }, iter: 60);
    }
}
