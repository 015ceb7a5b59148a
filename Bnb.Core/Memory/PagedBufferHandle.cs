using System.Runtime.InteropServices;
using Bnb.Interop;

namespace Bnb.Memory;

/// <summary>
/// Owns a PAGED <c>bnb_buffer*</c>. Holds a reference on its context handle (the pager lives in the context, so the
/// context is destroyed only after its last paged buffer) and is itself referenced by every open
/// <see cref="PagedMapping"/>, so disposing a buffer that is still mapped frees it when the last mapping closes.
/// </summary>
internal sealed class PagedBufferHandle : SafeHandle
{
    private readonly NativeBackend _native;
    private readonly BnbContextHandle _context;

    public PagedBufferHandle(nint buffer, NativeBackend native, BnbContextHandle context)
        : base(0, ownsHandle: true)
    {
        _native = native;
        _context = context;
        bool added = false;
        context.DangerousAddRef(ref added);
        SetHandle(buffer);
    }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        // No map is open here (each mapping holds a reference), so buffer_free cannot refuse; nothing to report from
        // a finalizer either way.
        _ = _native.PagingFree(handle);
        _context.DangerousRelease();
        return true;
    }
}
