using Bnb.Memory;
using Bnb.Quantization;
using static TorchSharp.torch;

namespace Bnb.TorchSharp.Nn;

/// <summary>
/// <see cref="Bnb.Nn.Linear4bit"/> (NF4/FP4 weights, bitsandbytes' <c>Linear4bit</c>) as a TorchSharp module: its
/// forward runs Bnb's 4-bit GEMV/GEMM. See <see cref="BnbLinear"/> for device, dtype and autograd rules.
/// </summary>
public sealed class Linear4bit : BnbLinear
{
    /// <summary>Wraps an existing layer (e.g. <see cref="Bnb.Nn.Linear4bit.FromCheckpoint"/>).</summary>
    public Linear4bit(Bnb.Nn.Linear4bit layer, Quantizer quantizer)
        : base("Linear4bit", layer, (quantizer ?? throw new ArgumentNullException(nameof(quantizer))).Context.Backend)
    {
        Layer4 = layer;
    }

    /// <summary>The wrapped Bnb layer (packed weight, quant state, compute dtype).</summary>
    public Bnb.Nn.Linear4bit Layer4 { get; }

    /// <summary>
    /// Quantizes a [out, in] weight and optional bias as bitsandbytes' <c>Linear4bit(compress_statistics, quant_type)</c>
    /// does when moved to a device. The weight is read in place when it is a contiguous CPU tensor.
    /// </summary>
    /// <param name="quantizer">Context of a CPU backend.</param>
    /// <param name="weight">[out_features, in_features] float32/float16/bfloat16.</param>
    /// <param name="bias">[out_features] or null (copied as float32).</param>
    /// <param name="quantType">NF4 (default) or FP4.</param>
    /// <param name="blocksize">Power of two in [32, 4096]; default 64.</param>
    /// <param name="compressStatistics">Double-quantize the absmax (bitsandbytes' default: true).</param>
    /// <param name="computeDType">Compute dtype; null = the weight's dtype (see <see cref="Bnb.Nn.Linear4bit.ComputeDType"/>).</param>
    public static Linear4bit FromWeights(Quantizer quantizer, Tensor weight, Tensor? bias, QuantType quantType = QuantType.Nf4, int blocksize = 64,
        bool compressStatistics = true, DType? computeDType = null)
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        using Tensor w = SourceWeight("Linear4bit", weight);
        var q = new Quantize4(quantizer, (int)w.shape[0], (int)w.shape[1], SourceBias(bias, w.shape[0], "Linear4bit"), quantType, blocksize, compressStatistics, computeDType);
        return new Linear4bit(WithWeight(w, q), quantizer);
    }

    /// <summary>Quantizes <paramref name="linear"/>'s weight and copies its bias; see <see cref="FromWeights"/>.</summary>
    public static Linear4bit FromLinear(Quantizer quantizer, global::TorchSharp.Modules.Linear linear, QuantType quantType = QuantType.Nf4, int blocksize = 64,
        bool compressStatistics = true, DType? computeDType = null)
    {
        ArgumentNullException.ThrowIfNull(linear);
        return FromWeights(quantizer, linear.weight!, linear.bias, quantType, blocksize, compressStatistics, computeDType);
    }

    /// <summary>The dequantized weight [out_features, in_features] as a float32 tensor (over a new array).</summary>
    public Tensor DequantizeWeight() => Layer.DequantizeWeight().ToTorch(OutFeatures, InFeatures);

    private sealed record Quantize4(Quantizer Quantizer, int Out, int In, float[]? Bias, QuantType QuantType, int Blocksize, bool DoubleQuant, DType? ComputeDType)
        : IWeightQuantizer<Bnb.Nn.Linear4bit>
    {
        public Bnb.Nn.Linear4bit Run<T>(ReadOnlySpan<T> weight)
            where T : unmanaged =>
            Bnb.Nn.Linear4bit.Quantize(Quantizer, weight, Out, In, Bias, QuantType, Blocksize, DoubleQuant, ComputeDType);
    }
}
