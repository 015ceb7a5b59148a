using System.Runtime.InteropServices;
using Bnb.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace Bnb.TorchSharp;

/// <summary>
/// Zero-copy interop between TorchSharp tensors and Bnb views.
/// </summary>
/// <remarks>
/// <para><b>torch → Bnb</b> (<see cref="AsBnbRef"/>, <see cref="AsBnbHandle"/>): the view addresses the tensor's own
/// storage (host memory for CPU tensors, the device pointer for CUDA tensors); nothing is copied. The view is valid
/// while the tensor is alive and its storage is not reallocated (no <c>resize_</c>, <c>set_</c>, in-place ops that
/// change its size). Dispose the torch tensor only after the Bnb op returns.</para>
/// <para><b>Bnb → torch</b>: two zero-copy ways. (1) Let torch own the memory and have Bnb write the result in place:
/// allocate with <c>torch.empty</c>, pass <see cref="AsBnbRef"/> of it as the op's output. (2) Wrap a managed array
/// we own with <see cref="ToTorch{T}"/>: TorchSharp pins the array for as long as any tensor uses its storage, so the
/// array cannot move or be collected under the tensor; writes through either side are seen by the other.</para>
/// <para>Layout: Bnb views have at most 4 dimensions and strides in elements. Contiguous tensors map to Bnb's
/// "contiguous" convention; other strided tensors keep their strides, and the op decides (most ops require contiguous
/// input and report the argument by name; 2-D matrix operands accept a row stride). Broadcast views (a stride of 0 on
/// a dimension longer than 1) are rejected here: their elements alias, which no Bnb op accepts.</para>
/// </remarks>
public static class TorchInterop
{
    /// <summary>The Bnb dtype of a torch scalar type.</summary>
    /// <exception cref="NotSupportedException">The scalar type has no Bnb dtype (bool, int16, complex, float8, ...).</exception>
    public static DType ToBnbDType(this ScalarType type) => type switch
    {
        ScalarType.Float32 => DType.F32,
        ScalarType.Float16 => DType.F16,
        ScalarType.BFloat16 => DType.BF16,
        ScalarType.Byte => DType.U8,
        ScalarType.Int8 => DType.I8,
        ScalarType.Int32 => DType.I32,
        ScalarType.Int64 => DType.I64,
        ScalarType.Float64 => DType.F64,
        _ => throw new NotSupportedException($"torch dtype {type} has no Bnb dtype (supported: float32, float16, bfloat16, uint8, int8, int32, int64, float64)"),
    };

    /// <summary>The torch scalar type of a Bnb dtype.</summary>
    public static ScalarType ToTorchScalarType(this DType dtype) => dtype switch
    {
        DType.F32 => ScalarType.Float32,
        DType.F16 => ScalarType.Float16,
        DType.BF16 => ScalarType.BFloat16,
        DType.U8 => ScalarType.Byte,
        DType.I8 => ScalarType.Int8,
        DType.I32 => ScalarType.Int32,
        DType.I64 => ScalarType.Int64,
        DType.F64 => ScalarType.Float64,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown Bnb dtype"),
    };

    /// <summary>
    /// Address of the tensor's first element (<c>data_ptr()</c> in PyTorch): the storage base plus the storage offset.
    /// A host address for CPU tensors, a device address for CUDA tensors.
    /// </summary>
    public static nint DataPointer(this Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.numel() == 0)
        {
            return 0;
        }

        // TorchSharp has no public data_ptr(); its own native export THSTensor_data returns at::Tensor::data_ptr()
        // (storage base + storage offset; a device address for CUDA tensors). Typed storage<T>() is no substitute:
        // for a T other than the tensor's dtype it returns a converted copy.
        nint pointer = THSTensor_data(tensor.Handle);
        if (pointer == 0)
        {
            throw new InvalidOperationException($"TorchSharp returned no data pointer for a tensor of shape [{string.Join(", ", tensor.shape)}] on {tensor.device}");
        }

