using Bnb.Memory;

namespace Bnb.Nn;

/// <summary>
/// A linear layer <c>y = x · Wᵀ + b</c> whose weight W [OutFeatures, InFeatures] is stored quantized and frozen
/// (<see cref="Linear4bit"/>, <see cref="Linear8bitLt"/>). Activations are row-major [rows, InFeatures] of float,
/// Half or BFloat16; outputs have the input's element type, as in bitsandbytes.
/// </summary>
public interface IQuantizedLinear
{
    int InFeatures { get; }

    int OutFeatures { get; }

    /// <summary>Bias [OutFeatures] in float32, or null.</summary>
    float[]? Bias { get; }

    /// <summary>Bytes the quantized weight and its statistics occupy (what a checkpoint stores, bias excluded).</summary>
    long WeightBytes { get; }

    /// <summary><c>output[rows, Out] = input[rows, In] · Wᵀ + b</c>.</summary>
    void Forward<T>(ReadOnlySpan<T> input, int rows, Span<T> output)
        where T : unmanaged;

    /// <summary>
    /// Forward over tensors: <paramref name="input"/> [..., In] and <paramref name="output"/> [..., Out], both
    /// contiguous host memory of the same float dtype.
    /// </summary>
    void Forward(TensorRef input, TensorRef output);

    /// <summary>
    /// Gradient of the loss with respect to the input through the frozen weight:
    /// <c>gradInput[rows, In] = gradOutput[rows, Out] · dequant(W)</c> (the weight gets no gradient).
    /// </summary>
    void BackwardInput(ReadOnlySpan<float> gradOutput, int rows, Span<float> gradInput);

    /// <summary>The dequantized weight [Out, In] in float32, as the backward pass uses it.</summary>
    float[] DequantizeWeight();
}

/// <summary>Forward helpers shared by the quantized layers.</summary>
public static class QuantizedLinearExtensions
{
    /// <summary>Allocating float32 forward: returns [rows, Out].</summary>
    public static float[] Forward(this IQuantizedLinear layer, ReadOnlySpan<float> input, int rows)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var output = new float[checked(rows * layer.OutFeatures)];
        layer.Forward(input, rows, output.AsSpan());
        return output;
    }

    /// <summary>Dispatches a tensor forward to the typed overload by dtype.</summary>
    internal static void ForwardTensor(IQuantizedLinear layer, TensorRef input, TensorRef output)
    {
        int rows = FloatData.RowsOf(input, layer.InFeatures, nameof(input));
        int outRows = FloatData.RowsOf(output, layer.OutFeatures, nameof(output));
        if (outRows != rows)
        {
            throw new ArgumentException($"output has {outRows} rows but input has {rows}", nameof(output));
        }

        if (output.DType != input.DType)
        {
            throw new ArgumentException($"output is {output.DType} but input is {input.DType}; they must match", nameof(output));
        }

        if (output.IsReadOnly)
        {
            throw new ArgumentException("output is a read-only view", nameof(output));
        }

        switch (input.DType)
        {
            case DType.F32: layer.Forward<float>(FloatData.Elements<float>(input), rows, FloatData.Elements<float>(output)); break;
            case DType.F16: layer.Forward<Half>(FloatData.Elements<Half>(input), rows, FloatData.Elements<Half>(output)); break;
            case DType.BF16: layer.Forward<BFloat16>(FloatData.Elements<BFloat16>(input), rows, FloatData.Elements<BFloat16>(output)); break;
            default: throw new ArgumentException($"input dtype {input.DType} is not an activation dtype (F32, F16, BF16)", nameof(input));
        }
    }
}
