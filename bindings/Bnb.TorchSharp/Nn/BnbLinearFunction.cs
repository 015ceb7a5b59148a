using static TorchSharp.torch;

namespace Bnb.TorchSharp.Nn;

/// <summary>
/// The autograd function of <see cref="BnbLinear"/>: forward on the Bnb kernels, backward = the layer's input gradient
/// (grad_output · dequant(W)); the frozen weight gets none. Arguments of <c>apply</c>: the input tensor, the module.
/// </summary>
internal sealed class BnbLinearFunction : autograd.SingleTensorFunction<BnbLinearFunction>
{
    public override string Name => "BnbLinear";

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var input = (Tensor)vars[0];
        var module = (BnbLinear)vars[1];
        ctx.save_data("module", module);
        ctx.save_data("shape", input.shape);
        ctx.save_data("dtype", input.dtype);
        using Tensor detached = input.detach();
        return module.Compute(detached);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        var module = (BnbLinear)ctx.get_data("module");
        var shape = (long[])ctx.get_data("shape");
        var dtype = (ScalarType)ctx.get_data("dtype");
        // One gradient per apply() argument: the input's, and none for the module.
        return [module.BackwardInput(grad_output, shape, dtype), null!];
    }
}
