using Bnb.Interop;
using Bnb.Memory;
using Bnb.Quantization;
using Bnb.Runtime;

namespace Bnb.Optim;

/// <summary>Optimizer kinds (<c>BNB_OPTIM_*</c>, bitsandbytes kernel names).</summary>
public enum OptimizerKind
{
    Adam = BnbNative.BNB_OPTIM_ADAM,
    Momentum = BnbNative.BNB_OPTIM_MOMENTUM,
    RmsProp = BnbNative.BNB_OPTIM_RMSPROP,
    Adagrad = BnbNative.BNB_OPTIM_ADAGRAD,
    Lion = BnbNative.BNB_OPTIM_LION,
    Lamb = BnbNative.BNB_OPTIM_LAMB,
    Lars = BnbNative.BNB_OPTIM_LARS,
    AdEMAMix = BnbNative.BNB_OPTIM_ADEMAMIX,
}

/// <summary>
/// Hyper-parameters of one optimizer step (<c>bnb_optimizer_params</c>, spec §3). Scalars are double because
/// bitsandbytes derives its constants (1 - beta, beta^t, lr·wd) in double before rounding to float32.
/// </summary>
public sealed record OptimizerStep
{
    public required OptimizerKind Kind { get; init; }

    /// <summary>1-based step number.</summary>
    public required int Step { get; init; }

    public required double LearningRate { get; init; }

    public double Beta1 { get; init; }

    public double Beta2 { get; init; }

    /// <summary>AdEMAMix slow EMA.</summary>
    public double Beta3 { get; init; }

    /// <summary>AdEMAMix mixing coefficient.</summary>
    public double Alpha { get; init; }

    public double Eps { get; init; }

    public double WeightDecay { get; init; }

    public double GradientNormScale { get; init; } = 1.0;

    /// <summary>LAMB/LARS trust-ratio bound; 0 = off.</summary>
    public double MaxUnorm { get; init; }

    /// <summary>||p||₂ before the step for MaxUnorm; negative = let the op compute it.</summary>
    public double ParamNorm { get; init; } = -1.0;

    /// <summary>Rounding of 8-bit state requantization.</summary>
    public Rounding Rounding { get; init; } = Rounding.Nearest;

    /// <summary>bitsandbytes' <c>skip_zeros</c>; accepted for compatibility, the CPU semantics ignore it.</summary>
    public bool SkipZeros { get; init; }

    internal BnbOptimizerParams ToNative() => new()
    {
        StructSize = (uint)System.Runtime.CompilerServices.Unsafe.SizeOf<BnbOptimizerParams>(),
        Kind = (int)Kind,
        Step = Step,
        Lr = LearningRate,
        Beta1 = Beta1,
        Beta2 = Beta2,
        Beta3 = Beta3,
        Alpha = Alpha,
        Eps = Eps,
        WeightDecay = WeightDecay,
        GnormScale = GradientNormScale,
        MaxUnorm = MaxUnorm,
        ParamNorm = ParamNorm,
        SkipZeros = SkipZeros ? 1 : 0,
        Reserved = 0,
        Rounding = (int)Rounding,
    };
}

/// <summary>
/// The optimizer update kernels of a backend (bitsandbytes CPU-backend semantics): the in-place primitives the
/// optimizer classes (<see cref="Optimizer"/>) are built on, for callers that manage state themselves.
/// </summary>
public sealed class OptimizerKernels
{
    public OptimizerKernels(BnbContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        Context = context;
    }

    public BnbContext Context { get; }

    /// <summary>One 32-bit step in place on p, state1 and (for 2-state kinds) state2.</summary>
    /// <returns>The update norm used by the trust ratio when MaxUnorm &gt; 0, else 0.</returns>
    public float Update32Bit(OptimizerStep step, TensorRef p, TensorRef g, TensorRef state1, TensorRef state2 = default)
    {
        ArgumentNullException.ThrowIfNull(step);
        return Context.Native.OptimizerUpdate32Bit(Context.Handle, step.ToNative(), p, g, state1, state2);
    }

    /// <summary>One 8-bit blockwise step (blocksize 256) in place on p, the state codes and their absmax.</summary>
    public void Update8BitBlockwise(OptimizerStep step, TensorRef p, TensorRef g, TensorRef state1, TensorRef absmax1, TensorRef qmap1, TensorRef state2 = default, TensorRef absmax2 = default, TensorRef qmap2 = default)
    {
        ArgumentNullException.ThrowIfNull(step);
        Context.Native.OptimizerUpdate8BitBlockwise(Context.Handle, step.ToNative(), p, g, state1, state2, absmax1, absmax2, qmap1, qmap2);
    }

    /// <summary>
    /// Sums of squares of the update direction the next 32-bit step would take and of p, without modifying
    /// anything (for sharded parameters: all-reduce both, then pass <see cref="OptimizerStep.ParamNorm"/>).
    /// </summary>
    public (double UpdateSquared, double ParamSquared) UpdateNorm(OptimizerStep step, TensorRef p, TensorRef g, TensorRef state1, TensorRef state2 = default)
    {
        ArgumentNullException.ThrowIfNull(step);
        return Context.Native.OptimizerUnorm(Context.Handle, step.ToNative(), p, g, state1, state2);
    }

    /// <summary>
    /// bitsandbytes' percentile clipping (spec §3.6): records ||g||² in <paramref name="history"/> (f32 [100]) and
    /// returns the gradient scale to pass as <see cref="OptimizerStep.GradientNormScale"/>.
    /// </summary>
    /// <param name="g">The gradient (f32, f16 or bf16).</param>
    /// <param name="history">f32 [100] gradient-norm history, zero before the first step.</param>
    /// <param name="step">1-based step number.</param>
    /// <param name="percentile">0…99.</param>
    public (float GradientNorm, float Scale) PercentileClipping(TensorRef g, TensorRef history, int step, int percentile) =>
        Context.Native.PercentileClipping(Context.Handle, g, history, step, percentile);
}
