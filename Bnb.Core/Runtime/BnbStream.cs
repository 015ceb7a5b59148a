namespace Bnb.Runtime;

/// <summary>
/// An ordered queue of work on a context's device: a CUDA/HIP stream or an OpenCL command queue, created by the
/// backend or wrapped from another framework (no ownership taken: disposing the wrapper leaves the native stream
/// alive). CPU backends complete every op before it returns, so their streams only record identity.
/// </summary>
/// <remarks>
/// Ops run on the context's current stream (<see cref="MakeCurrent"/>; <see cref="ResetCurrent"/> returns to the
/// context's own). Dispose the stream only when no op of the context uses it any more; a current stream that is
/// disposed stops being current.
/// </remarks>
public sealed class BnbStream : IDisposable
{
    private nint _handle;

    private BnbStream(BnbContext context, nint handle, bool wrapped)
    {
        Context = context;
        _handle = handle;
        IsWrapped = wrapped;
    }

    /// <summary>The context the stream belongs to.</summary>
    public BnbContext Context { get; }

    /// <summary>True when it wraps a stream/queue created elsewhere.</summary>
    public bool IsWrapped { get; }

    /// <summary>A new stream of the context's backend on its device.</summary>
    public static BnbStream Create(BnbContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new BnbStream(context, context.Native.StreamCreate(context.Handle, 0), wrapped: false);
    }

    /// <summary>
    /// Wraps a native stream created elsewhere: <c>cudaStream_t</c> (bnb_cuda), <c>hipStream_t</c> (bnb_hip), an in-order
    /// <c>cl_command_queue</c> (bnb_xpu: ops then run in that queue's OpenCL context, on its cl_mem buffers).
    /// </summary>
    public static BnbStream Wrap(BnbContext context, nint nativeStream)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (nativeStream == 0)
        {
            throw new ArgumentException("a native stream to wrap cannot be 0 (use Create for a new stream)", nameof(nativeStream));
        }

        return new BnbStream(context, context.Native.StreamCreate(context.Handle, nativeStream), wrapped: true);
    }

    /// <summary>Makes the context's ops run on this stream.</summary>
    public void MakeCurrent() => Context.Native.ContextSetStream(Context.Handle, Handle);

    /// <summary>Makes the context's ops run on its own default stream again.</summary>
    public static void ResetCurrent(BnbContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Native.ContextSetStream(context.Handle, 0);
    }

    /// <summary>Waits until all work queued on the stream has finished.</summary>
    public void Synchronize() => Context.Native.StreamSynchronize(Handle);

    private nint Handle => _handle != 0 ? _handle : throw new ObjectDisposedException(nameof(BnbStream));

    public void Dispose()
    {
        nint h = _handle;
        _handle = 0;
        if (h != 0 && !Context.Handle.IsClosed)
        {
            Context.Native.StreamDestroy(h);
        }
    }
}
