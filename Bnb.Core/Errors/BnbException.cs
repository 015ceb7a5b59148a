namespace Bnb.Errors;

/// <summary>
/// A native call returned a status other than <see cref="BnbStatus.Ok"/> (or a backend could not be loaded).
/// <see cref="Exception.Message"/> is the backend's own message, which names the backend, the op, the argument and
/// its value.
/// </summary>
public class BnbException : Exception
{
    public BnbException()
        : this(BnbStatus.Internal, "unknown Bnb error")
    {
    }

    public BnbException(string message)
        : this(BnbStatus.Internal, message)
    {
    }

    public BnbException(string message, Exception innerException)
        : base(message, innerException)
    {
        Status = BnbStatus.Internal;
    }

    public BnbException(BnbStatus status, string message, string? backend = null, string? operation = null)
        : base(message)
    {
        Status = status;
        Backend = backend;
        Operation = operation;
    }

    /// <summary>The status the native call returned.</summary>
    public BnbStatus Status { get; }

    /// <summary>The backend name (e.g. <c>cpu_ref</c>), when known.</summary>
    public string? Backend { get; }

    /// <summary>The table slot that failed (e.g. <c>quantize_4bit</c>), when known.</summary>
    public string? Operation { get; }

    /// <summary>Maps a status to its exception type.</summary>
    public static BnbException FromStatus(BnbStatus status, string message, string? backend = null, string? operation = null) => status switch
    {
        BnbStatus.InvalidArgument or BnbStatus.NullPointer or BnbStatus.BufferTooSmall or BnbStatus.ShapeMismatch
            or BnbStatus.UnsupportedDType or BnbStatus.InvalidBlocksize or BnbStatus.NonFinite
            => new BnbInvalidArgumentException(status, message, backend, operation),
        BnbStatus.NotSupported => new BnbNotSupportedException(message, backend, operation),
        BnbStatus.OutOfMemory => new BnbOutOfMemoryException(message, backend, operation),
        BnbStatus.NoDevice or BnbStatus.Device => new BnbDeviceException(status, message, backend, operation),
        BnbStatus.AbiMismatch => new BnbAbiMismatchException(message, backend),
        _ => new BnbException(status, message, backend, operation),
    };
}

/// <summary>An argument was rejected: bad value, null pointer, short buffer, shape, dtype, blocksize or NaN/Inf.</summary>
public sealed class BnbInvalidArgumentException : BnbException
{
    public BnbInvalidArgumentException(BnbStatus status, string message, string? backend = null, string? operation = null)
        : base(status, message, backend, operation)
    {
    }
}

/// <summary>The backend does not implement the op or feature.</summary>
public sealed class BnbNotSupportedException : BnbException
{
    public BnbNotSupportedException(string message, string? backend = null, string? operation = null)
        : base(BnbStatus.NotSupported, message, backend, operation)
    {
    }
}

/// <summary>A native allocation failed.</summary>
public sealed class BnbOutOfMemoryException : BnbException
{
    public BnbOutOfMemoryException(string message, string? backend = null, string? operation = null)
        : base(BnbStatus.OutOfMemory, message, backend, operation)
    {
    }
}

/// <summary>No usable device, or a device/driver call failed.</summary>
public sealed class BnbDeviceException : BnbException
{
    public BnbDeviceException(BnbStatus status, string message, string? backend = null, string? operation = null)
        : base(status, message, backend, operation)
    {
    }
}

/// <summary>A backend library does not implement the ABI major version this SDK was built against.</summary>
public sealed class BnbAbiMismatchException : BnbException
{
    public BnbAbiMismatchException(string message, string? backend = null)
        : base(BnbStatus.AbiMismatch, message, backend, "bnb_get_api")
    {
    }
}

/// <summary>A backend library that the caller demanded could not be found or loaded.</summary>
public sealed class BnbLoadException : BnbException
{
    public BnbLoadException(string message, string path)
        : base(BnbStatus.Internal, message)
    {
        LibraryPath = path;
    }

    /// <summary>The file that failed to load.</summary>
    public string LibraryPath { get; }
}
