using Bnb.Memory;
using Bnb.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Bnb.TorchSharp.Nn;

/// <summary>
/// A TorchSharp module holding an LLM.int8() linear layer (bitsandbytes' <c>Linear8bitLt</c> with
/// <c>has_fp16_weights=False</c>): row-wise int8 weights (CB) with their scales (SCB); forward quantizes the input
/// row-wise, multiplies exactly in int32 and dequantizes with the bias fused, all on Bnb kernels. With a positive
/// <see cref="Threshold"/>, input columns holding any |x| ≥ threshold are computed in the input's dtype against the
/// dequantized int8 weight columns and added (bitsandbytes' mixed-precision decomposition).
/// </summary>
/// <remarks>
/// As in bitsandbytes, the weight and the activations are rounded to float16 before int8 quantization.
/// See <see cref="BnbLinearModule"/> for device and autograd rules.
/// </remarks>
public sealed class Linear8bitLt : BnbLinearModule
{
    private readonly sbyte[] _cb;
    private readonly float[] _scb;

    private Linear8bitLt(Quantizer quantizer, sbyte[] cb, float[] scb, long outFeatures, long inFeatures, Tensor? bias, float threshold)
        : base("Linear8bitLt", quantizer, inFeatures, outFeatures, bias)
    {
        _cb = cb;
        _scb = scb;
        Threshold = threshold;
        Weight = _cb.ToTorch(outFeatures, inFeatures);
        Scb = _scb.ToTorch();
        register_buffer("weight", Weight);
        register_buffer("SCB", Scb);
    }

    /// <summary>Outlier threshold (0 = no decomposition).</summary>
    public float Threshold { get; }

    /// <summary>CB: int8 [out_features, in_features] over the module's own array (no copy).</summary>
    public Tensor Weight { get; }

    /// <summary>SCB: float32 [out_features] row scales (absmax of each weight row).</summary>
    public Tensor Scb { get; }

    /// <summary>Quantizes an [out, in] weight row-wise (after rounding it to float16, as bitsandbytes' Int8Params).</summary>
    /// <param name="quantizer">Context of a CPU backend.</param>
    /// <param name="weight">[out_features, in_features] float32/float16/bfloat16.</param>
    /// <param name="bias">[out_features] or null.</param>
    /// <param name="threshold">Outlier threshold (bitsandbytes' default 0; 6.0 is the usual LLM.int8() value).</param>
    public static Linear8bitLt FromWeights(Quantizer quantizer, Tensor weight, Tensor? bias, float threshold = 0f)
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        if (!(threshold >= 0f) || float.IsInfinity(threshold))
        {
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "Linear8bitLt: threshold must be finite and >= 0");
        }

        using Tensor w = SourceWeight("Linear8bitLt", weight);
        using Tensor w16 = w.to(ScalarType.Float16);
        long n = w.shape[0], k = w.shape[1];
        var cb = new sbyte[checked(n * k)];
        var scb = new float[n];
        quantizer.Int8VectorwiseQuant(w16.AsBnbRef(), TensorRef.FromSpan<sbyte>(cb, n, k), TensorRef.FromSpan<float>(scb));
        return new Linear8bitLt(quantizer, cb, scb, n, k, bias, threshold);
    }

    /// <summary>Quantizes <paramref name="linear"/>'s weight and copies its bias; see <see cref="FromWeights"/>.</summary>
    public static Linear8bitLt FromLinear(Quantizer quantizer, global::TorchSharp.Modules.Linear linear, float threshold = 0f)
    {
        ArgumentNullException.ThrowIfNull(linear);
        return FromWeights(quantizer, linear.weight!, linear.bias, threshold);
    }

    /// <summary>The dequantized weight CB · SCB / 127 [out_features, in_features] as float32.</summary>
    public Tensor DequantizeWeight() => Quantizer.Int8VectorwiseDequant(_cb, _scb).ToTorch(OutFeatures, InFeatures);

    private protected override void Run(Tensor rows, Tensor output)
    {
        long m = rows.shape[0], k = InFeatures, n = OutFeatures;
        using Tensor a16 = rows.to(ScalarType.Float16);
        using Tensor ca = torch.empty([m, k], ScalarType.Int8);
        using Tensor rowStats = torch.empty([m], ScalarType.Float32);
        using Tensor outlierCols = torch.empty([k], ScalarType.Int64);
        long outliers = Quantizer.Int8VectorwiseQuant(a16.AsBnbRef(), ca.AsBnbRef(), rowStats.AsBnbRef(), Threshold > 0 ? outlierCols.AsBnbRef() : TensorRef.None, Threshold);

        using Tensor c = torch.empty([m, n], ScalarType.Int32);
        Quantizer.Int8LinearMatmul(ca.AsBnbRef(), TensorRef.FromReadOnlySpan<sbyte>(_cb, n, k), c.AsBnbRef());
        Quantizer.Int8MmDequant(c.AsBnbRef(), rowStats.AsBnbRef(), TensorRef.FromReadOnlySpan<float>(_scb), output.AsBnbRef(), Bias is null ? TensorRef.None : Bias.AsBnbRef());
        if (outliers == 0)
        {
            return;
        }

        // out += x[:, cols] · dequant(CB[:, cols])ᵀ in the input's dtype (dequant = CB · SCB / 127, Bnb kernel).
        using Tensor cols = outlierCols.narrow(0, 0, outliers);
        using Tensor subA = rows.index_select(1, cols);
        using Tensor subCb = Weight.index_select(1, cols);
        using Tensor subB = torch.empty([n, outliers], ScalarType.Float32);
        Quantizer.Int8VectorwiseDequant(subCb.AsBnbRef(), TensorRef.FromReadOnlySpan<float>(_scb), subB.AsBnbRef());
        using Tensor subBt = subB.to(rows.dtype).t();
        output.addmm_(subA, subBt);
    }
}
