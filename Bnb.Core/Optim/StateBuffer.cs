using Bnb.Interop;
using Bnb.Memory;
using Bnb.Runtime;

namespace Bnb.Optim;

/// <summary>
/// One optimizer state tensor (<c>state1</c>, <c>absmax1</c>, <c>qmap1</c>, ...) in memory the optimizer owns. The
/// memory comes from the context's backend (<c>buffer_alloc</c>: host memory on CPU backends, device memory on GPU
/// backends) or, for paged optimizers, from the paging allocator.
/// </summary>
internal abstract class StateBuffer : IDisposable
{
    protected StateBuffer(string name, DType dtype, long[] shape)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        long n = 1;
        foreach (long d in shape)
        {
            n *= d;
        }

        ElementCount = n;
        Bytes = n * dtype.SizeOf();
    }

    /// <summary>bitsandbytes' state key (<c>state1</c>, <c>absmax2</c>, ...).</summary>
    public string Name { get; }

    public DType DType { get; }

    public long[] Shape { get; }

    public long ElementCount { get; }

    public long Bytes { get; }

    public virtual bool IsPaged => false;

    /// <summary>The view to pass to an op.</summary>
    public abstract TensorRef View();

    /// <summary>Makes the buffer resident before an op uses it (paged buffers); a no-op otherwise.</summary>
    public virtual void Prefetch()
    {
    }

    /// <summary>Copies the whole tensor to host memory.</summary>
    public abstract void CopyTo(Span<byte> destination);

    /// <summary>Overwrites the whole tensor from host memory.</summary>
    public abstract void CopyFrom(ReadOnlySpan<byte> source);

    public abstract void Dispose();

    /// <summary>Reads the tensor as an array of <typeparamref name="T"/>.</summary>
    public T[] ToArray<T>()
        where T : unmanaged
    {
        var result = new T[Bytes / System.Runtime.CompilerServices.Unsafe.SizeOf<T>()];
        CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(result.AsSpan()));
        return result;
    }
}

/// <summary>State in a backend buffer (<c>buffer_alloc</c>, kind device; zeroed by the backend).</summary>
internal sealed unsafe class BackendStateBuffer : StateBuffer
{
    private readonly BnbContext _context;
    private readonly bool _hostAddressable;
    private nint _buffer;
    private nint _pointer;

    public BackendStateBuffer(BnbContext context, string name, DType dtype, long[] shape)
        : base(name, dtype, shape)
    {
        _context = context;
        _hostAddressable = context.Backend.DeviceKind == DeviceKind.Cpu;
        // buffer_alloc rejects 0 bytes; an empty parameter still gets a (1-byte) buffer so every state has an address.
        (_buffer, _pointer) = context.Native.BufferAlloc(context.Handle, BnbNative.BNB_MEMORY_DEVICE, Math.Max(Bytes, 1));
    }

    public override TensorRef View() =>
        TensorRef.FromPointer(Address, DType, Shape, device: _hostAddressable ? null : _context.Device);

    public override void CopyTo(Span<byte> destination)
    {
        CheckLength(destination.Length);
        if (_hostAddressable)
        {
            new ReadOnlySpan<byte>((void*)Address, checked((int)Bytes)).CopyTo(destination);
            return;
        }

        fixed (byte* d = destination)
        {
            _context.Native.MemoryCopy(_context.Handle, d, (void*)Address, Bytes, BnbNative.BNB_COPY_DEVICE_TO_HOST);
        }
    }

    public override void CopyFrom(ReadOnlySpan<byte> source)
    {
        CheckLength(source.Length);
        if (_hostAddressable)
        {
            source.CopyTo(new Span<byte>((void*)Address, checked((int)Bytes)));
            return;
        }

        fixed (byte* s = source)
        {
            _context.Native.MemoryCopy(_context.Handle, (void*)Address, s, Bytes, BnbNative.BNB_COPY_HOST_TO_DEVICE);
        }
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

    private nint Address => _pointer != 0 ? _pointer : throw new ObjectDisposedException(nameof(Optimizer), $"optimizer state '{Name}' was freed (the optimizer is disposed)");

    private void CheckLength(int length)
    {
        if (length != Bytes)
        {
            throw new ArgumentException($"state '{Name}' has {Bytes} bytes, the host buffer {length}");
        }
    }
}
