using System.Runtime.InteropServices;
using System.Text;
using Bnb.Runtime;

namespace Bnb.Interop;

/// <summary>
/// Lists OpenCL platforms and devices through the system's ICD loader (libOpenCL.so.1 / OpenCL.dll), loaded at run
/// time: machines without OpenCL get an empty list and the reason. For <c>bnb info</c> (diagnostics); bnb_xpu has
/// its own device list (<see cref="BnbBackend.Devices"/>).
/// </summary>
internal static unsafe class OpenClProbe
{
    private const uint CL_PLATFORM_VERSION = 0x0901, CL_PLATFORM_NAME = 0x0902, CL_PLATFORM_VENDOR = 0x0903;
    private const uint CL_DEVICE_TYPE = 0x1000, CL_DEVICE_MAX_COMPUTE_UNITS = 0x1002, CL_DEVICE_GLOBAL_MEM_SIZE = 0x101F;
    private const uint CL_DEVICE_NAME = 0x102B, CL_DEVICE_VERSION = 0x102F, CL_DRIVER_VERSION = 0x102D;
    private const ulong CL_DEVICE_TYPE_ALL = 0xFFFFFFFF;

    public static IReadOnlyList<OpenClPlatform> List(out string? problem)
    {
        problem = null;
        string[] names = OperatingSystem.IsWindows() ? ["OpenCL.dll"]
            : OperatingSystem.IsMacOS() ? ["/System/Library/Frameworks/OpenCL.framework/OpenCL"]
            : ["libOpenCL.so.1", "libOpenCL.so"];
        nint lib = 0;
        foreach (string n in names)
        {
            if (NativeLibrary.TryLoad(n, out lib)) break;
        }

        if (lib == 0)
        {
            problem = $"no OpenCL ICD loader ({string.Join(", ", names)}) could be loaded";
            return [];
        }

        if (!NativeLibrary.TryGetExport(lib, "clGetPlatformIDs", out nint pPlatforms)
            || !NativeLibrary.TryGetExport(lib, "clGetPlatformInfo", out nint pPlatformInfo)
            || !NativeLibrary.TryGetExport(lib, "clGetDeviceIDs", out nint pDevices)
            || !NativeLibrary.TryGetExport(lib, "clGetDeviceInfo", out nint pDeviceInfo))
        {
            problem = "the OpenCL loader lacks the OpenCL 1.0 query functions";
            return [];
        }

        var getPlatforms = (delegate* unmanaged[Cdecl]<uint, nint*, uint*, int>)pPlatforms;
        var getPlatformInfo = (delegate* unmanaged[Cdecl]<nint, uint, nuint, void*, nuint*, int>)pPlatformInfo;
        var getDevices = (delegate* unmanaged[Cdecl]<nint, ulong, uint, nint*, uint*, int>)pDevices;
        var getDeviceInfo = (delegate* unmanaged[Cdecl]<nint, uint, nuint, void*, nuint*, int>)pDeviceInfo;

        uint count = 0;
        if (getPlatforms(0, null, &count) != 0 || count == 0)
        {
            problem = "the OpenCL loader reports no platform (no OpenCL driver is installed)";
            return [];
        }

        var platforms = new nint[count];
        fixed (nint* p = platforms)
        {
            getPlatforms(count, p, null);
        }

        var result = new List<OpenClPlatform>();
        foreach (nint platform in platforms)
        {
            string PlatformString(uint what) => QueryString((size, buf, ret) => getPlatformInfo(platform, what, size, buf, ret));
            uint ndev = 0;
            var devices = new List<OpenClDevice>();
            if (getDevices(platform, CL_DEVICE_TYPE_ALL, 0, null, &ndev) == 0 && ndev > 0)
            {
                var ids = new nint[ndev];
                fixed (nint* d = ids)
                {
                    getDevices(platform, CL_DEVICE_TYPE_ALL, ndev, d, null);
                }

                foreach (nint id in ids)
                {
                    string DeviceString(uint what) => QueryString((size, buf, ret) => getDeviceInfo(id, what, size, buf, ret));
                    ulong type = 0, mem = 0;
                    uint units = 0;
                    getDeviceInfo(id, CL_DEVICE_TYPE, sizeof(ulong), &type, null);
                    getDeviceInfo(id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof(ulong), &mem, null);
                    getDeviceInfo(id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof(uint), &units, null);
                    string kind = (type & 4) != 0 ? "GPU" : (type & 2) != 0 ? "CPU" : (type & 8) != 0 ? "accelerator" : "other";
                    devices.Add(new OpenClDevice(DeviceString(CL_DEVICE_NAME), kind, DeviceString(CL_DEVICE_VERSION),
                        DeviceString(CL_DRIVER_VERSION), (int)units, mem));
                }
            }

            result.Add(new OpenClPlatform(PlatformString(CL_PLATFORM_NAME), PlatformString(CL_PLATFORM_VENDOR),
                PlatformString(CL_PLATFORM_VERSION), devices));
        }

        return result;
    }

    private delegate int Query(nuint size, void* buffer, nuint* sizeRet);

    private static string QueryString(Query query)
    {
        nuint size = 0;
        if (query(0, null, &size) != 0 || size == 0 || size > 1 << 16)
        {
            return "";
        }

        byte* buf = stackalloc byte[(int)size];
        if (query(size, buf, null) != 0)
        {
            return "";
        }

        return Encoding.UTF8.GetString(buf, (int)size).TrimEnd('\0').Trim();
    }
}
