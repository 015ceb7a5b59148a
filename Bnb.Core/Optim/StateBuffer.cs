using Bnb.Interop;
using Bnb.Memory;
using Bnb.Runtime;

namespace Bnb.Optim;

/// <summary>
/// One optimizer state tensor (<c>state1</c>, <c>absmax1</c>, <c>qmap1</c>, ...) in memory the optimizer owns: a
/// backend buffer (<c>buffer_alloc</c>: host memory on CPU backends, device memory on GPU backends) or, for paged
/// optimizers, a <see cref="PagedBuffer"/> that has an address only while mapped. Every access goes through
/// <see cref="Use"/>, which maps paged memory for the duration of the lease.
/// </summary>
internal abstract class StateBuffer : IDisposable
{
    protected StateBuffer(string name, DType dtype, long[] shape, string? device)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        Device = device;
        long n = 1;
        foreach (long d in shape)
        {
            n *= d;
        }

        Bytes = n * dtype.SizeOf();
    }

    /// <summary>bitsandbytes' state key (<c>state1</c>, <c>absmax2</c>, ...).</summary>
    public string Name { get; }

    public DType DType { get; }

    public long[] Shape { get; }

    public long Bytes { get; }

    /// <summary>Device string for device memory, null for host memory.</summary>
    public string? Device { get; }

    public virtual bool IsPaged => false;

    /// <summary>Makes the tensor addressable until the lease is disposed (paged: maps it, loading it if evicted).</summary>
    /// <param name="write">False when the caller only reads (a clean paged buffer is then evicted without write-back).</param>
    public abstract StateLease Use(bool write = true);

    /// <summary>Ends a lease from <see cref="Use"/>.</summary>
    internal abstract void Release();

    /// <summary>Copies the whole tensor to host memory.</summary>
    public unsafe void CopyTo(Span<byte> destination)
    {
        CheckLength(destination.Length);
        using StateLease lease = Use(write: false);
        if (Device is null)
        {
            new ReadOnlySpan<byte>((void*)lease.Pointer, destination.Length).CopyTo(destination);
            return;
        }

        fixed (byte* d = destination)
        {
            DeviceCopy(d, (void*)lease.Pointer, BnbNative.BNB_COPY_DEVICE_TO_HOST);
        }
    }

    /// <summary>Overwrites the whole tensor from host memory.</summary>
    public unsafe void CopyFrom(ReadOnlySpan<byte> source)
    {
        CheckLength(source.Length);
        using StateLease lease = Use();
        if (Device is null)
        {
            source.CopyTo(new Span<byte>((void*)lease.Pointer, source.Length));
            return;
        }

        fixed (byte* s = source)
        {
            DeviceCopy((void*)lease.Pointer, s, BnbNative.BNB_COPY_HOST_TO_DEVICE);
        }
    }

    /// <summary>Reads the tensor as an array of <typeparamref name="T"/>.</summary>
    public T[] ToArray<T>()
        where T : unmanaged
    {
        var result = new T[Bytes / System.Runtime.CompilerServices.Unsafe.SizeOf<T>()];
        CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(result.AsSpan()));
        return result;
    }

    public abstract void Dispose();

    private protected virtual unsafe void DeviceCopy(void* destination, void* source, int direction) =>
        throw new NotSupportedException($"state '{Name}' lives on {Device}, which this buffer cannot copy from");

    private void CheckLength(int length)
    {
        if (length != Bytes)
        {
            throw new ArgumentException($"state '{Name}' has {Bytes} bytes, the host buffer {length}");
        }
    }
}

/// <summary>Access to a <see cref="StateBuffer"/> while it is addressable.</summary>
internal readonly struct StateLease(StateBuffer buffer, nint pointer) : IDisposable
{
    public nint Pointer => pointer;

    /// <summary>The tensor view to pass to an op (valid until the lease ends).</summary>
    public TensorRef View => TensorRef.FromPointer(pointer, buffer.DType, buffer.Shape, device: buffer.Device);

    public void Dispose() => buffer?.Release();
}

/// <summary>State in a backend buffer (<c>buffer_alloc</c>, kind device; zeroed by the backend).</summary>
internal sealed unsafe class BackendStateBuffer : StateBuffer
{
    private readonly BnbContext _context;
    private nint _buffer;
    private nint _pointer;

    public BackendStateBuffer(BnbContext context, string name, DType dtype, long[] shape)
        : base(name, dtype, shape, context.Backend.DeviceKind == DeviceKind.Cpu ? null : context.Device)
    {
        _context = context;
        // buffer_alloc rejects 0 bytes; an empty parameter still gets a (1-byte) buffer so every state has an address.
        (_buffer, _pointer) = context.Native.BufferAlloc(context.Handle, BnbNative.BNB_MEMORY_DEVICE, Math.Max(Bytes, 1));
    }

    public override StateLease Use(bool write = true) =>
        new(this, _pointer != 0 ? _pointer : throw new ObjectDisposedException(nameof(Optimizer), $"optimizer state '{Name}' was freed (the optimizer or the state was disposed)"));

    internal override void Release()
    {
    }

    public override void Dispose()
    {
        nint buffer = Interlocked.Exchange(ref _buffer, 0);
        if (buffer != 0)
        {
            _pointer = 0;
            _ = _context.Native.BufferFree(buffer);
        }
    }

    private protected override void DeviceCopy(void* destination, void* source, int direction) =>
        _context.Native.MemoryCopy(_context.Handle, destination, source, Bytes, direction);
}

/// <summary>State in the paging allocator: mapped (resident and pinned) only while leased.</summary>
internal sealed class PagedStateBuffer : StateBuffer
{
    private readonly PagedBuffer _buffer;
    private PagedMapping? _mapping;

    public PagedStateBuffer(PagedAllocator allocator, string name, DType dtype, long[] shape)
        : base(name, dtype, shape, allocator.Context.Backend.DeviceKind == DeviceKind.Cpu ? null : allocator.Context.Device) =>
        _buffer = allocator.Allocate(dtype, shape);

    public override bool IsPaged => true;

    public override StateLease Use(bool write = true)
    {
        if (_mapping is not null)
        {
            throw new InvalidOperationException($"paged state '{Name}' is already in use");
        }

        _mapping = _buffer.Map(write ? PagedAccess.ReadWrite : PagedAccess.Read);
        return new StateLease(this, _mapping.Pointer);
    }

    internal override void Release()
    {
        PagedMapping? m = _mapping;
        _mapping = null;
        m?.Dispose();
    }

    public override void Dispose()
    {
        Release();
        _buffer.Dispose();
    }
}
