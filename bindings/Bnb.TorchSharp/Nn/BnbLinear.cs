using Bnb.Memory;
using Bnb.Nn;
using Bnb.Quantization;
using Bnb.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Bnb.TorchSharp.Nn;

/// <summary>
/// A torch.nn.Module over a quantized Bnb layer (<see cref="Bnb.Nn.Linear4bit"/>, <see cref="Bnb.Nn.Linear8bitLt"/>,
/// any <see cref="IQuantizedLinear"/>): it maps [..., in_features] to [..., out_features] and its forward runs the
/// layer's Bnb kernels, reading the input tensor's memory and writing the output tensor's memory in place.
/// </summary>
/// <remarks>
/// <para>Autograd: the weight is frozen (no gradient, as bitsandbytes' <c>MatMul4Bit</c>/<c>MatMul8bitLt</c> with int8
/// weights). When the input requires a gradient and grad mode is on, the forward runs inside a TorchSharp autograd
/// function whose backward is the layer's <see cref="IQuantizedLinear.BackwardInput"/> (<c>grad · dequant(W)</c>), so
/// trainable modules before this one (and adapters beside it, as in QLoRA) get their gradients.</para>
/// <para>Weights live in host memory owned by the Bnb layer and run on a CPU backend; inputs must be CPU tensors of
/// float32, float16 or bfloat16 (the output has the input's dtype). A non-contiguous input is copied once
/// (<c>contiguous()</c>) before the kernel reads it.</para>
/// </remarks>
public class BnbLinear : nn.Module<Tensor, Tensor>
{
    /// <summary>Wraps <paramref name="layer"/>, which must run on a CPU backend.</summary>
    /// <param name="name">Module name (TorchSharp's <c>GetName()</c>).</param>
    /// <param name="layer">The quantized layer.</param>
    /// <param name="backend">The backend <paramref name="layer"/> runs on (checked to be a CPU backend).</param>
    public BnbLinear(string name, IQuantizedLinear layer, BnbBackend backend)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(backend);
        if (backend.DeviceKind != DeviceKind.Cpu)
        {
            throw new NotSupportedException($"{name}: backend '{backend.Name}' is not a CPU backend; Bnb.TorchSharp modules run on CPU backends only (their weights are host memory)");
        }

