using System.Runtime.InteropServices;

namespace Bnb.Interop;

/// <summary>Owns a <c>dlopen</c>/<c>LoadLibrary</c> handle; contexts add a reference so the library outlives them.</summary>
internal sealed class NativeLibraryHandle : SafeHandle
{
    public NativeLibraryHandle(nint handle)
        : base(0, ownsHandle: true) => SetHandle(handle);

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        NativeLibrary.Free(handle);
        return true;
    }
}

/// <summary>
/// Owns a <c>bnb_context*</c>; released through the owning backend's <c>context_destroy</c>. Holds a reference on
/// the library handle so the code it calls is still mapped when it is released.
/// </summary>
internal sealed unsafe class BnbContextHandle : SafeHandle
{
    private readonly BnbApi* _api;
    private readonly NativeLibraryHandle _library;

    public BnbContextHandle(nint context, BnbApi* api, NativeLibraryHandle library)
        : base(0, ownsHandle: true)
    {
        _api = api;
        _library = library;
        bool added = false;
        library.DangerousAddRef(ref added);
        SetHandle(context);
    }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        // context_destroy accepts any live context and cannot meaningfully fail; nothing to report from a finalizer.
        _ = _api->ContextDestroy(handle);
        _library.DangerousRelease();
        return true;
    }
}
