namespace Bnb.Interop;

/// <summary>Slot wrappers of <see cref="Bnb.Memory.DeviceBuffer"/> (<c>buffer_alloc</c>, <c>memory_copy</c>, ...).</summary>
internal sealed unsafe partial class NativeBackend
{
    public nint DeviceBufferAlloc(BnbContextHandle ctx, int kind, ulong bytes)
    {
        nint buffer = 0;
        Check(_api->BufferAlloc(Handle(ctx), kind, (nuint)bytes, &buffer), "buffer_alloc");
        return buffer;
    }

    public nint DeviceBufferPointer(nint buffer)
    {
        void* pointer = null;
        Check(_api->BufferGetPointer(buffer, &pointer, null), "buffer_get_pointer");
        return (nint)pointer;
    }

    public void DeviceMemoryCopy(BnbContextHandle ctx, nint destination, nint source, ulong bytes, int direction) =>
        Check(_api->MemoryCopy(Handle(ctx), (void*)destination, (void*)source, (nuint)bytes, direction), "memory_copy");
}
