using Bnb.Errors;
using Bnb.Memory;
using BFloat16 = Bnb.Memory.BFloat16;
using Bnb.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Bnb.TorchSharp.Tests;

/// <summary>TensorRef from torch tensors and torch tensors over our memory: no copies, exact layout mapping.</summary>
public sealed class InteropTests(CpuRefQuantizer fixture) : IClassFixture<CpuRefQuantizer>
{
    private Quantizer Q => fixture.Quantizer;

    private static float[] Sample(int n, int seed)
    {
        var r = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() * 2) - 1))];
    }

    private static unsafe nint AddressOf<T>(T[] array)
        where T : unmanaged
    {
        fixed (T* p = array)
        {
            return (nint)p;
        }
    }

    [TorchFact]
    public void A_tensor_over_our_array_shares_its_memory_both_ways()
    {
        float[] data = [1, 2, 3, 4, 5, 6];
        using Tensor t = data.ToTorch(2, 3);
        Assert.Equal(AddressOf(data), t.DataPointer());
        Assert.Equal(new long[] { 2, 3 }, t.shape);
        Assert.Equal(ScalarType.Float32, t.dtype);

        t[1, 1] = torch.tensor(42f);
        Assert.Equal(42f, data[4]);
        data[0] = -7f;
        Assert.Equal(-7f, t[0, 0].item<float>());
    }

    [TorchFact]
    public void DataPointer_of_a_slice_is_the_storage_address_plus_its_offset()
    {
        float[] data = Sample(12, 1);
        using Tensor t = data.ToTorch(3, 4);
        using Tensor slice = t.narrow(0, 1, 2).narrow(1, 1, 2); // rows 1..2, cols 1..2: first element is data[5]
        Assert.Equal(AddressOf(data) + (5 * sizeof(float)), slice.DataPointer());
    }

    [TorchFact]
    public void Bnb_reads_the_torch_input_and_writes_its_results_into_torch_tensors_in_place()
    {
        float[] x = Sample(1000, 2);
        var expected = Q.Quantize4Bit<float>(x, blocksize: 64);

        using Tensor input = torch.tensor(x);
        using Tensor packed = torch.full([500], 0xAB, ScalarType.Byte);
        using Tensor absmax = torch.zeros([16], ScalarType.Float32);
        Q.Quantize4Bit(input.AsBnbRef(), packed.AsBnbRef(), absmax.AsBnbRef(), QuantType.Nf4, 64);

        Assert.Equal(expected.Data, packed.data<byte>().ToArray());
        Assert.Equal(expected.State.Absmax!, absmax.data<float>().ToArray());

        // Change the torch input: Bnb sees the new values (it reads the tensor's memory, not a snapshot).
        input.mul_(-1f);
        var negated = Q.Quantize4Bit<float>([.. x.Select(v => -v)], blocksize: 64);
        Q.Quantize4Bit(input.AsBnbRef(), packed.AsBnbRef(), absmax.AsBnbRef(), QuantType.Nf4, 64);
        Assert.Equal(negated.Data, packed.data<byte>().ToArray());
    }

    [TorchFact]
    public void A_handle_keeps_the_view_for_later_calls()
    {
        float[] x = Sample(256, 3);
        using Tensor input = torch.tensor(x);
        using TensorHandle handle = input.AsBnbHandle();
        var viaHandle = new byte[128];
        Q.Quantize4Bit(handle.AsRef(), TensorRef.FromSpan<byte>(viaHandle), TensorRef.FromSpan(new float[4]), QuantType.Fp4, 64);
        Assert.Equal(Q.Quantize4Bit<float>(x, quantType: QuantType.Fp4, blocksize: 64).Data, viaHandle);
    }

    public static TheoryData<ScalarType, DType> DTypePairs => new()
    {
        { ScalarType.Float32, DType.F32 },
        { ScalarType.Float16, DType.F16 },
        { ScalarType.BFloat16, DType.BF16 },
        { ScalarType.Byte, DType.U8 },
        { ScalarType.Int8, DType.I8 },
        { ScalarType.Int32, DType.I32 },
        { ScalarType.Int64, DType.I64 },
        { ScalarType.Float64, DType.F64 },
    };

    [TorchTheory]
    [MemberData(nameof(DTypePairs))]
    public void Dtypes_map_both_ways_and_views_carry_them(ScalarType torchType, DType bnbType)
    {
        Assert.Equal(bnbType, torchType.ToBnbDType());
        Assert.Equal(torchType, bnbType.ToTorchScalarType());
        using Tensor t = torch.zeros([2, 3, 4], torchType);
        TensorRef view = t.AsBnbRef();
        Assert.Equal(bnbType, view.DType);
        Assert.Equal("[2, 3, 4]", view.Shape.ToString());
        Assert.True(view.IsContiguous);
        Assert.Equal(0, view.Strides.Rank);
        Assert.Null(view.Device);
    }

    [TorchFact]
    public void Half_and_TorchSharp_bfloat16_arrays_become_tensors_of_those_dtypes_without_copy()
    {
        Half[] h = [(Half)1.5f, (Half)(-2f)];
        using Tensor th = h.ToTorch();
        Assert.Equal(ScalarType.Float16, th.dtype);
        Assert.Equal(AddressOf(h), th.DataPointer());
        Assert.Equal(-2f, th[1].to(ScalarType.Float32).item<float>());

        global::TorchSharp.BFloat16[] b = [(global::TorchSharp.BFloat16)0.5f, (global::TorchSharp.BFloat16)3f];
        using Tensor tb = b.ToTorch();
        Assert.Equal(ScalarType.BFloat16, tb.dtype);
        Assert.Equal(AddressOf(b), tb.DataPointer());
        Assert.Equal(3f, tb[1].to(ScalarType.Float32).item<float>());
    }

    [TorchFact]
    public void Strided_views_keep_their_strides_and_a_row_strided_matrix_is_read_in_place()
    {
        using Tensor big = torch.tensor(Sample(36, 4)).reshape(3, 12);
        using Tensor window = big.narrow(1, 2, 8); // [3, 8], row stride 12
        TensorRef view = window.AsBnbRef();
        Assert.False(view.IsContiguous);
        Assert.Equal("[12, 1]", view.Strides.ToString());

        using Tensor dense = window.contiguous();
        var expected = Q.Int8VectorwiseQuant<float>(dense.data<float>().ToArray(), 3, 8);
        var ca = new sbyte[24];
        var stats = new float[3];
        Q.Int8VectorwiseQuant(view, TensorRef.FromSpan<sbyte>(ca, 3, 8), TensorRef.FromSpan<float>(stats));
        Assert.Equal(expected.CA, ca);
        Assert.Equal(expected.RowStats, stats);

        using Tensor transposed = big.t(); // [12, 3], strides [1, 12]
        Assert.Equal("[1, 12]", transposed.AsBnbRef().Strides.ToString());
    }

    [TorchFact]
    public void A_non_contiguous_input_is_refused_by_the_op_with_its_argument_name()
    {
        using Tensor t = torch.tensor(Sample(128, 5)).reshape(16, 8).t();
        var e = Assert.Throws<BnbInvalidArgumentException>(() =>
            Q.Quantize4Bit(t.AsBnbRef(), TensorRef.FromSpan(new byte[64]), TensorRef.FromSpan(new float[2]), QuantType.Nf4, 64));
        Assert.Contains("must be contiguous", e.Message, StringComparison.Ordinal);
    }

    [TorchFact]
    public void Broadcast_views_five_dimensional_tensors_and_foreign_dtypes_are_rejected_clearly()
    {
        using Tensor row = torch.zeros(1, 3);
        using Tensor expanded = row.expand(4, 3);
        var e1 = Assert.Throws<ArgumentException>(() => expanded.AsBnbRef());
        Assert.Contains("stride 0 in dimension 0", e1.Message, StringComparison.Ordinal);

        using Tensor scalarExpanded = torch.zeros(1).expand(5);
        Assert.Throws<ArgumentException>(() => scalarExpanded.AsBnbRef());

        using Tensor five = torch.zeros([1, 2, 1, 2, 1]);
        var e2 = Assert.Throws<ArgumentException>(() => five.AsBnbRef());
        Assert.Contains("at most 4", e2.Message, StringComparison.Ordinal);

        using Tensor flags = torch.zeros([3], ScalarType.Bool);
        var e3 = Assert.Throws<NotSupportedException>(() => flags.AsBnbRef());
        Assert.Contains("Bool", e3.Message, StringComparison.Ordinal);
    }

    [TorchFact]
    public void Bnb_bfloat16_arrays_are_refused_with_the_type_to_use_instead()
    {
        var e = Assert.Throws<NotSupportedException>(() => new BFloat16[4].ToTorch());
        Assert.Contains("TorchSharp.BFloat16", e.Message, StringComparison.Ordinal);
    }

    [TorchFact]
    public void ToTorch_refuses_a_shape_that_does_not_match_the_array()
    {
        var e = Assert.Throws<ArgumentException>(() => new float[6].ToTorch(4, 2));
        Assert.Contains("holds 8 elements but the array has 6", e.Message, StringComparison.Ordinal);
    }
}
