namespace Bnb.Interop;

/// <summary>Buffer slots used by the optimizers for their state (allocate, address, copy, free).</summary>
internal sealed unsafe partial class NativeBackend
{
    /// <summary>buffer_alloc(kind, bytes) → the buffer handle and its address for ops (zeroed, 64-byte aligned).</summary>
    public (nint Buffer, nint Pointer) BufferAlloc(BnbContextHandle ctx, int kind, long bytes)
    {
        nint buffer = 0;
        Check(_api->BufferAlloc(Handle(ctx), kind, (nuint)bytes, &buffer), "buffer_alloc");
        void* pointer = null;
        nuint size = 0;
        int status = _api->BufferGetPointer(buffer, &pointer, &size);
        if (status != BnbNative.BNB_OK)
        {
            _ = _api->BufferFree(buffer);
            Check(status, "buffer_get_pointer");
        }

        return (buffer, (nint)pointer);
    }

    /// <summary>buffer_free; returns the status instead of throwing (called from Dispose).</summary>
    public int BufferFree(nint buffer) => _api->BufferFree(buffer);

    /// <summary>memory_copy(dst, src, bytes, direction) on the context's stream.</summary>
    public void MemoryCopy(BnbContextHandle ctx, void* dst, void* src, long bytes, int direction) =>
        Check(_api->MemoryCopy(Handle(ctx), dst, src, (nuint)bytes, direction), "memory_copy");
}
