using Bnb.Interop;

namespace Bnb.Errors;

/// <summary>Status codes of the C ABI (<c>BNB_OK</c>, <c>BNB_ERR_*</c> in bnb.h).</summary>
public enum BnbStatus
{
    Ok = BnbNative.BNB_OK,
    InvalidArgument = BnbNative.BNB_ERR_INVALID_ARGUMENT,
    NullPointer = BnbNative.BNB_ERR_NULL_POINTER,
    BufferTooSmall = BnbNative.BNB_ERR_BUFFER_TOO_SMALL,
    ShapeMismatch = BnbNative.BNB_ERR_SHAPE_MISMATCH,
    UnsupportedDType = BnbNative.BNB_ERR_UNSUPPORTED_DTYPE,
    InvalidBlocksize = BnbNative.BNB_ERR_INVALID_BLOCKSIZE,
    NonFinite = BnbNative.BNB_ERR_NON_FINITE,
    NotSupported = BnbNative.BNB_ERR_NOT_SUPPORTED,
    OutOfMemory = BnbNative.BNB_ERR_OUT_OF_MEMORY,
    AbiMismatch = BnbNative.BNB_ERR_ABI_MISMATCH,
    NoDevice = BnbNative.BNB_ERR_NO_DEVICE,
    Device = BnbNative.BNB_ERR_DEVICE,
    Internal = BnbNative.BNB_ERR_INTERNAL,
    Io = BnbNative.BNB_ERR_IO,
}
