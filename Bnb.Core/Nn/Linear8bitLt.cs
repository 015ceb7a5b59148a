using Bnb.Dense;
using Bnb.Memory;
using Bnb.Quantization;
using Bnb.Serialization;

namespace Bnb.Nn;

/// <summary>
/// bitsandbytes' <c>Linear8bitLt</c> for inference (<c>has_fp16_weights=False</c>, LLM.int8()): W [Out, In] stored as
/// row-wise int8 <c>CB</c> with per-row absmax <c>SCB</c>.
/// </summary>
/// <remarks>
/// Forward (spec §2.9), for x [rows, In]:
/// <code>
///   x16            = fp16(x)                                   bitsandbytes quantizes activations from fp16
///   CA, SCA, cols  = int8_vectorwise_quant(x16, threshold)     cols: columns holding any |x| ≥ threshold
///   y              = int8_mm_dequant(CA · CBᵀ (int32), SCA, SCB) + b
///   y             += x[:, cols] · T(CB[:, cols] · SCB / 127)ᵀ   outlier columns in the input's precision T
/// </code>
/// threshold 0 disables the outlier path (pure int8). The outlier product and the dequantized int8 product are
/// summed in float32 and rounded once to the output type.
/// </remarks>
public sealed class Linear8bitLt : IQuantizedLinear
{
    private readonly Quantizer _quantizer;

