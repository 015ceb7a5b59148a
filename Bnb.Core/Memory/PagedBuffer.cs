using System.Runtime.InteropServices;
using Bnb.Interop;

namespace Bnb.Memory;

/// <summary>How a <see cref="PagedMapping"/> uses the memory (<c>BNB_MAP_*</c>).</summary>
public enum PagedAccess
{
    /// <summary>The caller may write: the buffer is written back to the spill file when it is evicted.</summary>
    ReadWrite = BnbNative.BNB_MAP_READ_WRITE,

    /// <summary>The caller only reads: a clean buffer is evicted without a write-back (writes would be lost).</summary>
    Read = BnbNative.BNB_MAP_READ,
}

/// <summary>Where <see cref="PagedBuffer.Prefetch(PrefetchTarget)"/> moves a buffer (<c>BNB_PREFETCH_*</c>).</summary>
public enum PrefetchTarget
{
    /// <summary>Into the fast-memory budget (load ahead of the next map; does not pin).</summary>
    Device = BnbNative.BNB_PREFETCH_TO_DEVICE,

    /// <summary>Out of the budget (CPU backends: written back if dirty, then released).</summary>
    Host = BnbNative.BNB_PREFETCH_TO_HOST,
}

/// <summary>
/// A buffer of a <see cref="PagedAllocator"/>. It has no address while unmapped; <see cref="Map"/> makes it resident,
/// pins it and returns a <see cref="PagedMapping"/> whose <see cref="PagedMapping.Tensor"/> is handed to ops.
/// Disposing the buffer while mappings are open frees it when the last one closes.
/// </summary>
public sealed class PagedBuffer : IDisposable
{
    private readonly PagedBufferHandle _handle;
    private int _disposed;

    internal PagedBuffer(PagedAllocator allocator, PagedBufferHandle handle, long bytes, DType dtype, TensorShape shape)
    {
        Allocator = allocator;
        _handle = handle;
        Bytes = bytes;
        DType = dtype;
        Shape = shape;
    }

    public PagedAllocator Allocator { get; }

    /// <summary>Size in bytes.</summary>
    public long Bytes { get; }

    /// <summary>Element type of <see cref="PagedMapping.Tensor"/> (<see cref="DType.U8"/> for a plain byte buffer).</summary>
    public DType DType { get; }

    /// <summary>Shape of <see cref="PagedMapping.Tensor"/>.</summary>
    public TensorShape Shape { get; }

    /// <summary>True once <see cref="Dispose"/> ran (the native buffer may live on until its last mapping closes).</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>
    /// Makes the buffer resident (reloading it from the spill file if it was evicted, evicting least recently used
    /// unmapped buffers to stay within the budget) and pins it until the mapping is disposed. Maps nest; the address
    /// may differ from one mapping to the next.
    /// </summary>
    /// <exception cref="Bnb.Errors.BnbOutOfMemoryException">The mapped buffers plus this one exceed the budget.</exception>
    /// <exception cref="Bnb.Errors.BnbException">Status <c>Io</c>: the spill file could not be read or written (no data is lost).</exception>
    public PagedMapping Map(PagedAccess access = PagedAccess.ReadWrite)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        bool added = false;
        _handle.DangerousAddRef(ref added); // throws ObjectDisposedException once disposed
        try
        {
            nint pointer = Allocator.Native.PagingMap(_handle.DangerousGetHandle(), (int)access);
            return new PagedMapping(this, _handle, pointer, access);
        }
        catch
        {
            _handle.DangerousRelease();
            throw;
        }
    }

    /// <summary>Loads the whole buffer into fast memory ahead of use (<see cref="PrefetchTarget.Device"/>) or evicts it (<see cref="PrefetchTarget.Host"/>).</summary>
    public void Prefetch(PrefetchTarget target = PrefetchTarget.Device) => Prefetch(0, Bytes, target);

    /// <summary>Prefetch of a byte range; CPU backends act on the whole buffer.</summary>
    public void Prefetch(long offset, long bytes, PrefetchTarget target)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        bool added = false;
        _handle.DangerousAddRef(ref added);
        try
        {
            Allocator.Native.PagingPrefetch(Allocator.Context.Handle, _handle.DangerousGetHandle(), (ulong)offset, (ulong)bytes, (int)target);
        }
        finally
        {
            _handle.DangerousRelease();
        }
    }

    /// <summary>Frees the buffer now, or when its last open mapping closes.</summary>
    public void Dispose()
    {
        Volatile.Write(ref _disposed, 1);
        _handle.Dispose();
    }

    public override string ToString() => $"PagedBuffer({DType} {Shape}, {Bytes} bytes)";
}

