using Bnb.Errors;
using Bnb.Memory;
using Bnb.Quantization;

namespace Bnb.Tests;

/// <summary>Bad input gets a typed exception with the native message naming the argument; nothing crashes.</summary>
public sealed class ErrorTests(CpuRefFixture fixture) : IClassFixture<CpuRefFixture>
{
    private Quantizer Q => fixture.Quantizer;

    private static BnbInvalidArgumentException Rejected(BnbStatus status, Action call, params string[] mentions)
    {
        var e = Assert.Throws<BnbInvalidArgumentException>(call);
        Assert.Equal(status, e.Status);
        Assert.Equal("cpu_ref", e.Backend);
        foreach (string m in mentions)
        {
            Assert.Contains(m, e.Message, StringComparison.Ordinal);
        }

        return e;
    }

    [BackendTheory("cpu_ref")]
    [InlineData(100)]
    [InlineData(16)]
    [InlineData(8192)]
    public void Blocksizes_outside_32_to_4096_or_not_powers_of_two_are_rejected(int blocksize)
    {
        var x = new float[256];
        Rejected(BnbStatus.InvalidBlocksize, () => Q.QuantizeBlockwise<float>(x, blocksize: blocksize), "blocksize", blocksize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Rejected(BnbStatus.InvalidBlocksize, () => Q.Quantize4Bit<float>(x, blocksize: blocksize), "blocksize");
    }

    [BackendFact("cpu_ref")]
    public void A_short_output_is_rejected_and_left_untouched()
    {
        var x = new float[100];
        var codes = new byte[99];
        Array.Fill(codes, (byte)0xAB);
        var absmax = new float[2];
        var e = Rejected(BnbStatus.BufferTooSmall, () => Q.QuantizeBlockwise(TensorRef.FromSpan<float>(x), TensorRef.FromSpan<byte>(codes), TensorRef.FromSpan<float>(absmax), 64), "out_codes");
        Assert.Equal("quantize_blockwise", e.Operation);
        Assert.All(codes, b => Assert.Equal(0xAB, b));

        var packed = new byte[49];
        Rejected(BnbStatus.BufferTooSmall, () => Q.Quantize4Bit(TensorRef.FromSpan<float>(x), TensorRef.FromSpan<byte>(packed), TensorRef.FromSpan<float>(absmax), QuantType.Nf4, 64), "out_packed");
    }

    [BackendFact("cpu_ref")]
    public void An_unsupported_input_dtype_is_rejected()
    {
        var x = new int[64];
        Rejected(BnbStatus.UnsupportedDType, () => Q.QuantizeBlockwise<int>(x, blocksize: 64), "A");
        Rejected(BnbStatus.UnsupportedDType, () => Q.Quantize4Bit<double>(new double[64]), "A");
    }

    [BackendFact("cpu_ref")]
    public void Mismatched_shapes_are_rejected()
    {
        var a = new sbyte[4 * 8];
        var b = new sbyte[3 * 9];
        var c = new int[4 * 3];
        Rejected(BnbStatus.ShapeMismatch, () => Q.Int8LinearMatmul(TensorRef.FromSpan<sbyte>(a, 4, 8), TensorRef.FromSpan<sbyte>(b, 3, 9), TensorRef.FromSpan<int>(c, 4, 3)));
    }

    [BackendFact("cpu_ref")]
    public void A_missing_required_tensor_is_a_null_pointer_error()
    {
        var codes = new byte[64];
        var absmax = new float[1];
        Rejected(BnbStatus.NullPointer, () => Q.QuantizeBlockwise(TensorRef.None, TensorRef.FromSpan<byte>(codes), TensorRef.FromSpan<float>(absmax), 64), "A");
        Rejected(BnbStatus.NullPointer, () => Q.Quantize4Bit(TensorRef.FromSpan<float>(new float[64]), TensorRef.None, TensorRef.FromSpan<float>(absmax)), "out_packed");
    }

    [BackendFact("cpu_ref")]
    public void NaN_and_Inf_are_rejected_under_the_default_policy_and_encoded_under_Propagate()
    {
        var x = new float[128];
        x[70] = float.NaN;
        var e = Rejected(BnbStatus.NonFinite, () => Q.QuantizeBlockwise<float>(x, blocksize: 64), "70");
        Assert.IsType<BnbInvalidArgumentException>(e);
        x[70] = float.PositiveInfinity;
        Rejected(BnbStatus.NonFinite, () => Q.Quantize4Bit<float>(x));

        var r = fixture.PropagatingQuantizer.QuantizeBlockwise<float>(x, blocksize: 64, rounding: Rounding.BnbCpuLut);
        Assert.True(float.IsPositiveInfinity(r.State.Absmax![1]));
    }

    [BackendFact("cpu_ref")]
    public void Empty_and_single_element_inputs_work()
    {
        var empty = Q.QuantizeBlockwise<float>([], blocksize: 64);
        Assert.Empty(empty.Data);
        var one = Q.Quantize4Bit<float>([0.5f]);
        Assert.Single(one.Data);
        Assert.Equal(0.5f, Assert.Single(Q.Dequantize4Bit<float>(one.Data, one.State)));
    }

    [BackendFact("cpu_ref")]
    public void Csharp_side_checks_name_the_argument()
    {
        var x = new float[64];
        var codes = new byte[64];
        var absmax = new float[1];
        var e = Assert.Throws<ArgumentException>(() => Q.QuantizeBlockwise(TensorRef.FromSpan<float>(x), TensorRef.FromReadOnlySpan<byte>(codes), TensorRef.FromSpan<float>(absmax), 64));
        Assert.Equal("outCodes", e.ParamName);
        Assert.Throws<ArgumentException>(() => Q.Quantize4Bit<float>(x, shape: [3, 3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Q.QuantizeBlockwise<float>(x, blocksize: -64));
        Assert.Throws<ArgumentException>(() => Q.Int8VectorwiseQuant<float>(x, 3, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => Q.Int8LinearMatmul(new sbyte[4], new sbyte[4], -2, 2, -2));
        var state8 = new QuantState(absmax, [64], new float[256], DType.F32, 64);
        Assert.Throws<ArgumentException>(() => Q.Dequantize4Bit<float>(codes, state8));
        Assert.Throws<ArgumentNullException>(() => Q.Dequantize4Bit<float>(codes, null!));
    }

    [BackendFact("cpu_ref")]
    public void A_disposed_context_is_reported_not_used()
    {
        using var runtime = TestEnvironment.CreateRuntime(false, "cpu_ref");
        var context = runtime.CreateContext();
        var q = new Quantizer(context);
        context.Dispose();
        Assert.Throws<ObjectDisposedException>(() => q.Quantize4Bit<float>(new float[64]));
    }
}
