using Bnb.Memory;

namespace Bnb.Quantization;

/// <summary>
/// Per-block scales as the ABI's <c>bnb_absmax</c>: plain float32 values, or 8-bit codes with nested statistics
/// (<c>absmax[i] = nestedCode[codes[i]] * nestedAbsmax[i / nestedBlocksize] + nestedOffset</c>).
/// </summary>
public readonly ref struct AbsmaxRef
{
    private AbsmaxRef(TensorRef values, bool nested, TensorRef nestedAbsmax, TensorRef nestedCode, long nestedBlocksize, float nestedOffset)
    {
        Values = values;
        IsNested = nested;
        NestedAbsmax = nestedAbsmax;
        NestedCode = nestedCode;
        NestedBlocksize = nestedBlocksize;
        NestedOffset = nestedOffset;
    }

    public TensorRef Values { get; }

    public bool IsNested { get; }

    public TensorRef NestedAbsmax { get; }

    public TensorRef NestedCode { get; }

    public long NestedBlocksize { get; }

    public float NestedOffset { get; }

    /// <summary>Plain float32 absmax, one per block.</summary>
    public static AbsmaxRef Plain(TensorRef values) => new(values, false, default, default, 0, 0);

    /// <summary>Double-quantized absmax: u8 codes, float32 nested absmax, the 256-entry nested code, its blocksize and the offset.</summary>
    public static AbsmaxRef Nested(TensorRef codes, TensorRef nestedAbsmax, TensorRef nestedCode, long nestedBlocksize, float offset) =>
        new(codes, true, nestedAbsmax, nestedCode, nestedBlocksize, offset);
}
