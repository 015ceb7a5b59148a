using Bnb.Interop;

namespace Bnb.Runtime;

/// <summary>A loaded backend library (e.g. <c>cpu_ref</c>): its identity, capabilities and devices.</summary>
public sealed class BnbBackend
{
    private readonly BnbRuntime _runtime;

    internal BnbBackend(BnbRuntime runtime, NativeBackend native, string libraryPath, int probeScore, uint abiMajor, uint abiMinor)
    {
        _runtime = runtime;
        Native = native;
        LibraryPath = libraryPath;
        ProbeScore = probeScore;
        AbiMajor = abiMajor;
        AbiMinor = abiMinor;
        var info = native.Info;
        Capabilities = new BackendCapabilities(
            (BackendOps)info.Ops,
            (DTypeFlags)info.FloatDtypes,
            (QuantTypeFlags)info.QuantTypes,
            (WeightFormatFlags)info.WeightFormats,
            (MemoryKindFlags)info.MemoryKinds,
            (OptimizerFlags)info.Optimizers);
        DeviceKind = (DeviceKind)info.DeviceKind;
        int count = native.DeviceCount();
        var devices = new List<BnbDevice>(count);
        for (int i = 0; i < count; i++)
        {
            var d = native.DeviceInfo(i);
            devices.Add(new BnbDevice(Name, d.Index, NativeBackend.DeviceName(d), (DeviceKind)d.Kind, d.ComputeUnits, d.TotalMemory, d.FreeMemory, d.Features, d.ComputeCapability, d.WarpSize));
        }

        Devices = devices;
    }

    /// <summary>Backend name as the library reports it (<c>cpu_ref</c>, <c>cuda</c>, ...).</summary>
    public string Name => Native.Name;

    public string Description => Native.Description;

    /// <summary>Library version string.</summary>
    public string Version => Native.Version;

    public string LibraryPath { get; }

    /// <summary><c>bnb_probe()</c>: 0 = cannot run here; higher is preferred.</summary>
    public int ProbeScore { get; }

    /// <summary>True when the probe score is positive.</summary>
    public bool IsAvailable => ProbeScore > 0;

    public uint AbiMajor { get; }

    public uint AbiMinor { get; }

    public DeviceKind DeviceKind { get; }

    public BackendCapabilities Capabilities { get; }

    public IReadOnlyList<BnbDevice> Devices { get; }

    internal NativeBackend Native { get; }

    /// <summary>
    /// Creates a context on device <paramref name="device"/>. Defaults for threads and NaN policy come from the
    /// runtime's options. A context is used by one thread at a time; create one per thread for parallel work.
    /// </summary>
    public BnbContext CreateContext(int device = 0, int? numThreads = null, NonFinitePolicy? nonFinitePolicy = null)
    {
        _runtime.ThrowIfDisposed();
        if (numThreads is < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(numThreads), numThreads, "thread count must be >= 0 (0 = backend default)");
        }

        int threads = numThreads ?? _runtime.Options.NumThreads;
        NonFinitePolicy policy = nonFinitePolicy ?? _runtime.Options.NonFinitePolicy;
        return new BnbContext(this, device, threads, policy, Native.CreateContext(device, threads, (int)policy));
    }

    public override string ToString() => $"{Name} {Version} (ABI {AbiMajor}.{AbiMinor}, probe {ProbeScore}, {LibraryPath})";
}