/// <summary>
/// An open map of a <see cref="PagedBuffer"/>: the buffer stays resident and pinned until <see cref="Dispose"/>. The
/// views it hands out are valid only until then.
/// </summary>
public sealed unsafe class PagedMapping : IDisposable
{
    private readonly PagedBufferHandle _handle;
    private int _open = 1;

    internal PagedMapping(PagedBuffer buffer, PagedBufferHandle handle, nint pointer, PagedAccess access)
    {
        Buffer = buffer;
        _handle = handle;
        Pointer = pointer;
        Access = access;
    }

    public PagedBuffer Buffer { get; }

    public PagedAccess Access { get; }

    public bool IsReadOnly => Access == PagedAccess.Read;

    /// <summary>The pinned address (for other frameworks' pointer APIs).</summary>
    public nint Pointer { get; }

    public long Bytes => Buffer.Bytes;

    /// <summary>The buffer as a tensor of its allocation dtype and shape (read-only for <see cref="PagedAccess.Read"/>).</summary>
    public TensorRef Tensor => AsTensor(Buffer.DType, Buffer.Shape.ToArray());

    /// <summary>A view with another dtype/shape that fits in the buffer.</summary>
    public TensorRef AsTensor(DType dtype, params ReadOnlySpan<long> shape)
    {
        ThrowIfClosed();
        TensorShape s = TensorShape.Create(shape);
        long bytes = checked(s.ElementCount * dtype.SizeOf());
        if (bytes > Bytes)
        {
            throw new ArgumentException($"shape {s} of {dtype} needs {bytes} bytes; the paged buffer has {Bytes}", nameof(shape));
        }

        if (!IsReadOnly)
        {
            return TensorRef.FromPointer((void*)Pointer, dtype, shape);
        }

        if (s.ElementCount > int.MaxValue)
        {
            throw new NotSupportedException($"a read-only view holds at most {int.MaxValue} elements; map with PagedAccess.ReadWrite");
        }

        var bytesView = new ReadOnlySpan<byte>((void*)Pointer, (int)Math.Min(bytes, int.MaxValue));
        return dtype switch
        {
            DType.F32 => TensorRef.FromReadOnlySpan(MemoryMarshal.Cast<byte, float>(bytesView), shape),
            DType.F16 => TensorRef.FromReadOnlySpan(MemoryMarshal.Cast<byte, Half>(bytesView), shape),
            DType.BF16 => TensorRef.FromReadOnlySpan(MemoryMarshal.Cast<byte, BFloat16>(bytesView), shape),
            DType.I8 => TensorRef.FromReadOnlySpan(MemoryMarshal.Cast<byte, sbyte>(bytesView), shape),
            DType.I32 => TensorRef.FromReadOnlySpan(MemoryMarshal.Cast<byte, int>(bytesView), shape),
            DType.I64 => TensorRef.FromReadOnlySpan(MemoryMarshal.Cast<byte, long>(bytesView), shape),
            DType.F64 => TensorRef.FromReadOnlySpan(MemoryMarshal.Cast<byte, double>(bytesView), shape),
            _ => TensorRef.FromReadOnlySpan(bytesView, shape),
        };
    }

    /// <summary>The mapped memory as elements of <typeparamref name="T"/> (a writable mapping; at most 2³¹−1 elements).</summary>
    public Span<T> AsSpan<T>()
        where T : unmanaged
    {
        ThrowIfClosed();
        if (IsReadOnly)
        {
            throw new InvalidOperationException("the buffer is mapped read-only (PagedAccess.Read): use AsReadOnlySpan");
        }

        return new Span<T>((void*)Pointer, checked((int)(Bytes / sizeof(T))));
    }

    /// <summary>The mapped memory as read-only elements of <typeparamref name="T"/>.</summary>
    public ReadOnlySpan<T> AsReadOnlySpan<T>()
        where T : unmanaged
    {
        ThrowIfClosed();
        return new ReadOnlySpan<T>((void*)Pointer, checked((int)(Bytes / sizeof(T))));
    }

    /// <summary>Unmaps (idempotent): the buffer may be evicted again.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _open, 0) == 0)
        {
            return;
        }

        try
        {
            Buffer.Allocator.Native.PagingUnmap(_handle.DangerousGetHandle());
        }
        finally
        {
            _handle.DangerousRelease();
        }
    }

    private void ThrowIfClosed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _open) == 0, this);
}
