using Bnb.Dense;

namespace Bnb.Models.Encoder;

/// <summary>
/// A linear layer of the encoder, <c>y[rows × out] = x[rows × in] · Wᵀ + bias</c>, in whatever storage format its
/// implementation uses. Called from one thread at a time.
/// </summary>
public interface IEncoderLinear
{
    int InFeatures { get; }

    int OutFeatures { get; }

    /// <summary>Bytes of the stored weight including its quantization statistics (the bias, kept in fp32, is not counted).</summary>
    long WeightBytes { get; }

    void Forward(ReadOnlySpan<float> x, int rows, Span<float> y);
}

/// <summary>The float32 reference: the exported [in × out] weight through <see cref="Gemm"/>.</summary>
public sealed class DenseLinear(LinearWeights weights) : IEncoderLinear
{
    public int InFeatures => weights.InFeatures;

    public int OutFeatures => weights.OutFeatures;

    public long WeightBytes => weights.Weight.LongLength * sizeof(float);

    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y)
    {
        Gemm.MatMul(x, weights.Weight, y, rows, OutFeatures, InFeatures);
        RowOps.AddBias(y[..(rows * OutFeatures)], weights.Bias);
    }
}
