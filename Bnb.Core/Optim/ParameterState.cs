using Bnb.Memory;
using Bnb.Quantization;

namespace Bnb.Optim;

/// <summary>
/// The optimizer state of one parameter (bitsandbytes' <c>optimizer.state[p]</c>): the step count and the state
/// tensors under bitsandbytes' names.
/// </summary>
/// <remarks>
/// Tensors: <c>state1</c> (and <c>state2</c> for Adam/AdamW/LAMB/AdEMAMix) as float32 — or, in 8 bits, uint8 codes
/// with per-256-element <c>absmax1</c>/<c>absmax2</c> scales and the code tables <c>qmap1</c> (signed dynamic map) and
/// <c>qmap2</c> (unsigned); AdEMAMix's <c>state1</c> is [2, n] (fast EMA, then slow EMA) and its <c>absmax1</c>
/// [2, blocks]. <c>unorm_vec</c> (f32 [1], the last update norm) exists when <c>max_unorm</c> &gt; 0,
/// <c>gnorm_vec</c> (f32 [100], gradient-norm history) when percentile clipping is on.
/// </remarks>
public sealed class ParameterState
{
    private readonly List<StateBuffer> _tensors;
    private readonly Optimizer _owner;

    internal ParameterState(Optimizer owner, ParameterRef parameter, bool eightBit, List<StateBuffer> tensors)
    {
        _owner = owner;
        Parameter = parameter;
        IsEightBit = eightBit;
        _tensors = tensors;
    }

    /// <summary>The parameter this state belongs to.</summary>
    public ParameterRef Parameter { get; }

    /// <summary>Updates applied so far (bitsandbytes' <c>state["step"]</c>); the next update uses Step + 1.</summary>
    public int Step { get; internal set; }

    /// <summary>True when state1/state2 are 8-bit blockwise codes, false for float32 state.</summary>
    public bool IsEightBit { get; }

    /// <summary>True when state1/state2 live in paged memory.</summary>
    public bool IsPaged => _tensors.Any(t => t.IsPaged);

    /// <summary>Names of the state tensors present (bitsandbytes keys).</summary>
    public IReadOnlyList<string> TensorNames => [.. _tensors.Select(t => t.Name)];

    /// <summary>Bytes of state held for this parameter (all tensors).</summary>
    public long StateBytes => _tensors.Sum(t => t.Bytes);

    /// <summary>The last update norm (<c>unorm_vec[0]</c>) when <c>max_unorm</c> &gt; 0, else null.</summary>
    public float? UpdateNorm => Find("unorm_vec") is { } u ? u.ToArray<float>()[0] : null;

    /// <summary>The dtype and shape of state tensor <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such tensor.</exception>
    public (DType DType, long[] Shape) Describe(string name)
    {
        StateBuffer t = Get(name);
        return (t.DType, (long[])t.Shape.Clone());
    }

    /// <summary>A copy of state tensor <paramref name="name"/> (raw: uint8 codes for 8-bit states).</summary>
    /// <exception cref="KeyNotFoundException">No such tensor.</exception>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> is not the tensor's element type.</exception>
    public T[] GetTensor<T>(string name)
        where T : unmanaged
    {
        StateBuffer t = Get(name);
        if (DTypes.Of<T>() != t.DType)
        {
            throw new ArgumentException($"state tensor '{name}' is {t.DType}, not {DTypes.Of<T>()}", nameof(T));
        }

        _owner.ThrowIfDisposed();
        return t.ToArray<T>();
    }

    /// <summary>The raw little-endian bytes of state tensor <paramref name="name"/>, whatever its dtype.</summary>
    /// <exception cref="KeyNotFoundException">No such tensor.</exception>
    public byte[] GetBytes(string name)
    {
        _owner.ThrowIfDisposed();
        return Get(name).ToArray<byte>();
    }

    /// <summary>state1 as float32 (dequantized with qmap1/absmax1 when 8-bit); AdEMAMix: 2·n values (fast EMA, then slow).</summary>
    public float[] DequantizeState1() => Dequantize("state1", "absmax1", "qmap1");

    /// <summary>state2 as float32 (dequantized when 8-bit), or null for 1-state optimizers.</summary>
    public float[]? DequantizeState2() => Find("state2") is null ? null : Dequantize("state2", "absmax2", "qmap2");

    /// <summary>Frees the state memory (<see cref="Optimizer.ResetState"/>, <see cref="Optimizer.Dispose"/>, a replaced state).</summary>
    internal void Dispose()
    {
        foreach (StateBuffer t in _tensors)
        {
            t.Dispose();
        }
    }

    internal IReadOnlyList<StateBuffer> Tensors => _tensors;

    internal StateBuffer? Find(string name) => _tensors.Find(t => t.Name == name);

    internal StateBuffer Get(string name) =>
        Find(name) ?? throw new KeyNotFoundException($"the state of {Parameter.Describe()} has no tensor '{name}' (it has {string.Join(", ", _tensors.Select(t => t.Name))})");

    internal void Add(StateBuffer buffer) => _tensors.Add(buffer);

    private float[] Dequantize(string state, string absmax, string qmap)
    {
        _owner.ThrowIfDisposed();
        StateBuffer s = Get(state);
        if (!IsEightBit)
        {
            return s.ToArray<float>();
        }

        byte[] codes = s.ToArray<byte>();
        float[] scales = Get(absmax).ToArray<float>();
        float[] code = Get(qmap).ToArray<float>();
        var result = new float[codes.Length];
        var q = new Quantizer(_owner.Context);
        long n = Parameter.ElementCount;
        long blocks = (n + Optimizer.BlockSize - 1) / Optimizer.BlockSize;

        // AdEMAMix keeps two EMAs back to back, each with its own row of absmax.
        for (int row = 0; row < codes.Length / Math.Max(n, 1); row++)
        {
            q.DequantizeBlockwise(
                TensorRef.FromReadOnlySpan<byte>(codes.AsSpan((int)(row * n), (int)n)),
                AbsmaxRef.Plain(TensorRef.FromReadOnlySpan<float>(scales.AsSpan((int)(row * blocks), (int)blocks))),
                TensorRef.FromReadOnlySpan<float>(code),
                Optimizer.BlockSize,
                TensorRef.FromSpan<float>(result.AsSpan((int)(row * n), (int)n)));
        }

        return result;
    }
}
