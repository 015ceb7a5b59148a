using Bnb.Runtime;
using Silk.NET.OpenCL;

namespace Bnb.Silk.Tests;

/// <summary>Finds bnb_xpu, bnb_cpu_ref and an OpenCL device (PoCL's CPU device in CI).</summary>
internal static unsafe class SilkEnvironment
{
    private static readonly Lazy<string?> Problem = new(Probe);

    public static string NativeDirectory
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable(BnbRuntimeOptions.LibraryPathVariable);
            string? first = env?.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
            if (first is not null)
            {
                return File.Exists(first) ? Path.GetDirectoryName(first)! : first;
            }

            string? dir = AppContext.BaseDirectory;
            while (dir is not null && !File.Exists(Path.Combine(dir, "Bnb.sln")))
            {
                dir = Path.GetDirectoryName(dir);
            }

            return Path.Combine(dir ?? ".", "artifacts", "native", BnbRuntime.RuntimeIdentifier);
        }
    }

    public static string LibraryPath(string name) => Path.Combine(NativeDirectory,
        OperatingSystem.IsWindows() ? $"bnb_{name}.dll" : OperatingSystem.IsMacOS() ? $"libbnb_{name}.dylib" : $"libbnb_{name}.so");

    /// <summary>Why the tests cannot run here, or null.</summary>
    public static string? SkipReason => Problem.Value;

    public static BnbRuntime CreateRuntime()
    {
        var options = new BnbRuntimeOptions { UseEnvironment = false, SearchApplicationDirectory = false, Strict = true };
        options.LibraryPaths.Add(LibraryPath("cpu_ref"));
        options.LibraryPaths.Add(LibraryPath("xpu"));
        return new BnbRuntime(options);
    }

    /// <summary>The first device of the first OpenCL platform that has one (0 if none).</summary>
    public static nint FirstDevice(CL cl) => AllDevices(cl).FirstOrDefault();

    /// <summary>Every device of every OpenCL platform, in platform order.</summary>
    public static List<nint> AllDevices(CL cl)
    {
        uint count = 0;
        cl.GetPlatformIDs(0, null, &count);
        var platforms = new nint[count];
        fixed (nint* p = platforms)
        {
            cl.GetPlatformIDs(count, p, null);
        }

        var result = new List<nint>();
        foreach (nint platform in platforms)
        {
            uint n = 0;
            if (cl.GetDeviceIDs(platform, DeviceType.All, 0, null, &n) != 0 || n == 0) continue;
            var devices = new nint[n];
            fixed (nint* d = devices)
            {
                cl.GetDeviceIDs(platform, DeviceType.All, n, d, null);
            }

            result.AddRange(devices);
        }

        return result;
    }

    /// <summary>CL_DEVICE_NAME of a device.</summary>
    public static string DeviceName(CL cl, nint device)
    {
        nuint size = 0;
        cl.GetDeviceInfo(device, DeviceInfo.Name, 0, null, &size);
        byte[] name = new byte[(int)size];
        fixed (byte* b = name)
        {
            cl.GetDeviceInfo(device, DeviceInfo.Name, size, b, null);
        }

        return System.Text.Encoding.UTF8.GetString(name).TrimEnd('\0').Trim();
    }

    private static string? Probe()
    {
        foreach (string b in new[] { "cpu_ref", "xpu" })
        {
            if (!File.Exists(LibraryPath(b)))
            {
                return $"backend '{b}' is not built ({LibraryPath(b)} missing); build native code (BNB_XPU=ON needs the OpenCL headers) or set BNB_LIBRARY_PATH";
            }
        }

        try
        {
            using var cl = CL.GetApi();
            if (FirstDevice(cl) == 0)
            {
                return "no OpenCL device through Silk.NET.OpenCL (install an OpenCL driver, e.g. apt-get install pocl-opencl-icd)";
            }
        }
        catch (Exception e)
        {
            return $"Silk.NET.OpenCL cannot load the OpenCL library here: {e.Message.Split('\n')[0]}";
        }

        using var runtime = CreateRuntime();
        if (!runtime.Backends.Any(b => b.Name == "xpu" && b.IsAvailable))
        {
            return "bnb_xpu finds no OpenCL device here (bnb_probe() == 0)";
        }

        return null;
    }
}

/// <summary>A [Fact] skipped, with the reason, when bnb_xpu/cpu_ref are not built or there is no OpenCL device.</summary>
internal sealed class SilkFactAttribute : FactAttribute
{
    public SilkFactAttribute()
    {
        if (SilkEnvironment.SkipReason is { } why)
        {
            Skip = why;
        }
    }
}
