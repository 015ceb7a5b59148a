using Bnb.Interop;

namespace Bnb.Runtime;

/// <summary>An OpenCL device as the system's OpenCL driver reports it (diagnostics, <c>bnb info</c>).</summary>
public sealed record OpenClDevice(string Name, string Kind, string Version, string DriverVersion, int ComputeUnits, ulong GlobalMemory);

/// <summary>An OpenCL platform (one installed driver/ICD) and its devices.</summary>
public sealed record OpenClPlatform(string Name, string Vendor, string Version, IReadOnlyList<OpenClDevice> Devices)
{
    /// <summary>
    /// Every OpenCL platform and device on this machine through the ICD loader (loaded at run time); empty, with
    /// <paramref name="problem"/> saying why, where OpenCL is absent.
    /// </summary>
    public static IReadOnlyList<OpenClPlatform> Enumerate(out string? problem) => OpenClProbe.List(out problem);
}
