namespace Bnb.Optim;

/// <summary>
/// A group of parameters that share hyper-parameters (torch's <c>param_groups</c> entry). Settings left null
/// inherit the optimizer's defaults when the group is added; after that <see cref="Settings"/> holds every value and
/// may be changed between steps (e.g. by a learning-rate scheduler).
/// </summary>
public sealed class ParameterGroup
{
    private OptimizerSettings _settings;

    /// <summary>A group of <paramref name="parameters"/> with optional <paramref name="settings"/> overriding the optimizer's defaults.</summary>
    public ParameterGroup(IEnumerable<ParameterRef> parameters, OptimizerSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Parameters = [.. parameters];
        if (Parameters.Any(p => p is null))
        {
            throw new ArgumentException("a parameter group contains null", nameof(parameters));
        }

        _settings = settings ?? new OptimizerSettings();
        _settings.Validate("parameter group");
    }

    /// <summary>The parameters, in order (their position across all groups is the state-file index).</summary>
    public IReadOnlyList<ParameterRef> Parameters { get; }

    /// <summary>The group's hyper-parameters (complete once the group belongs to an optimizer).</summary>
    /// <exception cref="ArgumentException">A value is out of range (the old settings stay).</exception>
    public OptimizerSettings Settings
    {
        get => _settings;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            value.Validate("parameter group");
            Owner?.CheckGroupSettings(_settings.Merge(value));
            _settings = Owner is null ? value : _settings.Merge(value);
        }
    }

    /// <summary>Shortcut for <c>Settings.LearningRate</c> (what schedulers change).</summary>
    public double LearningRate
    {
        get => _settings.LearningRate ?? throw new InvalidOperationException("the group is not part of an optimizer yet; its learning rate is inherited");
        set => Settings = _settings with { LearningRate = value };
    }

    internal Optimizer? Owner { get; set; }

    internal void SetResolved(OptimizerSettings settings) => _settings = settings;
}
