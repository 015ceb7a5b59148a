using System.Numerics;
using System.Runtime.InteropServices;
using Bnb.Errors;
using Bnb.Interop;
using Bnb.Memory;
using Bnb.Quantization;
using Bnb.Runtime;

namespace Bnb.Optim;

/// <summary>
/// Base of the bitsandbytes optimizers (<see cref="Adam"/>, <see cref="AdamW"/>, <see cref="Lion"/>, <see cref="Sgd"/>,
/// <see cref="RmsProp"/>, <see cref="Adagrad"/>, <see cref="Lamb"/>, <see cref="Lars"/>, <see cref="AdEMAMix"/>):
/// parameter groups, per-parameter overrides, state allocation (32-bit, 8-bit blockwise, paged), the step, and state
/// save/load. The update math runs in the context's backend (bitsandbytes' CPU-backend semantics, spec §3).
/// </summary>
/// <remarks>
/// <para><b>State.</b> A parameter's state is created at its first step: float32 when <c>optim_bits</c> = 32 or the
/// parameter has fewer than <c>min_8bit_size</c> elements, else 8-bit blockwise (256-element blocks, signed dynamic
/// map for state1, unsigned for state2). Paged optimizers put state1/state2 of parameters with at least
/// <see cref="PagedMinElements"/> elements into the paging allocator's memory.</para>
/// <para><b>Non-finite gradients.</b> Under the context's default <see cref="NonFinitePolicy.Error"/> a NaN or Inf in
/// any gradient fails <see cref="Step"/> with a <see cref="BnbInvalidArgumentException"/> (status
/// <see cref="BnbStatus.NonFinite"/>) naming the parameter and the index, and <b>no</b> parameter or state changes
/// (host memory: every gradient is checked before the first update). Under <see cref="NonFinitePolicy.Propagate"/>
/// the values flow into parameters and state as in bitsandbytes' CPU backend (the caller skips such steps, e.g.
/// with a loss scaler).</para>
/// <para><b>Threads.</b> An optimizer is used from one thread at a time, like its context. Results are identical for
/// every thread count of the context.</para>
/// </remarks>
public abstract partial class Optimizer : IDisposable
{
    /// <summary>Elements per 8-bit state block (fixed in bitsandbytes).</summary>
    public const int BlockSize = 256;

    /// <summary>bitsandbytes pages only state tensors of at least 1e5 elements.</summary>
    public const long DefaultPagedMinElements = 100_000;

    private readonly List<ParameterGroup> _groups = [];
    private readonly Dictionary<ParameterRef, ParameterState> _state = new(ReferenceEqualityComparer.Instance);
    private readonly OptimizerKernels _kernels;
    private readonly float[] _signedMap, _unsignedMap;
    private bool _disposed;

