using System.Runtime.InteropServices;
using System.Text;
using Bnb.Errors;
using Bnb.Memory;

namespace Bnb.Interop;

/// <summary>
/// One loaded backend table. Every slot wrapper pins its tensors for the duration of the call, builds the ABI
/// descriptors, calls through the table and turns a non-OK status into a typed exception carrying the thread's
/// native message (read immediately, on the calling thread).
/// </summary>
internal sealed unsafe partial class NativeBackend
{
    private readonly BnbApi* _api;

    public NativeBackend(BnbApi* api, NativeLibraryHandle library, string fallbackName)
    {
        _api = api;
        Library = library;
        var info = new BnbBackendInfo { StructSize = (uint)sizeof(BnbBackendInfo) };
        int status = api->BackendGetInfo(&info);
        Info = info;
        Name = status == BnbNative.BNB_OK && info.Name is not null ? Utf8(info.Name) : fallbackName;
        Check(status, "backend_get_info");
        Description = Utf8(info.Description);
        Version = Utf8(info.Version);
    }

    public NativeLibraryHandle Library { get; }

    public BnbBackendInfo Info { get; }

    public string Name { get; }

    public string Description { get; }

    public string Version { get; }

    public int DeviceCount()
    {
        int count = 0;
        Check(_api->DeviceCount(&count), "device_count");
        return count;
    }

    public BnbDeviceInfo DeviceInfo(int index)
    {
        var info = new BnbDeviceInfo { StructSize = (uint)sizeof(BnbDeviceInfo) };
        Check(_api->DeviceGetInfo(index, &info), "device_get_info");
        return info;
    }

    public static string DeviceName(in BnbDeviceInfo info)
    {
        fixed (byte* p = info.Name)
        {
            return Utf8(p, 128);
        }
    }

    public BnbContextHandle CreateContext(int device, int numThreads, int nonFinitePolicy)
    {
        var options = new BnbContextOptions
        {
            StructSize = (uint)sizeof(BnbContextOptions),
            Device = device,
            NumThreads = numThreads,
            NonfinitePolicy = nonFinitePolicy,
        };
        nint context = 0;
        Check(_api->ContextCreate(&options, &context), "context_create");
        return new BnbContextHandle(context, _api, Library);
    }

    /// <summary>A handle whose value is NULL: lets tests call ops on backends that cannot create a context (stubs).</summary>
    internal BnbContextHandle NullContext() => new(0, _api, Library);

    /// <summary>Only for tests: asks the library for another ABI major through the export, not the table.</summary>
    public static int GetApiStatus(NativeLibraryHandle library, uint abiMajor)
    {
        nint address = NativeLibrary.GetExport(library.DangerousGetHandle(), BnbNative.GetApiExport);
        BnbApi* api = null;
        return BnbGetApiFn.Cast((void*)address)(abiMajor, &api);
    }

    public void GetCodeTable(int table, TensorRef output)
    {
        RequireWritable(output, nameof(output));
        fixed (byte* p = output)
        {
            BnbTensor t = output.ToNative(p);
            Check(_api->GetCodeTable(table, &t), "get_code_table");
        }
    }

    /// <summary>Throws the typed exception for a non-OK status, with the calling thread's native message.</summary>
    public void Check(int status, string operation)
    {
        if (status == BnbNative.BNB_OK)
        {
            return;
        }

        byte* message = _api->LastErrorMessage();
        string text = message is null ? "" : Utf8(message);
        if (text.Length == 0)
        {
            text = $"{Name}: {operation}: failed with status {(BnbStatus)status}";
        }

        throw BnbException.FromStatus((BnbStatus)status, text, Name, operation);
    }

    internal static void RequireWritable(in TensorRef tensor, string argument)
    {
        if (tensor.IsPresent && tensor.IsReadOnly)
        {
            throw new ArgumentException($"{argument} is an output but the view is read-only", argument);
        }
    }

    private static BnbTensor* Desc(in TensorRef tensor, byte* pinned, BnbTensor* storage)
    {
        if (!tensor.IsPresent)
        {
            return null;
        }

        *storage = tensor.ToNative(pinned);
        return storage;
    }

    private static string Utf8(byte* s) => s is null ? "" : Marshal.PtrToStringUTF8((nint)s) ?? "";

    private static string Utf8(byte* s, int capacity)
    {
        int length = new ReadOnlySpan<byte>(s, capacity).IndexOf((byte)0);
        return Encoding.UTF8.GetString(s, length < 0 ? capacity : length);
    }
}
