using Bnb.Quantization;
using Bnb.Runtime;

namespace Bnb.Optim;

// The bitsandbytes optimizer families (spec §3.1). One class per family; bitsandbytes' variants map to arguments:
//   Adam8bit            → new Adam(ctx, ps, optimBits: 8)
//   PagedAdamW32bit     → new AdamW(ctx, ps, paged: true)
//   PagedAdEMAMix8bit   → new AdEMAMix(ctx, ps, optimBits: 8, paged: true)
// Defaults, names and rejections follow bitsandbytes' constructors. Arguments bitsandbytes accepts but silently
// ignores (SGD dampening/nesterov, RMSprop momentum, LAMB bias_correction/adam_w_mode) are not offered.

/// <summary>Adam (bitsandbytes <c>Adam</c>, <c>Adam8bit</c>, <c>PagedAdam</c>, ...; kernel <c>adam</c>).</summary>
/// <remarks>Weight decay is <b>decoupled</b> (bitsandbytes' adam kernel always decouples it), so <c>Adam</c> with
/// weight decay behaves like <see cref="AdamW"/>, not like torch's L2-penalised Adam.</remarks>
public sealed class Adam : Optimizer
{
    /// <summary>Creates Adam over <paramref name="parameters"/>.</summary>
    /// <param name="context">Backend context the updates run on.</param>
    /// <param name="parameters">The first parameter group.</param>
    /// <param name="lr">Learning rate.</param>
    /// <param name="betas">(β1, β2); default (0.9, 0.999).</param>
    /// <param name="eps">ε.</param>
    /// <param name="weightDecay">Decoupled weight decay.</param>
    /// <param name="amsgrad">Not supported (bitsandbytes' 8-bit Adam raises; its 32-bit Adam ignores it): true throws.</param>
    /// <param name="optimBits">32 or 8 (8-bit blockwise state for parameters of at least <paramref name="minEightBitSize"/> elements).</param>
    /// <param name="minEightBitSize">Smaller parameters keep 32-bit state.</param>
    /// <param name="percentileClipping">100 = off; else clip gradients to this percentile of the last 100 gradient norms.</param>
    /// <param name="maxUnorm">Trust-ratio bound (32-bit state only); 0 = off.</param>
    /// <param name="skipZeros">Accepted for compatibility; ignored by the CPU semantics.</param>
    /// <param name="paged">Paged state (bitsandbytes <c>PagedAdam*</c>).</param>
    /// <param name="rounding">8-bit state rounding (default: bit-identical to bitsandbytes' CPU library).</param>
    public Adam(BnbContext context, IEnumerable<ParameterRef> parameters, double lr = 1e-3, (double Beta1, double Beta2)? betas = null, double eps = 1e-8, double weightDecay = 0, bool amsgrad = false, int optimBits = 32, long minEightBitSize = 4096, int percentileClipping = 100, double maxUnorm = 0, bool skipZeros = false, bool paged = false, Rounding rounding = Rounding.BnbCpuLut)
        : base(context, OptimizerKind.Adam, parameters, Families.TwoMoments(lr, betas ?? (0.9, 0.999), eps, weightDecay, amsgrad, "Adam", optimBits, minEightBitSize, percentileClipping, maxUnorm, skipZeros), paged, rounding)
    {
    }
}

/// <summary>AdamW (bitsandbytes <c>AdamW</c>, <c>AdamW8bit</c>, <c>PagedAdamW</c>, ...; kernel <c>adam</c>): Adam with decoupled weight decay 1e-2.</summary>
public sealed class AdamW : Optimizer
{
    /// <summary>Creates AdamW; parameters as <see cref="Adam"/> (weight decay default 1e-2).</summary>
    /// <inheritdoc cref="Adam(BnbContext, IEnumerable{ParameterRef}, double, ValueTuple{double, double}?, double, double, bool, int, long, int, double, bool, bool, Rounding)"/>
    public AdamW(BnbContext context, IEnumerable<ParameterRef> parameters, double lr = 1e-3, (double Beta1, double Beta2)? betas = null, double eps = 1e-8, double weightDecay = 1e-2, bool amsgrad = false, int optimBits = 32, long minEightBitSize = 4096, int percentileClipping = 100, double maxUnorm = 0, bool skipZeros = false, bool paged = false, Rounding rounding = Rounding.BnbCpuLut)
        : base(context, OptimizerKind.Adam, parameters, Families.TwoMoments(lr, betas ?? (0.9, 0.999), eps, weightDecay, amsgrad, "AdamW", optimBits, minEightBitSize, percentileClipping, maxUnorm, skipZeros), paged, rounding)
    {
    }
}

