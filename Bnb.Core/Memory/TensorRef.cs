using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Bnb.Interop;
using CommunityToolkit.HighPerformance;

namespace Bnb.Memory;

/// <summary>
/// A zero-copy view of memory handed to a backend: data reference, <see cref="DType"/>, shape (up to 4 dims),
/// strides in elements (all zero = contiguous row-major) and the device the memory lives on.
/// </summary>
/// <remarks>
/// <para><c>TensorRef</c> is a <c>ref struct</c>: it holds a managed reference, not a raw pointer, so a view of a
/// managed array stays valid even if the GC moves the array; the memory is pinned only for the duration of the
/// native call. It therefore cannot be stored on the heap or captured by lambdas. To keep a view in a field, use
/// <see cref="TensorHandle"/> (pins a <see cref="Memory{T}"/> or wraps a native pointer) and call
/// <see cref="TensorHandle.AsRef"/> where needed.</para>
/// <para>Views made from <see cref="ReadOnlySpan{T}"/> are read-only: passing one as an op output throws.</para>
/// </remarks>
public readonly ref struct TensorRef
{
    private readonly ref byte _data;
    private readonly bool _present;

    private TensorRef(ref byte data, DType dtype, TensorShape shape, TensorShape strides, bool readOnly, string? device)
    {
        _data = ref data;
        _present = true;
        DType = dtype;
        Shape = shape;
        Strides = strides;
        IsReadOnly = readOnly;
        Device = device;
    }

    /// <summary>The absent tensor (an optional argument passed as NULL).</summary>
    public static TensorRef None => default;

    /// <summary>False for <see cref="None"/>.</summary>
    public bool IsPresent => _present;

    public DType DType { get; }

    public TensorShape Shape { get; }

    /// <summary>Strides in elements; all zero (or rank 0) means contiguous row-major.</summary>
    public TensorShape Strides { get; }

    public bool IsReadOnly { get; }

    /// <summary>Device string (<c>"cuda:0"</c>) for device memory; null for host memory.</summary>
    public string? Device { get; }

    public long ElementCount => Shape.ElementCount;

    /// <summary>True when the strides describe (or default to) contiguous row-major layout.</summary>
    public bool IsContiguous
    {
        get
        {
            long expected = 1;
            bool allZero = true;
            for (int i = Strides.Rank - 1; i >= 0; i--)
            {
                allZero &= Strides[i] == 0;
            }

            if (allZero)
            {
                return true;
            }

            for (int i = Shape.Rank - 1; i >= 0; i--)
            {
                if (Shape[i] != 1 && Strides[i] != expected)
                {
                    return false;
                }

                expected *= Shape[i];
            }

            return true;
        }
    }

    /// <summary>A 1-D writable view of <paramref name="span"/>.</summary>
    public static TensorRef FromSpan<T>(Span<T> span)
        where T : unmanaged => FromSpan(span, [span.Length]);

    /// <summary>A writable view of <paramref name="span"/> with a row-major <paramref name="shape"/>.</summary>
    /// <exception cref="ArgumentException">The shape needs more elements than the span has.</exception>
    public static TensorRef FromSpan<T>(Span<T> span, params scoped ReadOnlySpan<long> shape)
        where T : unmanaged =>
        Create<T>(ref Unsafe.As<T, byte>(ref MemoryMarshal.GetReference(span)), span.Length, shape, default, readOnly: false);

    /// <summary>A 1-D read-only view of <paramref name="span"/>.</summary>
    public static TensorRef FromReadOnlySpan<T>(ReadOnlySpan<T> span)
        where T : unmanaged => FromReadOnlySpan(span, [span.Length]);

    /// <summary>A read-only view of <paramref name="span"/> with a row-major <paramref name="shape"/>.</summary>
    public static TensorRef FromReadOnlySpan<T>(ReadOnlySpan<T> span, params scoped ReadOnlySpan<long> shape)
        where T : unmanaged =>
        Create<T>(ref Unsafe.As<T, byte>(ref MemoryMarshal.GetReference(span)), span.Length, shape, default, readOnly: true);

    /// <summary>
    /// A 2-D writable view: shape [Height, Width], row stride Width + Pitch elements (the pitch is the gap between
    /// rows of a 2-D slice of a larger matrix).
    /// </summary>
    public static TensorRef FromSpan2D<T>(Span2D<T> span)
        where T : unmanaged => From2D<T>(ref Unsafe.As<T, byte>(ref span.DangerousGetReference()), span.Height, span.Width, RowStride<T>(span), readOnly: false);

    /// <summary>A 2-D read-only view; see <see cref="FromSpan2D{T}(Span2D{T})"/>.</summary>
    public static TensorRef FromReadOnlySpan2D<T>(ReadOnlySpan2D<T> span)
        where T : unmanaged => From2D<T>(ref Unsafe.As<T, byte>(ref span.DangerousGetReference()), span.Height, span.Width, RowStride(span), readOnly: true);

    /// <summary>A 2-D writable view of <paramref name="memory"/> (valid while the memory is; it is pinned per call).</summary>
    public static TensorRef FromMemory2D<T>(Memory2D<T> memory)
        where T : unmanaged => FromSpan2D(memory.Span);

    /// <summary>
    /// A view of memory owned elsewhere (native heap, a CUDA device pointer, another framework's tensor). The caller
    /// guarantees that <paramref name="pointer"/> addresses at least the elements the shape and strides describe,
    /// for as long as the view is used.
    /// </summary>
    /// <param name="pointer">Host or device address of element [0, 0, ...].</param>
    /// <param name="dtype">Element type.</param>
    /// <param name="shape">Up to 4 dimensions.</param>
    /// <param name="strides">Strides in elements; empty = contiguous row-major.</param>
    /// <param name="device">Device string (<c>"cuda:0"</c>) for device memory, null for host memory.</param>
    public static unsafe TensorRef FromPointer(void* pointer, DType dtype, scoped ReadOnlySpan<long> shape, scoped ReadOnlySpan<long> strides = default, string? device = null)
    {
        TensorShape s = TensorShape.Create(shape);
        TensorShape st = ValidateStrides(s, strides);
        if (pointer is null && s.ElementCount != 0)
        {
            throw new ArgumentNullException(nameof(pointer), "a null pointer can only describe an empty tensor");
        }

        return new TensorRef(ref Unsafe.AsRef<byte>(pointer), dtype, s, st, readOnly: false, device);
    }

    /// <inheritdoc cref="FromPointer(void*, DType, ReadOnlySpan{long}, ReadOnlySpan{long}, string?)"/>
    public static unsafe TensorRef FromPointer(nint pointer, DType dtype, scoped ReadOnlySpan<long> shape, scoped ReadOnlySpan<long> strides = default, string? device = null) =>
        FromPointer((void*)pointer, dtype, shape, strides, device);

    /// <summary>The same memory viewed with another shape of the same element count (contiguous views only).</summary>
    public TensorRef Reshape(params scoped ReadOnlySpan<long> shape)
    {
        TensorShape s = TensorShape.Create(shape);
        if (!IsContiguous)
        {
            throw new InvalidOperationException("only contiguous tensors can be reshaped");
        }

        if (s.ElementCount != ElementCount)
        {
            throw new ArgumentException($"cannot reshape {Shape} ({ElementCount} elements) to {s} ({s.ElementCount} elements)", nameof(shape));
        }

        return new TensorRef(ref _data, DType, s, default, IsReadOnly, Device);
    }

    /// <summary>The reference to pin for a native call (enables <c>fixed (byte* p = tensor)</c> inside the SDK).</summary>
    internal ref byte GetPinnableReference() => ref _data;

    /// <summary>The ABI descriptor of this view, given its pinned address.</summary>
    internal unsafe BnbTensor ToNative(void* pinned)
    {
        var t = new BnbTensor { Data = pinned, Dtype = (int)DType, Ndim = Shape.Rank };
        for (int i = 0; i < Shape.Rank; i++)
        {
            t.Shape[i] = Shape[i];
            t.Stride[i] = i < Strides.Rank ? Strides[i] : 0;
        }

        return t;
    }

    public override string ToString() =>
        _present ? $"TensorRef({DType}, shape {Shape}{(IsContiguous ? "" : $", strides {Strides}")}{(Device is null ? "" : $", {Device}")})" : "TensorRef(None)";

    private static TensorRef Create<T>(ref byte data, int length, scoped ReadOnlySpan<long> shape, scoped ReadOnlySpan<long> strides, bool readOnly)
        where T : unmanaged
    {
        DType dtype = DTypes.Of<T>();
        TensorShape s = TensorShape.Create(shape);
        TensorShape st = ValidateStrides(s, strides);
        long needed = Extent(s, st);
        if (needed > length)
        {
            throw new ArgumentException($"shape {s} needs {needed} elements but the span has {length}", nameof(shape));
        }

        return new TensorRef(ref data, dtype, s, st, readOnly, device: null);
    }

    private static TensorRef From2D<T>(ref byte data, int height, int width, long rowStride, bool readOnly)
        where T : unmanaged =>
        new(ref data, DTypes.Of<T>(), TensorShape.CreateUnchecked([height, width]), TensorShape.CreateUnchecked([rowStride, 1]), readOnly, device: null);

    /// <summary>Elements from the start of one row to the next (Span2D keeps its pitch private).</summary>
    internal static long RowStride<T>(ReadOnlySpan2D<T> span)
        where T : unmanaged =>
        span.Height > 1
            ? Unsafe.ByteOffset(ref Unsafe.AsRef(in span.DangerousGetReferenceAt(0, 0)), ref Unsafe.AsRef(in span.DangerousGetReferenceAt(1, 0))) / Unsafe.SizeOf<T>()
            : span.Width;

    private static TensorShape ValidateStrides(TensorShape shape, scoped ReadOnlySpan<long> strides)
    {
        if (strides.IsEmpty)
        {
            return default;
        }

        if (strides.Length != shape.Rank)
        {
            throw new ArgumentException($"{strides.Length} strides given for a rank-{shape.Rank} shape", nameof(strides));
        }

        return TensorShape.Create(strides);
    }

    /// <summary>Number of elements from the first to one past the last addressed element.</summary>
    private static long Extent(TensorShape shape, TensorShape strides)
    {
        if (shape.ElementCount == 0)
        {
            return 0;
        }

        if (strides.Rank == 0)
        {
            return shape.ElementCount;
        }

        long last = 0;
        for (int i = 0; i < shape.Rank; i++)
        {
            last += (shape[i] - 1) * strides[i];
        }

        return last + 1;
    }

    /// <summary>Used by <see cref="TensorHandle"/>, which already validated everything.</summary>
    internal static unsafe TensorRef FromValidated(void* pointer, DType dtype, TensorShape shape, TensorShape strides, bool readOnly, string? device) =>
        new(ref Unsafe.AsRef<byte>(pointer), dtype, shape, strides, readOnly, device);
}
