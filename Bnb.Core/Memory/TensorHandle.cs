using System.Buffers;
using CommunityToolkit.HighPerformance;

namespace Bnb.Memory;

/// <summary>
/// A heap-storable tensor view: pins a <see cref="Memory{T}"/> (or <see cref="Memory2D{T}"/>) until disposed, or
/// wraps a native pointer owned elsewhere. Call <see cref="AsRef"/> to pass it to an op.
/// </summary>
public sealed unsafe class TensorHandle : IDisposable
{
    private readonly void* _pointer;
    private readonly TensorShape _shape;
    private readonly TensorShape _strides;
    private MemoryHandle _pin;
    private bool _disposed;

    private TensorHandle(void* pointer, DType dtype, TensorShape shape, TensorShape strides, bool readOnly, string? device, MemoryHandle pin)
    {
        _pointer = pointer;
        DType = dtype;
        _shape = shape;
        _strides = strides;
        IsReadOnly = readOnly;
        Device = device;
        _pin = pin;
    }

    public DType DType { get; }

    public TensorShape Shape => _shape;

    public bool IsReadOnly { get; }

    public string? Device { get; }

    /// <summary>Pins <paramref name="memory"/> and views it with <paramref name="shape"/> (default: 1-D).</summary>
    public static TensorHandle FromMemory<T>(Memory<T> memory, params scoped ReadOnlySpan<long> shape)
        where T : unmanaged => Pin(memory, shape, readOnly: false);

    /// <summary>Pins read-only <paramref name="memory"/>; the view rejects being used as an output.</summary>
    public static TensorHandle FromReadOnlyMemory<T>(ReadOnlyMemory<T> memory, params scoped ReadOnlySpan<long> shape)
        where T : unmanaged => Pin(System.Runtime.InteropServices.MemoryMarshal.AsMemory(memory), shape, readOnly: true);

    /// <summary>Pins a 2-D memory region; rows keep their pitch as row stride.</summary>
    public static TensorHandle FromMemory2D<T>(Memory2D<T> memory)
        where T : unmanaged
    {
        MemoryHandle pin = memory.Pin();
        var span = memory.Span;
        return new TensorHandle(pin.Pointer, DTypes.Of<T>(), TensorShape.Create(span.Height, span.Width), TensorShape.Create(TensorRef.RowStride<T>(span), 1), false, null, pin);
    }

    /// <summary>Wraps memory owned elsewhere; see <see cref="TensorRef.FromPointer(void*, DType, ReadOnlySpan{long}, ReadOnlySpan{long}, string?)"/>.</summary>
    public static TensorHandle FromPointer(void* pointer, DType dtype, ReadOnlySpan<long> shape, ReadOnlySpan<long> strides = default, string? device = null)
    {
        TensorRef view = TensorRef.FromPointer(pointer, dtype, shape, strides, device);
        return new TensorHandle(pointer, dtype, view.Shape, view.Strides, false, device, default);
    }

    /// <inheritdoc cref="FromPointer(void*, DType, ReadOnlySpan{long}, ReadOnlySpan{long}, string?)"/>
    public static TensorHandle FromPointer(nint pointer, DType dtype, ReadOnlySpan<long> shape, ReadOnlySpan<long> strides = default, string? device = null) =>
        FromPointer((void*)pointer, dtype, shape, strides, device);

    /// <summary>The view to pass to an op.</summary>
    /// <exception cref="ObjectDisposedException">The handle was disposed (the memory is no longer pinned).</exception>
    public TensorRef AsRef()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return TensorRef.FromValidated(_pointer, DType, _shape, _strides, IsReadOnly, Device);
    }

    /// <summary>Unpins the memory (a wrapped native pointer is not freed: it is not ours).</summary>
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            _pin.Dispose();
        }
    }

    private static TensorHandle Pin<T>(Memory<T> memory, scoped ReadOnlySpan<long> shape, bool readOnly)
        where T : unmanaged
    {
        // Validate against the span before pinning so a bad shape leaks no pin.
        TensorRef view = shape.IsEmpty ? TensorRef.FromSpan(memory.Span) : TensorRef.FromSpan(memory.Span, shape);
        MemoryHandle pin = memory.Pin();
        return new TensorHandle(pin.Pointer, view.DType, view.Shape, view.Strides, readOnly, null, pin);
    }
}
