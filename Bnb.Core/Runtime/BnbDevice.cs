namespace Bnb.Runtime;

/// <summary>A device of a backend; its string form is <c>"&lt;backend&gt;:&lt;index&gt;"</c> (e.g. <c>cpu_ref:0</c>).</summary>
/// <param name="Backend">Backend name.</param>
/// <param name="Index">Device index within the backend.</param>
/// <param name="Name">Human-readable device name (CPU model, GPU name).</param>
/// <param name="Kind">CPU, GPU or accelerator.</param>
/// <param name="ComputeUnits">Cores, SMs or CUs.</param>
/// <param name="TotalMemory">Bytes.</param>
/// <param name="FreeMemory">Bytes, 0 if unknown.</param>
/// <param name="Features">Backend-specific feature bits.</param>
/// <param name="ComputeCapability">GPUs: major*10+minor; else 0.</param>
/// <param name="WarpSize">GPUs: 32 or 64; else 0.</param>
public sealed record BnbDevice(
    string Backend,
    int Index,
    string Name,
    DeviceKind Kind,
    int ComputeUnits,
    ulong TotalMemory,
    ulong FreeMemory,
    ulong Features,
    int ComputeCapability,
    int WarpSize)
{
    /// <summary><c>"&lt;backend&gt;:&lt;index&gt;"</c>.</summary>
    public string Id => $"{Backend}:{Index}";

    public override string ToString() => Id;

    /// <summary>Splits a device string into backend name and index (<c>"cuda"</c> alone means index 0).</summary>
    /// <exception cref="FormatException">Not of the form <c>name</c> or <c>name:index</c>.</exception>
    public static (string Backend, int Index) Parse(string device)
    {
        ArgumentException.ThrowIfNullOrEmpty(device);
        int colon = device.LastIndexOf(':');
        if (colon < 0)
        {
            return (device, 0);
        }

        if (colon == 0 || !int.TryParse(device.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int index))
        {
            throw new FormatException($"device '{device}' is not of the form <backend>:<index>");
        }

        return (device[..colon], index);
    }
}
