using System.Runtime.CompilerServices;

namespace Bnb.Optim;

/// <summary>
/// Per-parameter hyper-parameter overrides, like bitsandbytes' <c>GlobalOptimManager.override_config</c>: e.g. keep
/// an embedding's state in 32 bits (<c>new OptimizerSettings { OptimBits = 32 }</c>) while the rest trains with 8-bit
/// state, or give one parameter its own learning rate.
/// </summary>
/// <remarks>
/// Overrides are keyed by the <see cref="ParameterRef"/> object and apply on top of the parameter's group settings.
/// Every optimizer consults <see cref="Global"/> (bitsandbytes' singleton) and then its own
/// <see cref="Optimizer.Overrides"/>, so the order of registering parameters and overrides does not matter.
/// Thread-safe; entries do not keep a parameter alive.
/// </remarks>
public sealed class ParameterOverrides
{
    private readonly ConditionalWeakTable<ParameterRef, OptimizerSettings> _map = [];

    /// <summary>Process-wide overrides consulted by every optimizer (bitsandbytes' <c>GlobalOptimManager</c>).</summary>
    public static ParameterOverrides Global { get; } = new();

    /// <summary>Sets overrides for <paramref name="parameter"/>, merged with any earlier ones (later values win).</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Override(ParameterRef parameter, OptimizerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate($"override of {parameter.Describe()}");
        lock (_map)
        {
            _map.AddOrUpdate(parameter, _map.TryGetValue(parameter, out var old) ? old.Merge(settings) : settings);
        }
    }

    /// <summary>Sets the same overrides for several parameters.</summary>
    public void Override(IEnumerable<ParameterRef> parameters, OptimizerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        foreach (ParameterRef p in parameters)
        {
            Override(p, settings);
        }
    }

    /// <summary>Removes every override of <paramref name="parameter"/>; false if it had none.</summary>
    public bool Remove(ParameterRef parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        return _map.Remove(parameter);
    }

    /// <summary>The overrides of <paramref name="parameter"/>, or null.</summary>
    public OptimizerSettings? Get(ParameterRef parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        return _map.TryGetValue(parameter, out var s) ? s : null;
    }
}