/// <summary>LAMB (bitsandbytes <c>LAMB</c>, <c>LAMB8bit</c>; kernel <c>lamb</c>): Adam with a layer-wise trust ratio bounded by <c>max_unorm</c>.</summary>
/// <remarks>As in bitsandbytes' CPU backend the trust ratio applies to 32-bit state only; in 8 bits LAMB runs as Adam
/// and bitsandbytes only accepts <c>max_unorm</c> = 1.0 (other values throw).</remarks>
public sealed class Lamb : Optimizer
{
    /// <summary>Creates LAMB; parameters as <see cref="Adam"/>, with <paramref name="maxUnorm"/> default 1.0.</summary>
    /// <inheritdoc cref="Adam(BnbContext, IEnumerable{ParameterRef}, double, ValueTuple{double, double}?, double, double, bool, int, long, int, double, bool, bool, Rounding)"/>
    public Lamb(BnbContext context, IEnumerable<ParameterRef> parameters, double lr = 1e-3, (double Beta1, double Beta2)? betas = null, double eps = 1e-8, double weightDecay = 0, bool amsgrad = false, int optimBits = 32, long minEightBitSize = 4096, int percentileClipping = 100, double maxUnorm = 1.0, bool skipZeros = false, Rounding rounding = Rounding.BnbCpuLut)
        : base(context, OptimizerKind.Lamb, parameters, Families.TwoMoments(lr, betas ?? (0.9, 0.999), eps, weightDecay, amsgrad, "LAMB", optimBits, minEightBitSize, percentileClipping, maxUnorm, skipZeros), paged: false, rounding)
    {
    }

    private protected override void CheckSettings(OptimizerSettings s, bool eightBit)
    {
        if (eightBit && s.MaxUnorm != 1.0)
        {
            throw new ArgumentException($"LAMB with 8-bit state only supports max_unorm = 1.0 (bitsandbytes' LAMB8bit raises), got {s.MaxUnorm}", "maxUnorm");
        }
    }
}

/// <summary>AdEMAMix (bitsandbytes <c>AdEMAMix</c>, <c>AdEMAMix8bit</c>, <c>PagedAdEMAMix</c>, ...; kernel <c>ademamix</c>): Adam mixed with a slow EMA.</summary>
/// <remarks>state1 holds both EMAs ([2, n]: fast, then slow). With <c>t_alpha</c>/<c>t_beta3</c> set, α and β3 warm up as in
/// bitsandbytes: α_t = min(t·α/T_α, α) and β3_t = min(exp(ln β1·ln β3 / ((1 − t/T_β3)·ln β3 + (t/T_β3)·ln β1)), β3).</remarks>
public sealed class AdEMAMix : Optimizer
{
    /// <summary>Creates AdEMAMix over <paramref name="parameters"/>.</summary>
    /// <param name="context">Backend context the updates run on.</param>
    /// <param name="parameters">The first parameter group.</param>
    /// <param name="lr">Learning rate.</param>
    /// <param name="betas">(β1, β2, β3); default (0.9, 0.999, 0.9999).</param>
    /// <param name="alpha">Weight of the slow EMA.</param>
    /// <param name="tAlpha">Steps of α warm-up (null = none).</param>
    /// <param name="tBeta3">Steps of β3 warm-up (null = none).</param>
    /// <param name="eps">ε.</param>
    /// <param name="weightDecay">Decoupled weight decay.</param>
    /// <param name="optimBits">32 or 8.</param>
    /// <param name="minEightBitSize">Smaller parameters keep 32-bit state.</param>
    /// <param name="percentileClipping">100 = off.</param>
    /// <param name="paged">Paged state.</param>
    /// <param name="rounding">8-bit state rounding.</param>
    public AdEMAMix(BnbContext context, IEnumerable<ParameterRef> parameters, double lr = 1e-3, (double Beta1, double Beta2, double Beta3)? betas = null, double alpha = 5.0, int? tAlpha = null, int? tBeta3 = null, double eps = 1e-8, double weightDecay = 1e-2, int optimBits = 32, long minEightBitSize = 4096, int percentileClipping = 100, bool paged = false, Rounding rounding = Rounding.BnbCpuLut)
        : base(context, OptimizerKind.AdEMAMix, parameters, Families.AdEMAMix(lr, betas ?? (0.9, 0.999, 0.9999), alpha, tAlpha, tBeta3, eps, weightDecay, optimBits, minEightBitSize, percentileClipping), paged, rounding)
    {
    }

