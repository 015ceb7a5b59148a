namespace Bnb.Runtime;

/// <summary>One entry of the loader trace: what was tried, where it came from and how far it got.</summary>
/// <param name="Path">Full path of the file (or directory, for a directory that does not exist).</param>
/// <param name="Source">Which search location produced the path.</param>
/// <param name="Stage">How far loading got.</param>
/// <param name="Message">OS or backend message explaining a failure; empty on success.</param>
/// <param name="ProbeScore">Result of <c>bnb_probe</c>, when it was called.</param>
/// <param name="AbiMajor">ABI major of the library's table, when it was obtained.</param>
/// <param name="AbiMinor">ABI minor of the library's table, when it was obtained.</param>
/// <param name="BackendName">The backend name (from the file name before loading, from the library after).</param>
public sealed record LoadAttempt(
    string Path,
    LoadSource Source,
    LoadStage Stage,
    string Message,
    int? ProbeScore = null,
    uint? AbiMajor = null,
    uint? AbiMinor = null,
    string? BackendName = null)
{
    public override string ToString() =>
        $"{Stage,-13} {Path} ({Source}{(BackendName is null ? "" : $", {BackendName}")}{(ProbeScore is int p ? $", probe {p}" : "")}{(AbiMajor is uint a ? $", ABI {a}.{AbiMinor}" : "")}){(Message.Length > 0 ? ": " + Message : "")}";
}