    /// <summary>A layer over row-wise int8 weights (from <see cref="Quantize{T}"/> or a checkpoint).</summary>
    /// <param name="quantizer">Backend the layer runs on.</param>
    /// <param name="weight">CB [Out, In] and SCB [Out].</param>
    /// <param name="bias">Optional bias [Out].</param>
    /// <param name="threshold">Outlier threshold (Transformers' default 6.0); 0 = pure int8.</param>
    public Linear8bitLt(Quantizer quantizer, Int8Weight weight, float[]? bias = null, float threshold = 6f)
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.OutFeatures < 0 || weight.InFeatures < 0 || weight.CB.Length != (long)weight.OutFeatures * weight.InFeatures || weight.SCB.Length != weight.OutFeatures)
        {
            throw new ArgumentException($"CB has {weight.CB.Length} and SCB {weight.SCB.Length} values for [{weight.OutFeatures}, {weight.InFeatures}]", nameof(weight));
        }

        if (bias is not null && bias.Length != weight.OutFeatures)
        {
            throw new ArgumentException($"bias has {bias.Length} values; the layer has {weight.OutFeatures} outputs", nameof(bias));
        }

        if (!(threshold >= 0) || float.IsInfinity(threshold))
        {
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "the outlier threshold must be finite and ≥ 0");
        }

        _quantizer = quantizer;
        Weight = weight;
        Bias = bias;
        Threshold = threshold;
    }

    public int InFeatures => Weight.InFeatures;

    public int OutFeatures => Weight.OutFeatures;

    public float[]? Bias { get; }

    /// <summary>CB and SCB.</summary>
    public Int8Weight Weight { get; }

    public float Threshold { get; }

    public long WeightBytes => Weight.CB.Length + (4L * Weight.SCB.Length);

    /// <summary>Number of outlier columns the last forward found (bitsandbytes keeps them in <c>state.idx</c>).</summary>
    public int LastOutlierCount { get; private set; }

    /// <summary>Quantizes W [outFeatures, inFeatures] row-wise as bitsandbytes' <c>Int8Params</c> does (from fp16).</summary>
    public static Linear8bitLt Quantize<T>(Quantizer quantizer, ReadOnlySpan<T> weight, int outFeatures, int inFeatures, float[]? bias = null, float threshold = 6f)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        return new Linear8bitLt(quantizer, QuantizeWeight(quantizer, weight, outFeatures, inFeatures), bias, threshold);
    }

    /// <summary>Row-wise int8 quantization of W from its fp16 values: <c>CB, SCB = int8_vectorwise_quant(W.half())</c>.</summary>
    public static Int8Weight QuantizeWeight<T>(Quantizer quantizer, ReadOnlySpan<T> weight, int outFeatures, int inFeatures)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        FloatData.RequireFloat<T>(nameof(weight));
        FloatData.CheckMatrix(weight.Length, outFeatures, inFeatures, nameof(weight));
        var half = new Half[weight.Length];
        FloatData.Convert(weight, half.AsSpan());
        Int8Quantized q = quantizer.Int8VectorwiseQuant<Half>(half, outFeatures, inFeatures);
        return new Int8Weight(q.CA, q.RowStats, outFeatures, inFeatures);
    }

    /// <summary>Loads the layer at <paramref name="prefix"/> of a bitsandbytes checkpoint (weight, SCB, weight_format, bias).</summary>
    public static Linear8bitLt FromCheckpoint(Quantizer quantizer, SafetensorsFile file, string prefix, float threshold = 6f)
    {
        Int8Weight w = BnbCheckpoint.ReadInt8(file, prefix);
        return new Linear8bitLt(quantizer, w, BnbCheckpoint.ReadBias(file, prefix, w.OutFeatures), threshold);
    }

    /// <summary>The checkpoint entries of this layer under <paramref name="prefix"/>: weight, (bias in <paramref name="biasDType"/>,) SCB, weight_format.</summary>
    public IReadOnlyList<SafetensorsEntry> ToCheckpointEntries(string prefix, SafetensorsDType biasDType = SafetensorsDType.F32) =>
        BnbCheckpoint.WithBias(BnbCheckpoint.EntriesInt8(prefix, Weight), prefix, Bias, biasDType);

    public void Forward<T>(ReadOnlySpan<T> input, int rows, Span<T> output)
        where T : unmanaged
    {
        FloatData.RequireFloat<T>(nameof(input));
        FloatData.CheckMatrix(input.Length, rows, InFeatures, nameof(input));
        FloatData.CheckMatrix(output.Length, rows, OutFeatures, nameof(output));
        if (rows == 0)
        {
            return;
        }

        int k = InFeatures, n = OutFeatures;
        var x16 = new Half[input.Length];
        FloatData.Convert(input, x16.AsSpan());
        var ca = new sbyte[input.Length];
        var sca = new float[rows];
        var cols = new long[k];
        long outliers = _quantizer.Int8VectorwiseQuant(
            TensorRef.FromReadOnlySpan<Half>(x16, rows, k), TensorRef.FromSpan<sbyte>(ca, rows, k), TensorRef.FromSpan<float>(sca), TensorRef.FromSpan<long>(cols), Threshold);
        LastOutlierCount = (int)outliers;

        var c = new int[rows * n];
        _quantizer.Int8LinearMatmul(TensorRef.FromReadOnlySpan<sbyte>(ca, rows, k), TensorRef.FromReadOnlySpan<sbyte>(Weight.CB, n, k), TensorRef.FromSpan<int>(c, rows, n));
        var y = new float[rows * n];
        float[]? bias = null;
        if (Bias is not null)
        {
            // bitsandbytes casts the bias to the input dtype first.
            bias = (float[])Bias.Clone();
            FloatData.RoundTo<T>(bias);
        }

        _quantizer.Int8MmDequant(TensorRef.FromReadOnlySpan<int>(c, rows, n), TensorRef.FromReadOnlySpan<float>(sca), TensorRef.FromReadOnlySpan<float>(Weight.SCB),
            TensorRef.FromSpan<float>(y, rows, n), bias is null ? default : TensorRef.FromReadOnlySpan<float>(bias));

        if (outliers > 0)
        {
            AddOutlierColumns(input, rows, cols.AsSpan(0, (int)outliers), y);
        }

        FloatData.Convert<float, T>(y, output);
    }

    public void Forward(TensorRef input, TensorRef output) => QuantizedLinearExtensions.ForwardTensor(this, input, output);

    /// <summary><c>gradInput = gradOutput · (CB · SCB / 127)</c> (bitsandbytes' MatMul8bitLt backward for A).</summary>
    public void BackwardInput(ReadOnlySpan<float> gradOutput, int rows, Span<float> gradInput)
    {
        FloatData.CheckMatrix(gradOutput.Length, rows, OutFeatures, nameof(gradOutput));
        FloatData.CheckMatrix(gradInput.Length, rows, InFeatures, nameof(gradInput));
        Gemm.MatMul(gradOutput, DequantizeWeight(), gradInput, rows, InFeatures, OutFeatures);
    }

    /// <summary><c>CB · SCB[:, None] · (1/127)</c> in float32 (int8_vectorwise_dequant).</summary>
    public float[] DequantizeWeight() => _quantizer.Int8VectorwiseDequant(Weight.CB, Weight.SCB);

    /// <summary>y += x[:, cols] · T(W_deq[:, cols])ᵀ, the 16-bit part of LLM.int8().</summary>
    private void AddOutlierColumns<T>(ReadOnlySpan<T> input, int rows, ReadOnlySpan<long> cols, float[] y)
        where T : unmanaged
    {
        int k = InFeatures, n = OutFeatures, m = cols.Length;
        var subA = new float[rows * m];
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < m; j++)
            {
                subA[(r * m) + j] = FloatData.ToFloat(input[(r * k) + (int)cols[j]]);
            }
        }

        // subB[n, j] = dequantized weight of column cols[j], rounded to the input's precision (bitsandbytes: .to(A.dtype)).
        const float InverseOf127 = 7.874015718698502e-3f;
        var subB = new float[n * m];
        for (int o = 0; o < n; o++)
        {
            for (int j = 0; j < m; j++)
            {
                subB[(o * m) + j] = Weight.CB[((long)o * k) + cols[j]] * Weight.SCB[o] * InverseOf127;
            }
        }

        FloatData.RoundTo<T>(subB);
        Gemm.Multiply(subA, m, false, subB, m, true, y, n, rows, n, m, accumulate: true);
    }
}