    /// <summary>Creates an optimizer of <paramref name="kind"/> over one group of <paramref name="parameters"/>.</summary>
    /// <param name="context">Backend context the updates run on (and where unpaged state is allocated).</param>
    /// <param name="kind">The update rule.</param>
    /// <param name="parameters">The first parameter group (more with <see cref="AddParamGroup"/>).</param>
    /// <param name="defaults">Complete default hyper-parameters.</param>
    /// <param name="paged">Page state1/state2 of large parameters (see <see cref="PagedMinElements"/>).</param>
    /// <param name="rounding">Rounding of 8-bit state requantization (default: bit-identical to bitsandbytes' CPU library).</param>
    private protected Optimizer(BnbContext context, OptimizerKind kind, IEnumerable<ParameterRef> parameters, OptimizerSettings defaults, bool paged, Rounding rounding)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(parameters);
        Context = context;
        Kind = kind;
        IsPaged = paged;
        Rounding = rounding;
        defaults.Validate(GetType().Name);
        Defaults = defaults;
        CheckGroupSettings(defaults);
        _kernels = new OptimizerKernels(context);
        _signedMap = CodeTableOf(context, CodeTable.DynamicSigned);
        _unsignedMap = CodeTableOf(context, CodeTable.DynamicUnsigned);
        AddParamGroup(new ParameterGroup(parameters));
    }

    /// <summary>The backend context the updates run on.</summary>
    public BnbContext Context { get; }

    /// <summary>The update rule (bitsandbytes kernel name).</summary>
    public OptimizerKind Kind { get; }

    /// <summary>bitsandbytes' name of the kernel: adam, lamb, ademamix, momentum, lars, rmsprop, adagrad, lion.</summary>
    public string KernelName => KernelNameOf(Kind);

    /// <summary>True for paged optimizers.</summary>
    public bool IsPaged { get; }

    /// <summary>Rounding of 8-bit state requantization.</summary>
    public Rounding Rounding { get; }

    /// <summary>The optimizer's default hyper-parameters (complete).</summary>
    public OptimizerSettings Defaults { get; }

    /// <summary>Paged optimizers page state tensors of parameters with at least this many elements (smaller ones stay unpaged). Set before the first step.</summary>
    public long PagedMinElements { get; set; } = DefaultPagedMinElements;

    /// <summary>
    /// The paging allocator paged state comes from. Set it before the first step to choose the budget and the spill
    /// directory (<c>new PagedAllocator(context, budgetBytes: ...)</c>); when null, the first step creates a view of the
    /// context's pager that keeps its current settings (unlimited for a fresh context).
    /// </summary>
    public PagedAllocator? PagedAllocator { get; set; }

    /// <summary>The parameter groups, in order.</summary>
    public IReadOnlyList<ParameterGroup> ParamGroups => _groups;

    /// <summary>This optimizer's per-parameter overrides (applied after <see cref="ParameterOverrides.Global"/>).</summary>
    public ParameterOverrides Overrides { get; } = new();

    /// <summary>Every parameter of every group, in state-file index order.</summary>
    public IEnumerable<ParameterRef> Parameters => _groups.SelectMany(g => g.Parameters);

    /// <summary>Bytes of optimizer state held for all parameters.</summary>
    public long StateBytes => _state.Values.Sum(s => s.StateBytes);

    /// <summary>Adds a parameter group; its unset settings are filled from <see cref="Defaults"/>.</summary>
    /// <exception cref="ArgumentException">A parameter already belongs to this optimizer, or a setting is invalid.</exception>
    public void AddParamGroup(ParameterGroup group)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(group);
        if (group.Owner is not null)
        {
            throw new ArgumentException("the parameter group already belongs to an optimizer", nameof(group));
        }

        var seen = new HashSet<ParameterRef>(Parameters, ReferenceEqualityComparer.Instance);
        foreach (ParameterRef p in group.Parameters)
        {
            if (!seen.Add(p))
            {
                throw new ArgumentException($"{p.Describe()} appears in more than one parameter group", nameof(group));
            }
        }

        OptimizerSettings resolved = Defaults.Merge(group.Settings);
        CheckGroupSettings(resolved);
        group.SetResolved(resolved);
        group.Owner = this;
        _groups.Add(group);
    }

    /// <summary>The state of <paramref name="parameter"/>, or null before its first step.</summary>
    public ParameterState? GetState(ParameterRef parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        return _state.GetValueOrDefault(parameter);
    }

    /// <summary>
    /// Forgets the state of <paramref name="parameter"/> (its memory is freed; the next step starts from zero state at
    /// step 1, with <c>optim_bits</c> / <c>min_8bit_size</c> evaluated again). False if it had none.
    /// </summary>
    public bool ResetState(ParameterRef parameter)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(parameter);
        if (!_state.Remove(parameter, out ParameterState? state))
        {
            return false;
        }

        state.Dispose();
        return true;
    }

    /// <summary>The effective hyper-parameters of <paramref name="parameter"/>: group, then global and own overrides.</summary>
    /// <exception cref="ArgumentException">The parameter does not belong to this optimizer.</exception>
    public OptimizerSettings GetSettings(ParameterRef parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        ParameterGroup group = _groups.Find(g => g.Parameters.Contains(parameter))
            ?? throw new ArgumentException($"{parameter.Describe()} does not belong to this optimizer", nameof(parameter));
        return Resolve(group, parameter);
    }

    /// <summary>
    /// One optimizer step over every parameter that has a gradient. Validates everything first (gradients, settings,
    /// state allocation, non-finite gradients under the Error policy), so a failure leaves every parameter and state
    /// unchanged.
    /// </summary>
    /// <exception cref="BnbInvalidArgumentException">Bad gradient (non-finite under the Error policy).</exception>
    /// <exception cref="ArgumentException">A setting is out of range or not supported by this optimizer.</exception>
    /// <exception cref="BnbOutOfMemoryException">State could not be allocated.</exception>
    public void Step()
    {
        ThrowIfDisposed();
        var work = new List<(ParameterRef P, OptimizerSettings S, ParameterState State)>();
        var created = new List<ParameterState>();
        try
        {
            foreach (ParameterGroup group in _groups)
            {
                foreach (ParameterRef p in group.Parameters)
                {
                    if (!p.HasGradient)
                    {
                        continue;
                    }

                    OptimizerSettings s = Resolve(group, p);
                    ParameterState? state = _state.GetValueOrDefault(p);
                    if (state is null)
                    {
                        state = CreateState(p, s);
                        created.Add(state);
                    }

                    CheckParameterSettings(p, s, state.IsEightBit);
                    work.Add((p, s, state));
                }
            }

            if (Context.NonFinitePolicy == NonFinitePolicy.Error && work.Count > 1)
            {
                foreach (var (p, _, _) in work)
                {
                    CheckFinite(p);
                }
            }
        }
        catch
        {
            foreach (ParameterState s in created)
            {
                s.Dispose();
            }

            throw;
        }

        foreach (ParameterState s in created)
        {
            _state[s.Parameter] = s;
        }

        foreach (var (p, s, state) in work)
        {
            Update(p, s, state);
        }
    }

    /// <summary>Frees all state (the parameters stay the caller's).</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (ParameterState s in _state.Values)
        {
            s.Dispose();
        }

        _state.Clear();
        GC.SuppressFinalize(this);
    }

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>bitsandbytes' restrictions on a complete group configuration (kind-specific).</summary>
    internal void CheckGroupSettings(OptimizerSettings s)
    {
        s.Validate(GetType().Name);
        CheckSettings(s, eightBit: s.OptimBits == 8);
    }

    /// <summary>Kind-specific rejections (as bitsandbytes raises them); <paramref name="eightBit"/> is the state width.</summary>
    private protected virtual void CheckSettings(OptimizerSettings s, bool eightBit)
    {
    }

    /// <summary>(β3, α) for this step: AdEMAMix's schedules; the settings' values otherwise.</summary>
    private protected virtual (double Beta3, double Alpha) Schedule(OptimizerSettings s, int step) => (s.Beta3 ?? 0, s.Alpha ?? 0);

    /// <summary>Whether this kind keeps a second state (Adam, AdamW, LAMB, AdEMAMix).</summary>
    internal bool TwoState => Kind is OptimizerKind.Adam or OptimizerKind.Lamb or OptimizerKind.AdEMAMix;

    internal static string KernelNameOf(OptimizerKind kind) => kind switch
    {
        OptimizerKind.Adam => "adam",
        OptimizerKind.Momentum => "momentum",
        OptimizerKind.RmsProp => "rmsprop",
        OptimizerKind.Adagrad => "adagrad",
        OptimizerKind.Lion => "lion",
        OptimizerKind.Lamb => "lamb",
        OptimizerKind.Lars => "lars",
        OptimizerKind.AdEMAMix => "ademamix",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown optimizer kind"),
    };

    private static float[] CodeTableOf(BnbContext context, CodeTable table)
    {
        var code = new float[256];
        context.Native.GetCodeTable((int)table, TensorRef.FromSpan<float>(code));
        return code;
    }

    private OptimizerSettings Resolve(ParameterGroup group, ParameterRef p) =>
        group.Settings.Merge(ParameterOverrides.Global.Get(p)).Merge(Overrides.Get(p));

    private void CheckParameterSettings(ParameterRef p, OptimizerSettings s, bool eightBit)
    {
        try
        {
            s.Validate(p.Describe());
            CheckSettings(s, eightBit);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"{p.Describe()}: {e.Message}", e.ParamName, e);
        }
    }

    /// <summary>Allocates zeroed state as bitsandbytes' init_state does (spec §3.2).</summary>
    private ParameterState CreateState(ParameterRef p, OptimizerSettings s)
    {
        long n = p.ElementCount;
        bool eightBit = s.OptimBits == 8 && n >= s.MinEightBitSize;
        long rows = Kind == OptimizerKind.AdEMAMix ? 2 : 1;
        long blocks = (n + BlockSize - 1) / BlockSize;
        bool paged = IsPaged && n >= PagedMinElements;
        var tensors = new List<StateBuffer>();
        try
        {
            DType stateType = eightBit ? DType.U8 : DType.F32;
            long[] s1Shape = rows == 2 ? [2, n] : [n];
            tensors.Add(NewBuffer("state1", stateType, s1Shape, paged));
            if (TwoState)
            {
                tensors.Add(NewBuffer("state2", stateType, [n], paged));
            }

            if (eightBit)
            {
                tensors.Add(NewBuffer("absmax1", DType.F32, rows == 2 ? [2, blocks] : [blocks], false));
                tensors.Add(NewBuffer("qmap1", DType.F32, [256], false));
                tensors[^1].CopyFrom(MemoryMarshal.AsBytes(_signedMap.AsSpan()));
                if (TwoState)
                {
                    tensors.Add(NewBuffer("absmax2", DType.F32, [blocks], false));
                    tensors.Add(NewBuffer("qmap2", DType.F32, [256], false));
                    tensors[^1].CopyFrom(MemoryMarshal.AsBytes(_unsignedMap.AsSpan()));
                }
            }

            return new ParameterState(this, p, eightBit, tensors);
        }
        catch
        {
            foreach (StateBuffer t in tensors)
            {
                t.Dispose();
            }

            throw;
        }
    }

    private StateBuffer NewBuffer(string name, DType dtype, long[] shape, bool paged)
    {
        if (!paged)
        {
            return new BackendStateBuffer(Context, name, dtype, shape);
        }

        PagedAllocator ??= new PagedAllocator(Context);
        if (PagedAllocator.Context != Context)
        {
            throw new InvalidOperationException($"the paged allocator belongs to context {PagedAllocator.Context.Device}, the optimizer runs on {Context.Device}");
        }

        return new PagedStateBuffer(PagedAllocator, name, dtype, shape);
    }

    private void Update(ParameterRef p, OptimizerSettings s, ParameterState state)
    {
        int step = state.Step + 1;
        double gnormScale = s.GradientNormScale ?? 1.0;
        int percentile = s.PercentileClipping ?? 100;
        if (percentile < 100)
        {
            StateBuffer history = state.Find("gnorm_vec") ?? AddTensor(state, "gnorm_vec", [100]);
            using StateLease h = history.Use();
            var (_, scale) = _kernels.PercentileClipping(p.Gradient, h.View, step, percentile);
            gnormScale *= scale;
        }

        var (beta3, alpha) = Schedule(s, step);
        var hp = new OptimizerStep
        {
            Kind = Kind,
            Step = step,
            LearningRate = s.LearningRate ?? 0,
            Beta1 = s.Beta1 ?? 0,
            Beta2 = s.Beta2 ?? 0,
            Beta3 = beta3,
            Alpha = alpha,
            Eps = s.Eps ?? 0,
            WeightDecay = s.WeightDecay ?? 0,
            GradientNormScale = gnormScale,
            MaxUnorm = state.IsEightBit ? 0 : s.MaxUnorm ?? 0,
            SkipZeros = s.SkipZeros ?? false,
            Rounding = Rounding,
        };

        // Paged state is mapped (loaded if it was evicted, and pinned) only for the duration of the update.
        bool two = state.Find("state2") is not null;
        using StateLease s1 = state.Get("state1").Use();
        using StateLease s2 = two ? state.Get("state2").Use() : default;
        if (state.IsEightBit)
        {
            using StateLease a1 = state.Get("absmax1").Use(), q1 = state.Get("qmap1").Use(write: false);
            using StateLease a2 = two ? state.Get("absmax2").Use() : default, q2 = two ? state.Get("qmap2").Use(write: false) : default;
            _kernels.Update8BitBlockwise(
                hp,
                p.Value,
                p.Gradient,
                s1.View,
                a1.View,
                q1.View,
                two ? s2.View : default,
                two ? a2.View : default,
                two ? q2.View : default);
        }
        else
        {
            float unorm = _kernels.Update32Bit(hp, p.Value, p.Gradient, s1.View, two ? s2.View : default);
            if (hp.MaxUnorm > 0)
            {
                StateBuffer u = state.Find("unorm_vec") ?? AddTensor(state, "unorm_vec", [1]);
                u.CopyFrom(MemoryMarshal.AsBytes(new ReadOnlySpan<float>(in unorm)));
            }
        }

        state.Step = step;
    }

    private StateBuffer AddTensor(ParameterState state, string name, long[] shape)
    {
        StateBuffer b = new BackendStateBuffer(Context, name, DType.F32, shape);
        state.Add(b);
        return b;
    }

    /// <summary>Throws, naming the parameter and index, when host gradient memory holds a NaN or Inf.</summary>
    private unsafe void CheckFinite(ParameterRef p)
    {
        TensorRef g = p.Gradient;
        if (g.Device is not null)
        {
            return; // device memory: the backend checks each parameter itself
        }

        long n = g.ElementCount;
        long bad;
        fixed (byte* data = g)
        {
            bad = g.DType switch
            {
                DType.F32 => FirstNonFinite(new ReadOnlySpan<uint>(data, checked((int)n)), 0x7F80_0000u),
                DType.F16 => FirstNonFinite(new ReadOnlySpan<ushort>(data, checked((int)n)), (ushort)0x7C00),
                _ => FirstNonFinite(new ReadOnlySpan<ushort>(data, checked((int)n)), (ushort)0x7F80),
            };
        }

        if (bad >= 0)
        {
            throw new BnbInvalidArgumentException(
                BnbStatus.NonFinite,
                $"{Context.Backend.Name}: optimizer step: the gradient of {p.Describe()} is not finite at index {bad}; no parameter was updated (context non-finite policy Error)",
                Context.Backend.Name,
                "optimizer_step");
        }
    }

    /// <summary>Index of the first element whose exponent bits are all ones (NaN or Inf), or -1.</summary>
    /// <remarks>
    /// The fast path streams: max(bits &amp; ~sign) over four vectors at a time, no branch per vector; |x| is non-finite
    /// exactly when its magnitude bits reach the all-ones exponent. Only a hit pays for the scalar search.
    /// </remarks>
    private static long FirstNonFinite<T>(ReadOnlySpan<T> bits, T exponentMask)
        where T : unmanaged, IBinaryInteger<T>, IMinMaxValue<T>
    {
        T magnitude = T.MaxValue >>> 1; // all bits but the sign
        int i = 0;
        if (Vector.IsHardwareAccelerated && bits.Length >= 4 * Vector<T>.Count)
        {
            var m = new Vector<T>(magnitude);
            Vector<T> max0 = Vector<T>.Zero, max1 = Vector<T>.Zero, max2 = Vector<T>.Zero, max3 = Vector<T>.Zero;
            ReadOnlySpan<Vector<T>> v = MemoryMarshal.Cast<T, Vector<T>>(bits);
            int k = 0;
            for (; k + 4 <= v.Length; k += 4)
            {
                max0 = Vector.Max(max0, v[k] & m);
                max1 = Vector.Max(max1, v[k + 1] & m);
                max2 = Vector.Max(max2, v[k + 2] & m);
                max3 = Vector.Max(max3, v[k + 3] & m);
            }

            if (!Vector.GreaterThanOrEqualAny(Vector.Max(Vector.Max(max0, max1), Vector.Max(max2, max3)), new Vector<T>(exponentMask)))
            {
                i = k * Vector<T>.Count; // everything before is finite
            }
        }

        for (; i < bits.Length; i++)
        {
            if ((bits[i] & exponentMask) == exponentMask)
            {
                return i;
            }
        }

        return -1;
    }
}
