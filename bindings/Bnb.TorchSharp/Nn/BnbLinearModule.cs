using Bnb.Quantization;
using Bnb.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Bnb.TorchSharp.Nn;

/// <summary>
/// What <see cref="Linear4bit"/> and <see cref="Linear8bitLt"/> share: a torch.nn.Module mapping [..., in_features]
/// to [..., out_features] whose matmul runs on a Bnb CPU backend, argument checks with clear messages, and the
/// flatten / allocate / reshape around the kernel call.
/// </summary>
/// <remarks>
/// Inference only: the kernels are not recorded by TorchSharp's autograd, so a forward on an input that requires a
/// gradient while grad mode is on throws (wrap the call in <c>torch.no_grad()</c>, or keep the trainable part — e.g.
/// LoRA adapters — in TorchSharp modules next to this one and detach its input). Weights live in host memory owned by
/// the module; inputs must be CPU tensors.
/// </remarks>
public abstract class BnbLinearModule : nn.Module<Tensor, Tensor>
{
    private protected BnbLinearModule(string name, Quantizer quantizer, long inFeatures, long outFeatures, Tensor? bias)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        if (quantizer.Context.Backend.DeviceKind != DeviceKind.Cpu)
        {
            throw new NotSupportedException(
                $"{name}: backend '{quantizer.Context.Backend.Name}' is not a CPU backend; Bnb.TorchSharp modules keep their weights in host memory and run on CPU backends only");
        }

        Quantizer = quantizer;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        if (bias is not null)
        {
            if (bias.shape.Length != 1 || bias.shape[0] != outFeatures)
            {
                throw new ArgumentException($"{name}: bias has shape [{string.Join(", ", bias.shape)}], expected [{outFeatures}]", nameof(bias));
            }

            Bias = bias.detach().to(CPU).contiguous().clone();
            register_buffer("bias", Bias);
        }
    }

    /// <summary>The quantizer (backend context) whose kernels run the forward.</summary>
    public Quantizer Quantizer { get; }

    public long InFeatures { get; }

    public long OutFeatures { get; }

    /// <summary>The bias (a CPU copy of the source layer's bias, same dtype), or null.</summary>
    public Tensor? Bias { get; }

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
            throw new InvalidOperationException(
                $"{op}: the input requires a gradient, but this module's Bnb kernels are not part of TorchSharp's autograd graph (inference only); run it under torch.no_grad() or detach the input");
        }

        long[] outShape = [.. input.shape[..^1], OutFeatures];
        long m = input.numel() / InFeatures;
        if (m == 0)
        {
            return torch.empty(outShape, input.dtype);
        }

        // [M, K] rows for the kernel. A view when possible; the kernels read a row stride but need unit column stride.
        using Tensor flat = input.reshape(m, InFeatures);
        using Tensor rows = flat.stride(1) == 1 && flat.stride(0) >= InFeatures ? flat.alias() : flat.contiguous();
        Tensor output = torch.empty([m, OutFeatures], input.dtype);
        try
        {
            Run(rows, output);
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

    /// <summary>Computes output[M, N] (already allocated, input's dtype) from rows[M, K] with the Bnb kernels.</summary>
    private protected abstract void Run(Tensor rows, Tensor output);

    /// <summary>Checks the source layer of a conversion: 2-D float weight on the CPU.</summary>
    private protected static Tensor SourceWeight(string op, Tensor weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.shape.Length != 2)
        {
            throw new ArgumentException($"{op}: weight has shape [{string.Join(", ", weight.shape)}], expected [out_features, in_features]", nameof(weight));
        }

        if (weight.dtype is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
        {
            throw new ArgumentException($"{op}: weight dtype {weight.dtype} is not float32, float16 or bfloat16", nameof(weight));
        }

        return weight.detach().to(CPU).contiguous();
    }
}
