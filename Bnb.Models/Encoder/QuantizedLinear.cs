using Bnb.Nn;
using Bnb.Quantization;

namespace Bnb.Models.Encoder;

/// <summary>The storage formats the encoder evaluation compares (names as the CLI's <c>--formats</c>).</summary>
public enum EncoderFormat
{
    /// <summary>float32 weights (the reference).</summary>
    Fp32,

    /// <summary>LLM.int8() with outlier threshold 6 (bitsandbytes' default).</summary>
    Int8,

    /// <summary>LLM.int8() with threshold 0: every column in int8.</summary>
    Int8T0,

    /// <summary>4-bit NormalFloat, blocksize 64.</summary>
    Nf4,

    /// <summary>NF4 with double-quantized absmax.</summary>
    Nf4Dq,

    /// <summary>4-bit float, blocksize 64.</summary>
    Fp4,
}

public static class EncoderFormats
{
    public static IReadOnlyList<EncoderFormat> Quantized { get; } = [EncoderFormat.Int8, EncoderFormat.Int8T0, EncoderFormat.Nf4, EncoderFormat.Nf4Dq, EncoderFormat.Fp4];

    public static string Name(this EncoderFormat f) => f switch
    {
        EncoderFormat.Fp32 => "fp32",
        EncoderFormat.Int8 => "int8",
        EncoderFormat.Int8T0 => "int8-t0",
        EncoderFormat.Nf4 => "nf4",
        EncoderFormat.Nf4Dq => "nf4-dq",
        EncoderFormat.Fp4 => "fp4",
        _ => throw new ArgumentOutOfRangeException(nameof(f), f, null),
    };

    public static string Description(this EncoderFormat f) => f switch
    {
        EncoderFormat.Fp32 => "float32 weights",
        EncoderFormat.Int8 => "LLM.int8(), threshold 6",
        EncoderFormat.Int8T0 => "LLM.int8(), threshold 0",
        EncoderFormat.Nf4 => "NF4, blocksize 64",
        EncoderFormat.Nf4Dq => "NF4 + double quant",
        EncoderFormat.Fp4 => "FP4, blocksize 64",
        _ => throw new ArgumentOutOfRangeException(nameof(f), f, null),
    };

    /// <summary>Parses a comma-separated list such as <c>int8,int8-t0,nf4,nf4-dq,fp4</c>.</summary>
    /// <exception cref="ArgumentException">An unknown name (the message lists the valid ones).</exception>
    public static IReadOnlyList<EncoderFormat> Parse(string list)
    {
        ArgumentNullException.ThrowIfNull(list);
        var all = Enum.GetValues<EncoderFormat>();
        var result = new List<EncoderFormat>();
        foreach (string part in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var f = all.Where(x => string.Equals(x.Name(), part, StringComparison.OrdinalIgnoreCase)).Select(x => (EncoderFormat?)x).FirstOrDefault()
                ?? throw new ArgumentException($"unknown format '{part}' (valid: {string.Join(", ", all.Select(x => x.Name()))})", nameof(list));
            if (!result.Contains(f))
            {
                result.Add(f);
            }
        }

        return result.Count > 0 ? result : throw new ArgumentException("no format given", nameof(list));
    }

    /// <summary>A factory for <see cref="BertEncoder"/> that stores every linear layer in <paramref name="format"/> on <paramref name="quantizer"/>'s backend.</summary>
    public static Func<LinearWeights, IEncoderLinear> LinearFactory(this EncoderFormat format, Quantizer? quantizer) => format switch
    {
        EncoderFormat.Fp32 => w => new DenseLinear(w),
        EncoderFormat.Int8 => w => ModuleLinear.Int8(Require(quantizer), w, 6f),
        EncoderFormat.Int8T0 => w => ModuleLinear.Int8(Require(quantizer), w, 0f),
        EncoderFormat.Nf4 => w => ModuleLinear.FourBit(Require(quantizer), w, QuantType.Nf4, false),
        EncoderFormat.Nf4Dq => w => ModuleLinear.FourBit(Require(quantizer), w, QuantType.Nf4, true),
        EncoderFormat.Fp4 => w => ModuleLinear.FourBit(Require(quantizer), w, QuantType.Fp4, false),
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
    };

    private static Quantizer Require(Quantizer? q) => q ?? throw new ArgumentNullException(nameof(q), "quantized formats need a backend quantizer");
}

/// <summary>
/// An encoder linear layer backed by one of Bnb.Core's quantized modules (<see cref="Linear8bitLt"/>,
/// <see cref="Linear4bit"/>); the weight arrives in the export's [in × out] layout and is quantized as [out × in].
/// </summary>
internal sealed class ModuleLinear(IQuantizedLinear module) : IEncoderLinear
{
    public int InFeatures => module.InFeatures;

    public int OutFeatures => module.OutFeatures;

    public long WeightBytes => module.WeightBytes;

    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y) =>
        module.Forward(x[..(rows * InFeatures)], rows, y[..(rows * OutFeatures)]);

    public static ModuleLinear Int8(Quantizer q, LinearWeights w, float threshold) =>
        new(Linear8bitLt.Quantize<float>(q, w.WeightOutIn(), w.OutFeatures, w.InFeatures, w.Bias, threshold));

    public static ModuleLinear FourBit(Quantizer q, LinearWeights w, QuantType type, bool doubleQuant) =>
        new(Linear4bit.Quantize<float>(q, w.WeightOutIn(), w.OutFeatures, w.InFeatures, w.Bias, type, 64, doubleQuant));
}
