// Loads bnb_cpu_ref from the restored runtime package (deps.json native asset) and checks the two ABI exports.
using System.Runtime.InteropServices;

internal static class Program
{
    [DllImport("bnb_cpu_ref", EntryPoint = "bnb_probe")]
    private static extern int BnbProbe();

    [DllImport("bnb_cpu_ref", EntryPoint = "bnb_get_api")]
    private static extern int BnbGetApi(uint abiMajor, out IntPtr api);

    private static int Main()
    {
        var probe = BnbProbe();
        var status = BnbGetApi(1, out var api);
        Console.WriteLine($"smoke: {RuntimeInformation.RuntimeIdentifier}: bnb_cpu_ref probe={probe} get_api(1)={status} table={(api != IntPtr.Zero ? "ok" : "null")}");
        return probe > 0 && status == 0 && api != IntPtr.Zero ? 0 : 1;
    }
}
