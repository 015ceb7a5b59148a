using System.Runtime.InteropServices;
using Bnb.Runtime;

namespace Bnb.Interop;

/// <summary>Result of loading one backend file: either a table or the stage where it stopped.</summary>
internal sealed unsafe class LoadedLibrary
{
    public required LoadStage Stage { get; init; }

    public string Message { get; init; } = "";

    public int? Probe { get; init; }

    public uint? AbiMajor { get; init; }

    public uint? AbiMinor { get; init; }

    public NativeLibraryHandle? Library { get; init; }

    public BnbApi* Api { get; init; }
}

/// <summary>dlopen + the two exports + the table: every failure becomes a stage, never an exception.</summary>
internal static unsafe class NativeLoader
{
    public static LoadedLibrary Load(string path, uint abiMajor)
    {
        if (!File.Exists(path))
        {
            return new LoadedLibrary { Stage = LoadStage.NotFound, Message = "no such file" };
        }

        nint handle;
        try
        {
            handle = NativeLibrary.Load(path);
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            return new LoadedLibrary { Stage = LoadStage.LoadFailed, Message = e.Message };
        }

        var library = new NativeLibraryHandle(handle);
        if (!NativeLibrary.TryGetExport(handle, BnbNative.ProbeExport, out nint probeAddress)
            || !NativeLibrary.TryGetExport(handle, BnbNative.GetApiExport, out nint getApiAddress))
        {
            library.Dispose();
            return new LoadedLibrary
            {
                Stage = LoadStage.MissingExport,
                Message = $"the library does not export both {BnbNative.ProbeExport} and {BnbNative.GetApiExport}",
            };
        }

        int probe = BnbProbeFn.Cast((void*)probeAddress)();
        BnbApi* api = null;
        int status = BnbGetApiFn.Cast((void*)getApiAddress)(abiMajor, &api);
        if (status != BnbNative.BNB_OK || api is null)
        {
            library.Dispose();
            return new LoadedLibrary
            {
                Stage = LoadStage.AbiMismatch,
                Probe = probe,
                Message = status == BnbNative.BNB_ERR_ABI_MISMATCH
                    ? $"{BnbNative.GetApiExport}({abiMajor}) returned BNB_ERR_ABI_MISMATCH: the library does not implement ABI major {abiMajor}"
                    : $"{BnbNative.GetApiExport}({abiMajor}) returned status {status}",
            };
        }

        if (api->AbiMajor != abiMajor || api->StructSize < (uint)sizeof(BnbApi))
        {
            uint major = api->AbiMajor, minor = api->AbiMinor, size = api->StructSize;
            library.Dispose();
            return new LoadedLibrary
            {
                Stage = LoadStage.AbiMismatch,
                Probe = probe,
                AbiMajor = major,
                AbiMinor = minor,
                Message = $"table is ABI {major}.{minor} with {size} bytes; this SDK needs ABI {abiMajor} with at least {sizeof(BnbApi)} bytes",
            };
        }

        return new LoadedLibrary
        {
            Stage = probe > 0 ? LoadStage.Loaded : LoadStage.ProbeZero,
            Probe = probe,
            AbiMajor = api->AbiMajor,
            AbiMinor = api->AbiMinor,
            Library = library,
            Api = api,
            Message = probe > 0 ? "" : "bnb_probe returned 0: this backend cannot run on this machine",
        };
    }
}
