using Bnb.Dense;
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
        EncoderFormat.Int8 => w => new Int8Linear(Require(quantizer), w, 6f),
        EncoderFormat.Int8T0 => w => new Int8Linear(Require(quantizer), w, 0f),
        EncoderFormat.Nf4 => w => new FourBitLinear(Require(quantizer), w, QuantType.Nf4, false),
        EncoderFormat.Nf4Dq => w => new FourBitLinear(Require(quantizer), w, QuantType.Nf4, true),
        EncoderFormat.Fp4 => w => new FourBitLinear(Require(quantizer), w, QuantType.Fp4, false),
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
    };

    private static Quantizer Require(Quantizer? q) => q ?? throw new ArgumentNullException(nameof(q), "quantized formats need a backend quantizer");
}

/// <summary>
/// LLM.int8() inference linear (spec §2.8–2.9) over Bnb.Core's int8 primitives: row-wise int8 weight (CB, SCB);
/// per call the activations are quantized row-wise, multiplied in int32 and dequantized with the bias; with a
/// threshold, activation columns holding |x| ≥ threshold are excluded from the int8 product and added back in float
/// against the dequantized int8 weight columns.
/// </summary>
internal sealed class Int8Linear : IEncoderLinear
{
    private readonly Quantizer _q;
    private readonly sbyte[] _cb;
    private readonly float[] _scb;
    private readonly float[] _bias;
    private readonly float _threshold;

    public Int8Linear(Quantizer q, LinearWeights w, float threshold)
    {
        _q = q;
        InFeatures = w.InFeatures;
        OutFeatures = w.OutFeatures;
        var quantized = q.Int8VectorwiseQuant<float>(w.WeightOutIn(), OutFeatures, InFeatures);
        _cb = quantized.CA;
        _scb = quantized.RowStats;
        _bias = w.Bias;
        _threshold = threshold;
    }

    public int InFeatures { get; }

    public int OutFeatures { get; }

    public long WeightBytes => _cb.LongLength + (_scb.LongLength * sizeof(float));

    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y)
    {
        var a = _q.Int8VectorwiseQuant(x[..(rows * InFeatures)], rows, InFeatures, _threshold);
        int[] c = _q.Int8LinearMatmul(a.CA, _cb, rows, OutFeatures, InFeatures);
        float[] outF = _q.Int8MmDequant<float>(c, a.RowStats, _scb, _bias);
        outF.CopyTo(y);
        if (a.OutlierColumns is { Length: > 0 } cols)
        {
            // y += x[:, cols] · (CB[:, cols] · SCB / 127)ᵀ
            int n = cols.Length;
            var xs = new float[rows * n];
            var ws = new float[OutFeatures * n];
            for (int r = 0; r < rows; r++)
            {
                for (int j = 0; j < n; j++)
                {
                    xs[(r * n) + j] = x[(r * InFeatures) + (int)cols[j]];
                }
            }

            for (int o = 0; o < OutFeatures; o++)
            {
                float s = _scb[o] / 127f;
                for (int j = 0; j < n; j++)
                {
                    ws[(o * n) + j] = _cb[(o * InFeatures) + (int)cols[j]] * s;
                }
            }

            Gemm.Multiply(xs, n, false, ws, n, true, y, OutFeatures, rows, OutFeatures, n, accumulate: true);
        }
    }
}

/// <summary>NF4/FP4 linear (spec §2.10) over Bnb.Core's 4-bit quantization and the backend's 4-bit GEMM.</summary>
internal sealed class FourBitLinear : IEncoderLinear
{
    private readonly Quantizer _q;
    private readonly QuantizedTensor _weight;
    private readonly float[] _bias;

    public FourBitLinear(Quantizer q, LinearWeights w, QuantType type, bool doubleQuant)
    {
        _q = q;
        InFeatures = w.InFeatures;
        OutFeatures = w.OutFeatures;
        _weight = q.Quantize4Bit<float>(w.WeightOutIn(), [OutFeatures, InFeatures], type, 64, compressStatistics: doubleQuant);
        _bias = w.Bias;
    }

    public int InFeatures { get; }

    public int OutFeatures { get; }

    public long WeightBytes
    {
        get
        {
            var s = _weight.State;
            long stats = s.State2 is { } s2 ? s.QuantizedAbsmax!.LongLength + (s2.Absmax!.LongLength * sizeof(float)) + sizeof(float) : s.Absmax!.LongLength * sizeof(float);
            return _weight.Data.LongLength + stats;
        }
    }

    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y) =>
        _q.Gemm4Bit(x[..(rows * InFeatures)], rows, _weight.Data, _weight.State, _bias).CopyTo(y);
}
