using Bnb.Interop;

namespace Bnb.Runtime;

/// <summary>
/// A backend context on one device (threads, scratch memory, NaN policy). Externally synchronized: use it from one
/// thread at a time. Disposing it destroys the native context.
/// </summary>
public sealed class BnbContext : IDisposable
{
    internal BnbContext(BnbBackend backend, int device, int numThreads, NonFinitePolicy policy, BnbContextHandle handle)
    {
        Backend = backend;
        DeviceIndex = device;
        NumThreads = numThreads;
        NonFinitePolicy = policy;
        Handle = handle;
    }

    public BnbBackend Backend { get; }

    public int DeviceIndex { get; }

    /// <summary><c>"&lt;backend&gt;:&lt;index&gt;"</c>.</summary>
    public string Device => $"{Backend.Name}:{DeviceIndex}";

    public int NumThreads { get; }

    public NonFinitePolicy NonFinitePolicy { get; }

    internal BnbContextHandle Handle { get; }

    internal NativeBackend Native => Backend.Native;

    public void Dispose() => Handle.Dispose();

    public override string ToString() => $"{Device} (threads {NumThreads}, non-finite {NonFinitePolicy})";
}
