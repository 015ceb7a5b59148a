namespace Bnb.Serialization;

/// <summary>
/// A safetensors file or checkpoint is malformed or does not match what was asked for: truncated file, bad header,
/// offsets out of range, dtype/shape mismatch, missing or unexpected keys. The message names the file and tensor.
/// </summary>
public sealed class CheckpointFormatException : FormatException
{
    public CheckpointFormatException()
        : this("malformed checkpoint")
    {
    }

    public CheckpointFormatException(string message)
        : base(message)
    {
    }

    public CheckpointFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public CheckpointFormatException(string message, string? tensorName, string? source, Exception? innerException = null)
        : base(Compose(message, tensorName, source), innerException)
    {
        TensorName = tensorName;
        FilePath = source;
    }

    /// <summary>The tensor (header key) the problem concerns, when there is one.</summary>
    public string? TensorName { get; }

    /// <summary>The file (or <c>"&lt;memory&gt;"</c>) that was read.</summary>
    public string? FilePath { get; }

    private static string Compose(string message, string? tensorName, string? source) =>
        (source is null ? "" : source + ": ") + (tensorName is null ? "" : $"tensor '{tensorName}': ") + message;
}
