namespace Bnb.Interop;

/// <summary>The stream slots (stream_create / destroy / synchronize, context_set_stream).</summary>
internal sealed unsafe partial class NativeBackend
{
    /// <summary>A new stream on the context, or a wrapper around <paramref name="nativeStream"/> (cudaStream_t,
    /// hipStream_t, cl_command_queue) when it is not 0. Returns the native bnb_stream*.</summary>
    public nint StreamCreate(BnbContextHandle context, nint nativeStream)
    {
        bool added = false;
        context.DangerousAddRef(ref added);
        try
        {
            nint stream = 0;
            Check(_api->StreamCreate(context.DangerousGetHandle(), (void*)nativeStream, &stream), "stream_create");
            return stream;
        }
        finally
        {
            if (added) context.DangerousRelease();
        }
    }

    public void StreamDestroy(nint stream) => Check(_api->StreamDestroy(stream), "stream_destroy");

    public void StreamSynchronize(nint stream) => Check(_api->StreamSynchronize(stream), "stream_synchronize");

    public void ContextSetStream(BnbContextHandle context, nint stream)
    {
        bool added = false;
        context.DangerousAddRef(ref added);
        try
        {
            Check(_api->ContextSetStream(context.DangerousGetHandle(), stream), "context_set_stream");
        }
        finally
        {
            if (added) context.DangerousRelease();
        }
    }
}
