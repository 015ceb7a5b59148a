using Bnb.Quantization;
using Bnb.Serialization;
using static TorchSharp.torch;

namespace Bnb.TorchSharp.Nn;

/// <summary>
/// <see cref="Bnb.Nn.Linear8bitLt"/> (LLM.int8(): row-wise int8 weights CB with scales SCB, outlier columns above
/// the threshold in 16-bit) as a TorchSharp module. CB and SCB are registered as buffers <c>weight</c> and
/// <c>SCB</c> over the layer's own arrays (no copy), as bitsandbytes' state dict names them. See
/// <see cref="BnbLinear"/> for device, dtype and autograd rules.
/// </summary>
public sealed class Linear8bitLt : BnbLinear
{
    /// <summary>Wraps an existing layer (e.g. <see cref="Bnb.Nn.Linear8bitLt.FromCheckpoint"/>).</summary>
    public Linear8bitLt(Bnb.Nn.Linear8bitLt layer, Quantizer quantizer)
        : base("Linear8bitLt", layer, (quantizer ?? throw new ArgumentNullException(nameof(quantizer))).Context.Backend)
    {
        Layer8 = layer;
        Weight = layer.Weight.CB.ToTorch(layer.OutFeatures, layer.InFeatures);
        Scb = layer.Weight.SCB.ToTorch();
        register_buffer("weight", Weight);
        register_buffer("SCB", Scb);
    }

    /// <summary>The wrapped Bnb layer.</summary>
    public Bnb.Nn.Linear8bitLt Layer8 { get; }

    /// <summary>CB: int8 [out_features, in_features] over the layer's array.</summary>
    public Tensor Weight { get; }

    /// <summary>SCB: float32 [out_features], the absmax of each weight row.</summary>
    public Tensor Scb { get; }

    /// <summary>Outlier threshold (0 = pure int8).</summary>
    public float Threshold => Layer8.Threshold;

    /// <summary>
    /// Quantizes an [out, in] weight row-wise from its float16 values (bitsandbytes' <c>Int8Params</c>) and copies the bias.
    /// </summary>
    /// <param name="quantizer">Context of a CPU backend.</param>
    /// <param name="weight">[out_features, in_features] float32/float16/bfloat16.</param>
    /// <param name="bias">[out_features] or null.</param>
    /// <param name="threshold">Outlier threshold; 6.0 (Transformers' and Bnb.Nn's default) or 0 for pure int8.</param>
    public static Linear8bitLt FromWeights(Quantizer quantizer, Tensor weight, Tensor? bias, float threshold = 6f)
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        if (!(threshold >= 0f) || float.IsInfinity(threshold))
        {
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "Linear8bitLt: threshold must be finite and >= 0");
        }

        using Tensor w = SourceWeight("Linear8bitLt", weight);
        Int8Weight cb = WithWeight(w, new Quantize8(quantizer, (int)w.shape[0], (int)w.shape[1]));
        return new Linear8bitLt(new Bnb.Nn.Linear8bitLt(quantizer, cb, SourceBias(bias, w.shape[0], "Linear8bitLt"), threshold), quantizer);
    }

    /// <summary>Quantizes <paramref name="linear"/>'s weight and copies its bias; see <see cref="FromWeights"/>.</summary>
    public static Linear8bitLt FromLinear(Quantizer quantizer, global::TorchSharp.Modules.Linear linear, float threshold = 6f)
    {
        ArgumentNullException.ThrowIfNull(linear);
        return FromWeights(quantizer, linear.weight!, linear.bias, threshold);
    }

    /// <summary>CB · SCB / 127 [out_features, in_features] as a float32 tensor (over a new array).</summary>
    public Tensor DequantizeWeight() => Layer.DequantizeWeight().ToTorch(OutFeatures, InFeatures);

    private sealed record Quantize8(Quantizer Quantizer, int Out, int In) : IWeightQuantizer<Int8Weight>
    {
        public Int8Weight Run<T>(ReadOnlySpan<T> weight)
            where T : unmanaged => Bnb.Nn.Linear8bitLt.QuantizeWeight(Quantizer, weight, Out, In);
    }
}
