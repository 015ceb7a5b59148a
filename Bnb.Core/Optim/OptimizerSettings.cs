using System.Globalization;

namespace Bnb.Optim;

/// <summary>
/// Hyper-parameters of an optimizer, a parameter group or one parameter, with bitsandbytes' names in the docs. A null
/// value means "inherit": a group inherits the optimizer's defaults (filled in when the group is added, as torch does),
/// a per-parameter override (<see cref="ParameterOverrides"/>) inherits its group's values.
/// </summary>
/// <remarks>
/// Values are checked when they are set on an optimizer, a group or an override; the kind-specific restrictions
/// bitsandbytes enforces (e.g. LAMB in 8 bits only with <c>max_unorm</c> = 1) are checked by the optimizer.
/// <see cref="OptimBits"/>, <see cref="MinEightBitSize"/> take effect when a parameter's state is created (its
/// first step); all other values are read at every step, so schedulers can change them between steps.
/// </remarks>
public sealed record OptimizerSettings
{
    /// <summary><c>lr</c>: learning rate.</summary>
    public double? LearningRate { get; init; }

    /// <summary><c>betas[0]</c> (momentum for SGD/LARS, alpha for RMSprop).</summary>
    public double? Beta1 { get; init; }

    /// <summary><c>betas[1]</c>.</summary>
    public double? Beta2 { get; init; }

    /// <summary><c>betas[2]</c>: AdEMAMix slow EMA.</summary>
    public double? Beta3 { get; init; }

    /// <summary><c>alpha</c>: AdEMAMix mixing coefficient.</summary>
    public double? Alpha { get; init; }

    /// <summary><c>t_alpha</c>: AdEMAMix alpha warm-up steps (null = no schedule).</summary>
    public int? TAlpha { get; init; }

    /// <summary><c>t_beta3</c>: AdEMAMix beta3 warm-up steps (null = no schedule).</summary>
    public int? TBeta3 { get; init; }

    /// <summary><c>eps</c>.</summary>
    public double? Eps { get; init; }

    /// <summary><c>weight_decay</c> (decoupled for Adam/AdamW/LAMB/AdEMAMix/Lion, added to the gradient otherwise).</summary>
    public double? WeightDecay { get; init; }

    /// <summary><c>optim_bits</c>: 32 or 8 (8 = blockwise 8-bit state for parameters of at least <see cref="MinEightBitSize"/> elements).</summary>
    public int? OptimBits { get; init; }

    /// <summary><c>min_8bit_size</c>: parameters with fewer elements keep 32-bit state (bitsandbytes: 4096).</summary>
    public long? MinEightBitSize { get; init; }

    /// <summary><c>max_unorm</c>: trust-ratio bound (LAMB 1.0, LARS 0.02, others 0 = off). 32-bit state only, as in bitsandbytes.</summary>
    public double? MaxUnorm { get; init; }

    /// <summary><c>skip_zeros</c>: accepted for compatibility; bitsandbytes' CPU backend ignores it and so do the CPU backends here.</summary>
    public bool? SkipZeros { get; init; }

    /// <summary><c>percentile_clipping</c>: 100 = off; p &lt; 100 scales the gradient down to the p-th percentile of the last 100 gradient norms.</summary>
    public int? PercentileClipping { get; init; }

    /// <summary><c>gnorm_scale</c>: constant gradient multiplier (times the percentile-clipping scale), 1 = none.</summary>
    public double? GradientNormScale { get; init; }

    /// <summary>The values of <paramref name="overrides"/> where set, else these.</summary>
    public OptimizerSettings Merge(OptimizerSettings? overrides) => overrides is null ? this : new OptimizerSettings
    {
        LearningRate = overrides.LearningRate ?? LearningRate,
        Beta1 = overrides.Beta1 ?? Beta1,
        Beta2 = overrides.Beta2 ?? Beta2,
        Beta3 = overrides.Beta3 ?? Beta3,
        Alpha = overrides.Alpha ?? Alpha,
        TAlpha = overrides.TAlpha ?? TAlpha,
        TBeta3 = overrides.TBeta3 ?? TBeta3,
        Eps = overrides.Eps ?? Eps,
        WeightDecay = overrides.WeightDecay ?? WeightDecay,
        OptimBits = overrides.OptimBits ?? OptimBits,
        MinEightBitSize = overrides.MinEightBitSize ?? MinEightBitSize,
        MaxUnorm = overrides.MaxUnorm ?? MaxUnorm,
        SkipZeros = overrides.SkipZeros ?? SkipZeros,
        PercentileClipping = overrides.PercentileClipping ?? PercentileClipping,
        GradientNormScale = overrides.GradientNormScale ?? GradientNormScale,
    };

    /// <summary>Checks every value that is set; <paramref name="what"/> names the owner in messages.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Validate(string what)
    {
        NonNegative(LearningRate, "lr");
        Beta(Beta1, "betas[0]");
        Beta(Beta2, "betas[1]");
        Beta(Beta3, "betas[2]");
        NonNegative(Alpha, "alpha");
        NonNegative(Eps, "eps");
        NonNegative(WeightDecay, "weight_decay");
        NonNegative(MaxUnorm, "max_unorm");
        NonNegative(GradientNormScale, "gnorm_scale");
        if (OptimBits is { } bits && bits is not (8 or 32))
        {
            throw Bad("optim_bits", bits, "8 or 32");
        }

        if (MinEightBitSize is < 0)
        {
            throw Bad("min_8bit_size", MinEightBitSize, ">= 0");
        }

        if (PercentileClipping is { } pc && pc is < 0 or > 100)
        {
            throw Bad("percentile_clipping", pc, "in [0, 100] (100 = off)");
        }

        if (TAlpha is <= 0)
        {
            throw Bad("t_alpha", TAlpha, "> 0 (or null for no schedule)");
        }

        if (TBeta3 is <= 0)
        {
            throw Bad("t_beta3", TBeta3, "> 0 (or null for no schedule)");
        }

        void NonNegative(double? v, string name)
        {
            if (v is { } x && (!double.IsFinite(x) || x < 0))
            {
                throw Bad(name, x, "finite and >= 0");
            }
        }

        void Beta(double? v, string name)
        {
            if (v is { } x && (!double.IsFinite(x) || x < 0 || x >= 1))
            {
                throw Bad(name, x, "in [0, 1)");
            }
        }

        ArgumentException Bad(string name, object? value, string expected) =>
            new($"{what}: {name} = {Convert.ToString(value, CultureInfo.InvariantCulture)} must be {expected}", name);
    }
}