    /// <summary>β3 and α for step <paramref name="step"/> (bitsandbytes' AdEMAMix schedulers, in double).</summary>
    public static (double Beta3, double Alpha) ScheduleAt(OptimizerSettings settings, int step)
    {
        ArgumentNullException.ThrowIfNull(settings);
        double alpha = settings.Alpha ?? 0, beta1 = settings.Beta1 ?? 0, beta3 = settings.Beta3 ?? 0;
        double alphaT = settings.TAlpha is { } ta ? Math.Min(step * alpha / ta, alpha) : alpha;
        double beta3T = beta3;
        if (settings.TBeta3 is { } tb)
        {
            double lnBeta1 = Math.Log(beta1), lnBeta3 = Math.Log(beta3), scale = (double)step / tb;
            beta3T = Math.Min(Math.Exp(lnBeta1 * lnBeta3 / (((1 - scale) * lnBeta3) + (scale * lnBeta1))), beta3);
        }

        return (beta3T, alphaT);
    }

    private protected override (double Beta3, double Alpha) Schedule(OptimizerSettings s, int step) => ScheduleAt(s, step);
}

/// <summary>Lion (bitsandbytes <c>Lion</c>, <c>Lion8bit</c>, <c>PagedLion</c>, ...; kernel <c>lion</c>): sign of an interpolated momentum.</summary>
public sealed class Lion : Optimizer
{
    /// <summary>Creates Lion over <paramref name="parameters"/>.</summary>
    /// <param name="context">Backend context the updates run on.</param>
    /// <param name="parameters">The first parameter group.</param>
    /// <param name="lr">Learning rate.</param>
    /// <param name="betas">(β1, β2); default (0.9, 0.99).</param>
    /// <param name="weightDecay">Decoupled weight decay.</param>
    /// <param name="optimBits">32 or 8.</param>
    /// <param name="minEightBitSize">Smaller parameters keep 32-bit state.</param>
    /// <param name="percentileClipping">100 = off.</param>
    /// <param name="maxUnorm">Accepted for compatibility (bitsandbytes' CPU Lion has no trust ratio).</param>
    /// <param name="skipZeros">Accepted for compatibility; ignored by the CPU semantics.</param>
    /// <param name="paged">Paged state.</param>
    /// <param name="rounding">8-bit state rounding.</param>
    public Lion(BnbContext context, IEnumerable<ParameterRef> parameters, double lr = 1e-4, (double Beta1, double Beta2)? betas = null, double weightDecay = 0, int optimBits = 32, long minEightBitSize = 4096, int percentileClipping = 100, double maxUnorm = 0, bool skipZeros = false, bool paged = false, Rounding rounding = Rounding.BnbCpuLut)
        : base(context, OptimizerKind.Lion, parameters, Families.Common(optimBits, minEightBitSize, percentileClipping, maxUnorm, skipZeros) with
        {
            LearningRate = lr,
            Beta1 = (betas ?? (0.9, 0.99)).Beta1,
            Beta2 = (betas ?? (0.9, 0.99)).Beta2,
            Eps = 0,
            WeightDecay = weightDecay,
        }, paged, rounding)
    {
    }
}

/// <summary>SGD with momentum (bitsandbytes <c>SGD</c>, <c>SGD8bit</c>; kernel <c>momentum</c>); weight decay is added to the gradient.</summary>
/// <remarks>bitsandbytes requires momentum &gt; 0 and ignores dampening and Nesterov; here momentum 0 throws and the
/// ignored arguments are not offered.</remarks>
public sealed class Sgd : Optimizer
{
    /// <summary>Creates SGD with momentum over <paramref name="parameters"/>.</summary>
    /// <param name="context">Backend context the updates run on.</param>
    /// <param name="parameters">The first parameter group.</param>
    /// <param name="lr">Learning rate (required, as in bitsandbytes).</param>
    /// <param name="momentum">Momentum factor (required, &gt; 0).</param>
    /// <param name="weightDecay">L2 weight decay added to the gradient.</param>
    /// <param name="optimBits">32 or 8.</param>
    /// <param name="minEightBitSize">Smaller parameters keep 32-bit state.</param>
    /// <param name="percentileClipping">100 = off.</param>
    /// <param name="maxUnorm">Trust-ratio bound (32-bit state only); 0 = off.</param>
    /// <param name="skipZeros">Accepted for compatibility; ignored by the CPU semantics.</param>
    /// <param name="rounding">8-bit state rounding.</param>
    public Sgd(BnbContext context, IEnumerable<ParameterRef> parameters, double lr, double momentum, double weightDecay = 0, int optimBits = 32, long minEightBitSize = 4096, int percentileClipping = 100, double maxUnorm = 0, bool skipZeros = false, Rounding rounding = Rounding.BnbCpuLut)
        : base(context, OptimizerKind.Momentum, parameters, Families.Momentum(lr, momentum, weightDecay, optimBits, minEightBitSize, percentileClipping, maxUnorm, skipZeros), paged: false, rounding)
    {
    }