        return pointer;
    }

    [DllImport("LibTorchSharp")]
    private static extern nint THSTensor_data(nint tensor);

    /// <summary>
    /// The Bnb device string of a tensor's device: null for CPU (host memory), <c>"cuda:N"</c> for CUDA.
    /// </summary>
    /// <exception cref="NotSupportedException">Another device type (MPS, XPU, meta, ...).</exception>
    public static string? BnbDevice(this Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return tensor.device_type switch
        {
            DeviceType.CPU => null,
            DeviceType.CUDA => $"cuda:{Math.Max(0, tensor.device_index)}",
            _ => throw new NotSupportedException($"tensors on {tensor.device} cannot be passed to Bnb (CPU and CUDA only)"),
        };
    }

    /// <summary>
    /// A zero-copy Bnb view of <paramref name="tensor"/> (pointer, dtype, shape, strides, device). See the class remarks
    /// for lifetime and layout rules.
    /// </summary>
    /// <exception cref="NotSupportedException">dtype or device Bnb cannot address.</exception>
    /// <exception cref="ArgumentException">More than 4 dimensions, or a broadcast (stride 0) view.</exception>
    public static unsafe TensorRef AsBnbRef(this Tensor tensor)
    {
        Describe(tensor, out DType dtype, out long[] shape, out long[]? strides, out string? device);
        return TensorRef.FromPointer((void*)tensor.DataPointer(), dtype, shape, strides, device);
    }

    /// <summary>As <see cref="AsBnbRef"/>, as a heap-storable handle (it does not own or pin anything: keep the tensor alive).</summary>
    public static unsafe TensorHandle AsBnbHandle(this Tensor tensor)
    {
        Describe(tensor, out DType dtype, out long[] shape, out long[]? strides, out string? device);
        return TensorHandle.FromPointer((void*)tensor.DataPointer(), dtype, shape, strides, device);
    }

    /// <summary>
    /// A CPU tensor over <paramref name="data"/> with <paramref name="shape"/> (default 1-D), without copying.
    /// TorchSharp pins the array until the last tensor sharing its storage is disposed or collected.
    /// </summary>
    /// <typeparam name="T">float, Half, TorchSharp.BFloat16, byte, sbyte, int, long or double.</typeparam>
    /// <exception cref="ArgumentException">The shape does not hold exactly <c>data.Length</c> elements.</exception>
    public static Tensor ToTorch<T>(this T[] data, params long[] shape)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(data);
        // torch.frombuffer accepts TorchSharp's own BFloat16 struct but not ours (same bits, different CLR type).
        if (typeof(T) == typeof(Bnb.Memory.BFloat16))
        {
            throw new NotSupportedException("Bnb.Memory.BFloat16[] cannot back a torch tensor; use a TorchSharp.BFloat16[] (same 2-byte layout)");
        }

        DType dtype = typeof(T) == typeof(global::TorchSharp.BFloat16) ? DType.BF16 : DTypes.Of<T>();
        long[] s = shape.Length == 0 ? [data.LongLength] : shape;
        long count = 1;
        foreach (long d in s)
        {
            if (d < 0)
            {
                throw new ArgumentException($"shape [{string.Join(", ", s)}] has a negative dimension", nameof(shape));
            }

            count = checked(count * d);
        }

        if (count != data.LongLength)
        {
            throw new ArgumentException($"shape [{string.Join(", ", s)}] holds {count} elements but the array has {data.LongLength}", nameof(shape));
        }

        // torch.frombuffer reinterprets the pinned array's bytes as `dtype` (count elements from offset 0).
        using Tensor flat = torch.frombuffer(data, dtype.ToTorchScalarType(), data.LongLength, 0, false);
        return flat.view(s);
    }

    private static void Describe(Tensor tensor, out DType dtype, out long[] shape, out long[]? strides, out string? device)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        dtype = tensor.dtype.ToBnbDType();
        device = tensor.BnbDevice();
        shape = tensor.shape;
        if (shape.Length > TensorShape.MaxRank)
        {
            throw new ArgumentException($"a tensor of shape [{string.Join(", ", shape)}] has {shape.Length} dimensions; Bnb views have at most {TensorShape.MaxRank} (reshape it first)", nameof(tensor));
        }

        if (tensor.is_contiguous())
        {
            strides = null; // Bnb's "contiguous row-major" convention
            return;
        }

        strides = tensor.stride();
        for (int i = 0; i < shape.Length; i++)
        {
            if (strides[i] == 0 && shape[i] > 1)
            {
                throw new ArgumentException(
                    $"tensor of shape [{string.Join(", ", shape)}] has stride 0 in dimension {i} (a broadcast/expanded view whose elements alias); call .contiguous() to materialize it",
                    nameof(tensor));
            }
        }
    }

    /// <summary>Spans over a contiguous CPU tensor's elements (zero copy). Internal: callers keep the tensor alive.</summary>
    internal static unsafe Span<T> CpuSpan<T>(Tensor tensor)
        where T : unmanaged
    {
        if (tensor.device_type != DeviceType.CPU || !tensor.is_contiguous() || tensor.dtype.ToBnbDType() != DTypes.Of<T>())
        {
            throw new InvalidOperationException($"internal: a contiguous CPU {DTypes.Of<T>()} tensor was expected, got {tensor.dtype} on {tensor.device}");
        }

        return new Span<T>((void*)tensor.DataPointer(), checked((int)tensor.numel()));
    }
}
