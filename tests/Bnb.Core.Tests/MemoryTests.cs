using Bnb.Memory;
using CommunityToolkit.HighPerformance;

namespace Bnb.Tests;

public sealed class MemoryTests
{
    [Fact]
    public void Span_views_carry_dtype_shape_and_no_copy()
    {
        var data = new float[12];
        TensorRef t = TensorRef.FromSpan<float>(data, 3, 4);
        Assert.Equal(DType.F32, t.DType);
        Assert.Equal(TensorShape.Create(3, 4), t.Shape);
        Assert.True(t.IsContiguous);
        Assert.False(t.IsReadOnly);
        Assert.True(t.IsPresent);
        Assert.False(TensorRef.None.IsPresent);
    }

    [Fact]
    public void A_shape_larger_than_the_span_is_rejected_naming_the_sizes()
    {
        var e = Assert.Throws<ArgumentException>(() => TensorRef.FromSpan<float>(new float[5], 2, 3));
        Assert.Contains("6", e.Message, StringComparison.Ordinal);
        Assert.Equal("shape", e.ParamName);
        Assert.Throws<ArgumentException>(() => TensorRef.FromSpan<float>(new float[5], -1));
        Assert.Throws<ArgumentException>(() => TensorRef.FromSpan<float>(new float[5], 1, 1, 1, 1, 1));
    }

    [Fact]
    public void Read_only_views_come_from_read_only_spans()
    {
        ReadOnlySpan<Half> s = new Half[4];
        Assert.True(TensorRef.FromReadOnlySpan(s).IsReadOnly);
        Assert.Equal(DType.F16, TensorRef.FromReadOnlySpan(s).DType);
    }

    [Fact]
    public void Element_types_map_to_dtypes()
    {
        Assert.Equal(DType.BF16, DTypes.Of<BFloat16>());
        Assert.Equal(DType.I8, DTypes.Of<sbyte>());
        Assert.Equal(DType.I64, DTypes.Of<long>());
        Assert.Equal(DType.F64, DTypes.Of<double>());
        Assert.Throws<ArgumentException>(() => DTypes.Of<short>());
    }

    [Fact]
    public void Span2D_slices_become_row_strided_views()
    {
        var matrix = new float[6, 10];
        Span2D<float> slice = matrix.AsSpan2D().Slice(1, 2, 4, 5);
        TensorRef t = TensorRef.FromSpan2D(slice);
        Assert.Equal(TensorShape.Create(4, 5), t.Shape);
        Assert.Equal(TensorShape.Create(10, 1), t.Strides);
        Assert.False(t.IsContiguous);

        var m2 = new Memory2D<int>(new int[20], 4, 5);
        using var handle = TensorHandle.FromMemory2D(m2);
        Assert.Equal(TensorShape.Create(4, 5), handle.AsRef().Shape);
        Assert.True(handle.AsRef().IsContiguous);
    }

    [Fact]
    public unsafe void Native_pointer_views_keep_the_address()
    {
        long* buffer = stackalloc long[8];
        TensorRef t = TensorRef.FromPointer(buffer, DType.I64, [2, 4], device: "cpu_ref:0");
        Assert.Equal("cpu_ref:0", t.Device);
        fixed (byte* p = &t.GetPinnableReference())
        {
            Assert.Equal((nint)buffer, (nint)p);
        }

        Assert.Throws<ArgumentNullException>(() => TensorRef.FromPointer(0, DType.F32, [3]));
        Assert.Throws<ArgumentException>(() => TensorRef.FromPointer((nint)buffer, DType.F32, [2, 2], [1]));
    }

    [Fact]
    public void Memory_handles_pin_until_disposed()
    {
        var data = new byte[16];
        var handle = TensorHandle.FromMemory<byte>(data, 4, 4);
        Assert.Equal(TensorShape.Create(4, 4), handle.AsRef().Shape);
        handle.Dispose();
        Assert.Throws<ObjectDisposedException>(() => handle.AsRef());
        Assert.Throws<ArgumentException>(() => TensorHandle.FromMemory<byte>(data, 5, 4));
    }

    [Fact]
    public void Reshape_keeps_memory_and_checks_the_count()
    {
        var data = new int[12];
        TensorRef t = TensorRef.FromSpan<int>(data).Reshape(3, 4);
        Assert.Equal(TensorShape.Create(3, 4), t.Shape);
        Assert.Throws<ArgumentException>(() => TensorRef.FromSpan<int>(data).Reshape(5));
    }

    [Theory]
    [InlineData(1.0f, 0x3F80)]
    [InlineData(-2.5f, 0xC020)]
    [InlineData(1.00390625f, 0x3F80)] // exactly halfway, even stays
    [InlineData(1.01171875f, 0x3F82)] // halfway, odd rounds up
    [InlineData(3.4028235e38f, 0x7F80)] // rounds to +inf
    public void BFloat16_rounds_to_nearest_even(float value, int bits) =>
        Assert.Equal((ushort)bits, ((BFloat16)value).RawValue);

    [Fact]
    public void BFloat16_keeps_NaN_quiet_and_round_trips()
    {
        Assert.True(BFloat16.IsNaN((BFloat16)float.NaN));
        Assert.True(BFloat16.IsNaN((BFloat16)BitConverter.UInt32BitsToSingle(0x7F800001)));
        Assert.Equal(0.15625f, (float)(BFloat16)0.15625f);
    }
}