    private protected override void CheckSettings(OptimizerSettings s, bool eightBit) => Families.RequireMomentum(s, "SGD");
}

/// <summary>LARS (bitsandbytes <c>LARS</c>, <c>LARS8bit</c>; kernel <c>lars</c>): SGD with momentum and a layer-wise trust ratio.</summary>
/// <remarks>The trust ratio (<c>max_unorm</c>, default 0.02) applies to 32-bit state only; bitsandbytes' 8-bit LARS
/// silently runs without it, and so does this one.</remarks>
public sealed class Lars : Optimizer
{
    /// <summary>Creates LARS; parameters as <see cref="Sgd"/>, with <paramref name="maxUnorm"/> default 0.02.</summary>
    /// <inheritdoc cref="Sgd(BnbContext, IEnumerable{ParameterRef}, double, double, double, int, long, int, double, bool, Rounding)"/>
    public Lars(BnbContext context, IEnumerable<ParameterRef> parameters, double lr, double momentum, double weightDecay = 0, int optimBits = 32, long minEightBitSize = 4096, int percentileClipping = 100, double maxUnorm = 0.02, bool skipZeros = false, Rounding rounding = Rounding.BnbCpuLut)
        : base(context, OptimizerKind.Lars, parameters, Families.Momentum(lr, momentum, weightDecay, optimBits, minEightBitSize, percentileClipping, maxUnorm, skipZeros), paged: false, rounding)
    {
    }

    private protected override void CheckSettings(OptimizerSettings s, bool eightBit) => Families.RequireMomentum(s, "LARS");
}

/// <summary>RMSprop (bitsandbytes <c>RMSprop</c>, <c>RMSprop8bit</c>; kernel <c>rmsprop</c>); weight decay is added to the gradient.</summary>
public sealed class RmsProp : Optimizer
{
    /// <summary>Creates RMSprop over <paramref name="parameters"/>.</summary>
    /// <param name="context">Backend context the updates run on.</param>
    /// <param name="parameters">The first parameter group.</param>
    /// <param name="lr">Learning rate.</param>
    /// <param name="alpha">Smoothing constant (β1; 0 is not supported, as in bitsandbytes).</param>
    /// <param name="eps">ε.</param>
    /// <param name="weightDecay">L2 weight decay added to the gradient.</param>
    /// <param name="centered">Not supported (bitsandbytes raises): true throws.</param>
    /// <param name="optimBits">32 or 8.</param>
    /// <param name="minEightBitSize">Smaller parameters keep 32-bit state.</param>
    /// <param name="percentileClipping">100 = off.</param>
    /// <param name="maxUnorm">Trust-ratio bound (32-bit state only); 0 = off.</param>
    /// <param name="skipZeros">Accepted for compatibility; ignored by the CPU semantics.</param>
    /// <param name="rounding">8-bit state rounding.</param>
    public RmsProp(BnbContext context, IEnumerable<ParameterRef> parameters, double lr = 1e-2, double alpha = 0.99, double eps = 1e-8, double weightDecay = 0, bool centered = false, int optimBits = 32, long minEightBitSize = 4096, int percentileClipping = 100, double maxUnorm = 0, bool skipZeros = false, Rounding rounding = Rounding.BnbCpuLut)
        : base(context, OptimizerKind.RmsProp, parameters, Families.Common(optimBits, minEightBitSize, percentileClipping, maxUnorm, skipZeros) with
        {
            LearningRate = lr,
            Beta1 = centered ? throw new NotSupportedException("centered RMSprop is not supported (bitsandbytes raises NotImplementedError)") : alpha,
            Beta2 = 0,
            Eps = eps,
            WeightDecay = weightDecay,
        }, paged: false, rounding)
    {
    }

    private protected override void CheckSettings(OptimizerSettings s, bool eightBit)
    {
        if (s.Beta1 == 0)
        {
            throw new ArgumentException("RMSprop with alpha = 0 is not supported (bitsandbytes raises NotImplementedError)", "alpha");
        }
    }
}

