using System.Runtime.InteropServices;
using System.Text;
using Bnb.Errors;

namespace Bnb.Interop;

/// <summary>Slot wrappers of the paging allocator (<c>pager_configure</c>, <c>memory_stats</c>, PAGED buffers).</summary>
internal sealed unsafe partial class NativeBackend
{
    public void PagingConfigure(BnbContextHandle ctx, ulong budgetBytes, string? spillDirectory)
    {
        RequirePagingSlots("pager_configure");
        byte[]? dir = spillDirectory is null ? null : Encoding.UTF8.GetBytes(spillDirectory + "\0");
        fixed (byte* d = dir)
        {
            var config = new BnbPagerConfig { StructSize = (uint)sizeof(BnbPagerConfig), BudgetBytes = budgetBytes, SpillDirectory = d };
            Check(_api->PagerConfigure(Handle(ctx), &config), "pager_configure");
        }
    }

    public BnbMemoryStats PagingStats(BnbContextHandle ctx)
    {
        RequirePagingSlots("memory_stats");
        var stats = new BnbMemoryStats { StructSize = (uint)sizeof(BnbMemoryStats) };
        Check(_api->MemoryStats(Handle(ctx), &stats), "memory_stats");
        return stats;
    }

    public nint PagingAlloc(BnbContextHandle ctx, ulong bytes)
    {
        nint buffer = 0;
        Check(_api->BufferAlloc(Handle(ctx), BnbNative.BNB_MEMORY_PAGED, (nuint)bytes, &buffer), "buffer_alloc");
        return buffer;
    }

    /// <summary>Status only: called from <see cref="SafeHandle.ReleaseHandle"/>, which must not throw.</summary>
    public int PagingFree(nint buffer) => _api->BufferFree(buffer);

    public nint PagingMap(nint buffer, int access)
    {
        RequirePagingSlots("buffer_map_access");
        void* pointer = null;
        Check(_api->BufferMapAccess(buffer, access, &pointer), "buffer_map_access");
        return (nint)pointer;
    }

    public void PagingUnmap(nint buffer) => Check(_api->BufferUnmap(buffer), "buffer_unmap");

    public void PagingPrefetch(BnbContextHandle ctx, nint buffer, ulong offset, ulong bytes, int target) =>
        Check(_api->PagedPrefetch(Handle(ctx), buffer, (nuint)offset, (nuint)bytes, target), "paged_prefetch");

    /// <summary>The paging slots were appended to the table: a library built before them has a shorter table.</summary>
    private void RequirePagingSlots(string operation)
    {
        long needed = (byte*)&_api->BufferUnmap - (byte*)_api + sizeof(nint);
        if (_api->StructSize < needed)
        {
            throw new BnbNotSupportedException(
                $"{Name}: {operation}: the library's function table ({_api->StructSize} bytes) predates the paging slots ({needed} bytes needed); update the backend",
                Name,
                operation);
        }
    }
}
