using Bnb.Memory;
using Bnb.Quantization;
using static TorchSharp.torch;

namespace Bnb.TorchSharp.Nn;

/// <summary>
/// A TorchSharp module holding an NF4/FP4-quantized linear layer (bitsandbytes' <c>Linear4bit</c>); its forward runs
/// Bnb's <c>gemv_4bit</c> (up to 16 rows) or <c>gemm_4bit</c> with float32 accumulation, writing straight into the
/// torch output tensor.
/// </summary>
/// <remarks>
/// The packed weight is a byte array owned by the module and exposed to torch without a copy as the <c>weight</c>
/// buffer (uint8, [(N·K + 1) / 2]); the absmax (plain or double-quantized) is in <see cref="State"/>.
/// See <see cref="BnbLinearModule"/> for device and autograd rules.
/// </remarks>
public sealed class Linear4bit : BnbLinearModule
{
    /// <summary>Rows up to which forward calls gemv_4bit (tuned for small M) instead of gemm_4bit.</summary>
    public const int GemvMaxRows = 16;

    private readonly byte[] _packed;

    private Linear4bit(Quantizer quantizer, QuantizedTensor weight, Tensor? bias)
        : base("Linear4bit", quantizer, weight.State.Shape[1], weight.State.Shape[0], bias)
    {
        _packed = weight.Data;
        State = weight.State;
        Weight = _packed.ToTorch();
        register_buffer("weight", Weight);
    }

    /// <summary>Quantization state of the weight (shape [out_features, in_features], absmax, code, blocksize, type).</summary>
    public QuantState State { get; }

    /// <summary>The packed weight as a uint8 tensor over the module's own array (no copy).</summary>
    public Tensor Weight { get; }

    /// <summary>The packed bytes (bitsandbytes layout: element 2i in the high nibble).</summary>
    public ReadOnlySpan<byte> PackedWeight => _packed;

    /// <summary>
    /// Quantizes a TorchSharp <c>Linear</c> (or any [out, in] weight and optional bias) as bitsandbytes'
    /// <c>Linear4bit(compress_statistics, quant_type)</c> does when moved to a device.
    /// </summary>
    /// <param name="quantizer">Context of a CPU backend.</param>
    /// <param name="weight">[out_features, in_features] float32/float16/bfloat16 (read in place when contiguous on CPU).</param>
    /// <param name="bias">[out_features] or null.</param>
    /// <param name="quantType">NF4 (default) or FP4.</param>
    /// <param name="blocksize">Power of two in [32, 4096]; default 64.</param>
    /// <param name="compressStatistics">Double-quantize the absmax (bitsandbytes' default: true).</param>
    public static Linear4bit FromWeights(Quantizer quantizer, Tensor weight, Tensor? bias, QuantType quantType = QuantType.Nf4, int blocksize = 64, bool compressStatistics = true)
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        using Tensor w = SourceWeight("Linear4bit", weight);
        long[] shape = w.shape;
        QuantizedTensor q = w.dtype switch
        {
            ScalarType.Float32 => quantizer.Quantize4Bit<float>(TorchInterop.CpuSpan<float>(w), shape, quantType, blocksize, compressStatistics),
            ScalarType.Float16 => quantizer.Quantize4Bit<Half>(TorchInterop.CpuSpan<Half>(w), shape, quantType, blocksize, compressStatistics),
            _ => quantizer.Quantize4Bit<BFloat16>(TorchInterop.CpuSpan<BFloat16>(w), shape, quantType, blocksize, compressStatistics),
        };
        return new Linear4bit(quantizer, q, bias);
    }

    /// <summary>Quantizes <paramref name="linear"/>'s weight and copies its bias; see <see cref="FromWeights"/>.</summary>
    public static Linear4bit FromLinear(Quantizer quantizer, global::TorchSharp.Modules.Linear linear, QuantType quantType = QuantType.Nf4, int blocksize = 64, bool compressStatistics = true)
    {
        ArgumentNullException.ThrowIfNull(linear);
        return FromWeights(quantizer, linear.weight!, linear.bias, quantType, blocksize, compressStatistics);
    }

    /// <summary>The dequantized weight [out_features, in_features] as float32 (for checks and fallbacks).</summary>
    public Tensor DequantizeWeight()
    {
        var output = new float[checked(OutFeatures * InFeatures)];
        Quantizer.Dequantize4Bit<float>(_packed, State, output);
        return output.ToTorch(OutFeatures, InFeatures);
    }

    private protected override void Run(Tensor rows, Tensor output)
    {
        TensorRef bias = Bias is null ? TensorRef.None : Bias.AsBnbRef();
        TensorRef weight = TensorRef.FromReadOnlySpan<byte>(_packed);
        if (rows.shape[0] <= GemvMaxRows)
        {
            Quantizer.Gemv4Bit(rows.AsBnbRef(), weight, State, output.AsBnbRef(), bias);
        }
        else
        {
            Quantizer.Gemm4Bit(rows.AsBnbRef(), weight, State, output.AsBnbRef(), bias);
        }
    }
}