/// <summary>Adagrad (bitsandbytes <c>Adagrad</c>, <c>Adagrad8bit</c>; kernel <c>adagrad</c>); weight decay is added to the gradient.</summary>
public sealed class Adagrad : Optimizer
{
    /// <summary>Creates Adagrad over <paramref name="parameters"/>.</summary>
    /// <param name="context">Backend context the updates run on.</param>
    /// <param name="parameters">The first parameter group.</param>
    /// <param name="lr">Learning rate.</param>
    /// <param name="lrDecay">Must be 0 (bitsandbytes raises otherwise).</param>
    /// <param name="weightDecay">L2 weight decay added to the gradient.</param>
    /// <param name="initialAccumulatorValue">Must be 0 (bitsandbytes raises otherwise).</param>
    /// <param name="eps">ε.</param>
    /// <param name="optimBits">32 or 8.</param>
    /// <param name="minEightBitSize">Smaller parameters keep 32-bit state.</param>
    /// <param name="percentileClipping">100 = off.</param>
    /// <param name="rounding">8-bit state rounding.</param>
    public Adagrad(BnbContext context, IEnumerable<ParameterRef> parameters, double lr = 1e-2, double lrDecay = 0, double weightDecay = 0, double initialAccumulatorValue = 0, double eps = 1e-10, int optimBits = 32, long minEightBitSize = 4096, int percentileClipping = 100, Rounding rounding = Rounding.BnbCpuLut)
        : base(context, OptimizerKind.Adagrad, parameters, Families.Common(optimBits, minEightBitSize, percentileClipping, 0, false) with
        {
            LearningRate = lrDecay != 0 ? throw new NotSupportedException($"Adagrad lr_decay = {lrDecay} is not supported (must be 0, as in bitsandbytes)")
                : initialAccumulatorValue != 0 ? throw new NotSupportedException($"Adagrad initial_accumulator_value = {initialAccumulatorValue} is not supported (must be 0, as in bitsandbytes)")
                : lr,
            Beta1 = 0,
            Beta2 = 0,
            Eps = eps,
            WeightDecay = weightDecay,
        }, paged: false, rounding)
    {
    }
}

/// <summary>Default settings shared by the optimizer families.</summary>
internal static class Families
{
    public static OptimizerSettings Common(int optimBits, long minEightBitSize, int percentileClipping, double maxUnorm, bool skipZeros) => new()
    {
        Beta3 = 0,
        Alpha = 0,
        OptimBits = optimBits,
        MinEightBitSize = minEightBitSize,
        PercentileClipping = percentileClipping,
        MaxUnorm = maxUnorm,
        SkipZeros = skipZeros,
        GradientNormScale = 1.0,
    };

    public static OptimizerSettings TwoMoments(double lr, (double Beta1, double Beta2) betas, double eps, double weightDecay, bool amsgrad, string name, int optimBits, long minEightBitSize, int percentileClipping, double maxUnorm, bool skipZeros)
    {
        if (amsgrad)
        {
            throw new NotSupportedException($"{name} does not support amsgrad = true (bitsandbytes' 8-bit variants raise, its 32-bit ones silently ignore it)");
        }

        return Common(optimBits, minEightBitSize, percentileClipping, maxUnorm, skipZeros) with
        {
            LearningRate = lr,
            Beta1 = betas.Beta1,
            Beta2 = betas.Beta2,
            Eps = eps,
            WeightDecay = weightDecay,
        };
    }

    public static OptimizerSettings AdEMAMix(double lr, (double Beta1, double Beta2, double Beta3) betas, double alpha, int? tAlpha, int? tBeta3, double eps, double weightDecay, int optimBits, long minEightBitSize, int percentileClipping) =>
        Common(optimBits, minEightBitSize, percentileClipping, 0, false) with
        {
            LearningRate = lr,
            Beta1 = betas.Beta1,
            Beta2 = betas.Beta2,
            Beta3 = betas.Beta3,
            Alpha = alpha,
            TAlpha = tAlpha,
            TBeta3 = tBeta3,
            Eps = eps,
            WeightDecay = weightDecay,
        };

    public static OptimizerSettings Momentum(double lr, double momentum, double weightDecay, int optimBits, long minEightBitSize, int percentileClipping, double maxUnorm, bool skipZeros) =>
        Common(optimBits, minEightBitSize, percentileClipping, maxUnorm, skipZeros) with
        {
            LearningRate = lr,
            Beta1 = momentum,
            Beta2 = 0,
            Eps = 0,
            WeightDecay = weightDecay,
        };

    public static void RequireMomentum(OptimizerSettings s, string name)
    {
        if (s.Beta1 is not > 0)
        {
            throw new NotSupportedException($"{name} without momentum (momentum = {s.Beta1}) is not supported (bitsandbytes raises NotImplementedError)");
        }
    }
}
