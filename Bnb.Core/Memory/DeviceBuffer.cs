using Bnb.Interop;
using Bnb.Runtime;

namespace Bnb.Memory;

/// <summary>Memory kinds of <see cref="DeviceBuffer"/> (<c>BNB_MEMORY_*</c>).</summary>
public enum DeviceMemoryKind
{
    /// <summary>Device memory (cudaMalloc on CUDA; host memory on CPU backends). Not host-addressable on GPUs.</summary>
    Device = BnbNative.BNB_MEMORY_DEVICE,

    /// <summary>Page-locked host memory the device can read and write (cudaHostAlloc).</summary>
    HostPinned = BnbNative.BNB_MEMORY_HOST_PINNED,
}

/// <summary>
/// Memory allocated through a backend (<c>buffer_alloc</c>) and owned by this object: on CUDA/HIP device memory or
/// pinned host memory, on CPU backends aligned host memory. <see cref="Tensor"/> hands it to ops without copying;
/// <see cref="CopyFrom{T}"/> / <see cref="CopyTo{T}"/> move data between it and host spans (<c>memory_copy</c>).
/// Paged (managed) memory has its own type, <see cref="PagedBuffer"/>.
/// <para>
/// Memory that another library allocated (a framework's CUDA tensor, a cudaMalloc of your own) needs no
/// DeviceBuffer: wrap its address with <see cref="TensorRef.FromPointer(nint, DType, ReadOnlySpan{long}, ReadOnlySpan{long}, string?)"/>
/// and the device string (docs/backends.md "Handing Bnb a device pointer and a stream").
/// </para>
/// </summary>
public sealed class DeviceBuffer : IDisposable
{
    // The owning handle is the one of paged buffers: buffer_free on release, a reference on the context handle.
    private readonly PagedBufferHandle _handle;

    private DeviceBuffer(BnbContext context, PagedBufferHandle handle, nint pointer, long bytes, DeviceMemoryKind kind, DType dtype, TensorShape shape)
    {
        Context = context;
        _handle = handle;
        Pointer = pointer;
        Bytes = bytes;
        Kind = kind;
        DType = dtype;
        Shape = shape;
    }

    /// <summary>
    /// Allocates a zeroed buffer for a tensor of <paramref name="dtype"/> and <paramref name="shape"/> on the
    /// context's device.
    /// </summary>
    /// <exception cref="Bnb.Errors.BnbOutOfMemoryException">The device has not enough free memory.</exception>
    /// <exception cref="Bnb.Errors.BnbException">The backend refused (no device, kind not supported, ...); the message names the reason.</exception>
    public static DeviceBuffer Allocate(BnbContext context, DType dtype, ReadOnlySpan<long> shape, DeviceMemoryKind kind = DeviceMemoryKind.Device)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (kind is not (DeviceMemoryKind.Device or DeviceMemoryKind.HostPinned))
        {
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "Device or HostPinned (paged memory: PagedAllocator)");
        }

        TensorShape s = TensorShape.Create(shape);
        long bytes = checked(s.ElementCount * dtype.SizeOf());
        if (bytes == 0)
        {
            throw new ArgumentException($"shape {s} of {dtype} holds no bytes; a buffer needs at least one", nameof(shape));
        }

        nint buffer = context.Native.DeviceBufferAlloc(context.Handle, (int)kind, (ulong)bytes);
        var handle = new PagedBufferHandle(buffer, context.Native, context.Handle);
        try
        {
            nint pointer = context.Native.DeviceBufferPointer(buffer);
            return new DeviceBuffer(context, handle, pointer, bytes, kind, dtype, s);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>The context whose device holds the memory (copies run on its stream).</summary>
    public BnbContext Context { get; }

    /// <summary>The address ops and other libraries use (a device pointer on GPUs).</summary>
    public nint Pointer { get; }

    public long Bytes { get; }

    public DeviceMemoryKind Kind { get; }

    public DType DType { get; }

    public TensorShape Shape { get; }

    /// <summary>Device string of the memory (<c>cuda:0</c>, <c>cpu_ref:0</c>).</summary>
    public string Device => Context.Device;

    public bool IsDisposed => _handle.IsClosed;

    /// <summary>The buffer as a tensor of its dtype and shape (no copy). Valid until the buffer is disposed.</summary>
    public TensorRef Tensor => AsTensor(DType, Shape.ToArray());

    /// <summary>A view with another dtype/shape that fits in the buffer.</summary>
    public TensorRef AsTensor(DType dtype, params ReadOnlySpan<long> shape)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        TensorShape s = TensorShape.Create(shape);
        long bytes = checked(s.ElementCount * dtype.SizeOf());
        if (bytes > Bytes)
        {
            throw new ArgumentException($"{dtype} {s} needs {bytes} bytes but the buffer holds {Bytes}", nameof(shape));
        }

        return TensorRef.FromPointer(Pointer, dtype, shape, default, Device);
    }

    /// <summary>Copies host elements into the start of the buffer (<c>memory_copy</c> host to device).</summary>
    public void CopyFrom<T>(ReadOnlySpan<T> source)
        where T : unmanaged
    {
        long bytes = CheckedBytes<T>(source.Length);
        unsafe
        {
            fixed (T* p = source)
            {
                Copy((nint)p, Pointer, bytes, toDevice: true);
            }
        }
    }

    /// <summary>Copies the start of the buffer into host elements; the data is there when the call returns.</summary>
    public void CopyTo<T>(Span<T> destination)
        where T : unmanaged
    {
        long bytes = CheckedBytes<T>(destination.Length);
        unsafe
        {
            fixed (T* p = destination)
            {
                Copy(Pointer, (nint)p, bytes, toDevice: false);
            }
        }
    }

    /// <summary>Frees the memory (ops queued on it must have finished: synchronize the context's stream first).</summary>
    public void Dispose() => _handle.Dispose();

    public override string ToString() => $"DeviceBuffer({DType} {Shape}, {Bytes} bytes, {Kind}, {Device})";

    private unsafe long CheckedBytes<T>(int length)
        where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        long bytes = (long)length * sizeof(T);
        if (bytes > Bytes)
        {
            throw new ArgumentException($"{bytes} bytes do not fit the buffer's {Bytes}", "source");
        }

        return bytes;
    }

    private void Copy(nint source, nint destination, long bytes, bool toDevice)
    {
        if (bytes == 0)
        {
            return;
        }

        // Pinned host memory is host-addressable: host to host (the CUDA runtime checks explicit kinds).
        int direction = Kind == DeviceMemoryKind.HostPinned ? BnbNative.BNB_COPY_HOST_TO_HOST
            : toDevice ? BnbNative.BNB_COPY_HOST_TO_DEVICE : BnbNative.BNB_COPY_DEVICE_TO_HOST;
        bool added = false;
        _handle.DangerousAddRef(ref added);
        try
        {
            Context.Native.DeviceMemoryCopy(Context.Handle, destination, source, (ulong)bytes, direction);
        }
        finally
        {
            _handle.DangerousRelease();
        }
    }
}
