using System.Text;
using Bnb.Memory;
using Bnb.Quantization;

namespace Bnb.Tests;

public sealed class QuantStateJsonTests
{
    [Theory]
    [InlineData(0.12884840369224548, "0.12884840369224548")]
    [InlineData(2.0, "2.0")]
    [InlineData(1e-05, "1e-05")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(1e16, "1e+16")]
    [InlineData(1e15, "1000000000000000.0")]
    [InlineData(-1.5e-7, "-1.5e-07")]
    [InlineData(123.456, "123.456")]
    [InlineData(0.0, "0.0")]
    [InlineData(double.PositiveInfinity, "Infinity")]
    public void Floats_print_like_python_repr(double value, string expected) =>
        Assert.Equal(expected, PythonFloat.Repr(value));

    [Fact]
    public void Nested_nf4_state_serializes_byte_for_byte_like_bitsandbytes()
    {
        byte[] golden = File.ReadAllBytes(Path.Combine(TestEnvironment.GoldenDirectory, "q4/nested/nf4.quant_state_json.u8.bin"));
        float offset = BitConverter.ToSingle(File.ReadAllBytes(Path.Combine(TestEnvironment.GoldenDirectory, "q4/nested/nf4.offset.f32.bin")));
        var state2 = new QuantState(new float[2], [2], new float[256], DType.F32, 256);
        var state = new QuantState(new byte[512], offset, state2, [64, 512], new float[16], DType.F32, 64, QuantType.Nf4);
        Assert.Equal(Encoding.UTF8.GetString(golden), Encoding.UTF8.GetString(state.ToPackedJson()));
        Assert.Equal(golden, state.ToPackedJson());
    }

    [Fact]
    public void Packed_json_parses_back()
    {
        byte[] golden = File.ReadAllBytes(Path.Combine(TestEnvironment.GoldenDirectory, "q4/nested/nf4.quant_state_json.u8.bin"));
        var info = QuantState.ParsePackedJson(golden);
        Assert.Equal(QuantType.Nf4, info.QuantType);
        Assert.Equal(64, info.Blocksize);
        Assert.Equal(DType.F32, info.DType);
        Assert.Equal([64L, 512L], info.Shape);
        Assert.Equal(256, info.NestedBlocksize);
        Assert.Equal(DType.F32, info.NestedDType);
        Assert.Equal(0.12884840369224548, info.NestedOffset);

        var state = QuantState.FromPacked(golden, new byte[512], new float[16], new float[2], new float[256]);
        Assert.True(state.Nested);
        Assert.Equal(golden, state.ToPackedJson());
    }

    [Fact]
    public void Plain_state_round_trips_and_bad_json_is_a_format_error()
    {
        var state = new QuantState(new float[4], [16, 16], new float[16], DType.BF16, 64, QuantType.Fp4);
        string json = Encoding.UTF8.GetString(state.ToPackedJson());
        Assert.Equal("{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [16, 16]}", json);
        var back = QuantState.FromPacked(state.ToPackedJson(), new byte[16], new float[16]);
        Assert.Equal(DType.BF16, back.DType);
        Assert.Equal(4, back.Absmax!.Length);

        Assert.Throws<FormatException>(() => QuantState.ParsePackedJson("{\"quant_type\": \"nf4\"}"u8));
        Assert.Throws<FormatException>(() => QuantState.ParsePackedJson("{\"quant_type\": \"nf5\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [1]}"u8));
        Assert.Throws<FormatException>(() => QuantState.ParsePackedJson("{\"bogus\": 1}"u8));
        Assert.Throws<FormatException>(() => QuantState.ParsePackedJson("not json"u8));
        Assert.Throws<InvalidOperationException>(() => new QuantState(new float[1], [1], new float[256], DType.F32, 64).ToPackedJson());
    }

    [Fact]
    public void Constructor_validates_obvious_arguments()
    {
        Assert.Throws<ArgumentNullException>(() => new QuantState(null!, [1], new float[16], DType.F32, 64));
        Assert.Throws<ArgumentOutOfRangeException>(() => new QuantState(new float[1], [1], new float[16], DType.F32, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new QuantState(new float[1], [-1], new float[16], DType.F32, 64));
    }
}