        Layer = layer;
        if (layer.Bias is not null)
        {
            BiasTensor = layer.Bias.ToTorch(); // the layer's own array, no copy
            register_buffer("bias", BiasTensor);
        }
    }

    /// <summary>The Bnb layer that computes the forward (save it with its ToCheckpointEntries).</summary>
    public IQuantizedLinear Layer { get; }

    public long InFeatures => Layer.InFeatures;

    public long OutFeatures => Layer.OutFeatures;

    /// <summary>The layer's float32 bias as a tensor over the layer's own array (no copy), or null.</summary>
    public Tensor? BiasTensor { get; }

    /// <summary>y = x · Wᵀ + b for x of shape [..., in_features] (float32, float16 or bfloat16, CPU); y has x's dtype.</summary>
    public override Tensor forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        string op = GetName();
        if (input.device_type != DeviceType.CPU)
        {
            throw new NotSupportedException($"{op}: input is on {input.device}; this module runs on a Bnb CPU backend (move the input to the CPU)");
        }

        if (input.dtype is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
        {
            throw new ArgumentException($"{op}: input dtype {input.dtype} is not float32, float16 or bfloat16", nameof(input));
        }

        if (input.dim() == 0 || input.shape[^1] != InFeatures)
        {
            throw new ArgumentException($"{op}: input of shape [{string.Join(", ", input.shape)}] does not end in in_features = {InFeatures}", nameof(input));
        }

        if (input.requires_grad && torch.is_grad_enabled())
        {
            return BnbLinearFunction.apply(input, this);
        }

        return Compute(input);
    }

    /// <summary>The forward on already checked input, outside autograd.</summary>
    internal Tensor Compute(Tensor input)
    {
        long[] outShape = [.. input.shape[..^1], OutFeatures];
        long rows = input.numel() / InFeatures;
        if (rows == 0)
        {
            return torch.empty(outShape, input.dtype);
        }

        // [rows, K] contiguous rows for the layer (a view when the input already is; else one copy).
        using Tensor flat = input.reshape(rows, InFeatures);
        using Tensor dense = flat.is_contiguous() ? flat.alias() : flat.contiguous();
        Tensor output = torch.empty([rows, OutFeatures], input.dtype);
        try
        {
            Layer.Forward(dense.AsBnbRef(), output.AsBnbRef()); // writes into the torch tensor's memory
        }
        catch
        {
            output.Dispose();
            throw;
        }

        if (outShape.Length == 2)
        {
            return output;
        }

        using (output)
        {
            return output.view(outShape);
        }
    }

    /// <summary>Input gradient through the frozen weight: grad_input = grad_output · dequant(W), in the input's dtype.</summary>
    internal Tensor BackwardInput(Tensor gradOutput, long[] inputShape, ScalarType inputDType)
    {
        long rows = gradOutput.numel() / OutFeatures;
        if (rows > int.MaxValue / Math.Max(1, InFeatures))
        {
            throw new NotSupportedException($"{GetName()}: backward over {rows} rows exceeds a single array");
        }

        using var scope = torch.NewDisposeScope();
        Tensor g = gradOutput.detach().to(ScalarType.Float32).reshape(rows, OutFeatures).contiguous();
        var gradInput = new float[rows * InFeatures];
        Layer.BackwardInput(TorchInterop.CpuSpan<float>(g), (int)rows, gradInput);
        return gradInput.ToTorch(rows, InFeatures).to(inputDType).reshape(inputShape).MoveToOuterDisposeScope();
    }

    /// <summary>The source layer's weight as a contiguous CPU float tensor (checked: 2-D, float dtype).</summary>
    private protected static Tensor SourceWeight(string op, Tensor weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.shape.Length != 2 || weight.shape[0] > int.MaxValue || weight.shape[1] > int.MaxValue)
        {
            throw new ArgumentException($"{op}: weight has shape [{string.Join(", ", weight.shape)}], expected [out_features, in_features]", nameof(weight));
        }

        if (weight.dtype is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
        {
            throw new ArgumentException($"{op}: weight dtype {weight.dtype} is not float32, float16 or bfloat16", nameof(weight));
        }

        using var scope = torch.NewDisposeScope(); // frees the intermediate tensors
        return weight.detach().to(CPU).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>The source layer's bias as a float32 array (a copy), or null.</summary>
    private protected static float[]? SourceBias(Tensor? bias, long outFeatures, string op)
    {
        if (bias is null)
        {
            return null;
        }

        if (bias.shape.Length != 1 || bias.shape[0] != outFeatures)
        {
            throw new ArgumentException($"{op}: bias has shape [{string.Join(", ", bias.shape)}], expected [{outFeatures}]", nameof(bias));
        }

        using var scope = torch.NewDisposeScope();
        Tensor b = bias.detach().to(CPU).to(ScalarType.Float32).contiguous();
        return TorchInterop.CpuSpan<float>(b).ToArray();
    }

    /// <summary>Runs <paramref name="quantize"/> on a zero-copy span of the weight in its own element type.</summary>
    private protected static TLayer WithWeight<TLayer>(Tensor weight, IWeightQuantizer<TLayer> quantize) => weight.dtype switch
    {
        ScalarType.Float32 => quantize.Run<float>(TorchInterop.CpuSpan<float>(weight)),
        ScalarType.Float16 => quantize.Run<Half>(TorchInterop.CpuSpan<Half>(weight)),
        _ => quantize.Run<Bnb.Memory.BFloat16>(TorchInterop.CpuSpan<Bnb.Memory.BFloat16>(weight)),
    };

    /// <summary>A quantization generic over the weight's element type (spans cannot be captured by lambdas).</summary>
    private protected interface IWeightQuantizer<TLayer>
    {
        TLayer Run<T>(ReadOnlySpan<T> weight)
            where T : unmanaged;
    }
}
