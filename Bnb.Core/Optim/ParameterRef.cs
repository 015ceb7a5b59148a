using Bnb.Memory;

namespace Bnb.Optim;

/// <summary>
/// A trainable parameter for an <see cref="Optimizer"/>: a view of the caller's parameter memory and (once set) of
/// its gradient. Nothing is copied: the optimizer updates the parameter in place, and reads the gradient where the
/// caller's training loop wrote it.
/// </summary>
/// <remarks>
/// <para>Values and gradients are f32, <see cref="Half"/> or <see cref="BFloat16"/>, contiguous, and of the same dtype
/// and shape. They come from managed memory (arrays convert to <see cref="Memory{T}"/> implicitly; pinned only for
/// the duration of each native call), from native pointers owned by the caller (another framework's tensors), or from
/// <see cref="TensorHandle"/>s.</para>
/// <para>Identity matters: state, groups and per-parameter overrides are keyed by the <see cref="ParameterRef"/>
/// object (as bitsandbytes keys them by <c>id(p)</c>). A parameter without a gradient is skipped by
/// <see cref="Optimizer.Step"/>, like a torch parameter whose <c>grad</c> is None.</para>
/// </remarks>
public sealed class ParameterRef
{
    private ViewSource _value;
    private ViewSource? _gradient;

    private ParameterRef(ViewSource value, string? name)
    {
        if (!value.DType.IsFloatActivation())
        {
            throw new ArgumentException($"parameter {name ?? "(unnamed)"} has dtype {value.DType}; optimizers take f32, f16 or bf16 parameters", nameof(value));
        }

        _value = value;
        Name = name;
    }

    /// <summary>Optional name used in error messages and state files (e.g. <c>"encoder.layer.0.weight"</c>).</summary>
    public string? Name { get; }

    /// <summary>Element type of the parameter (and of its gradient).</summary>
    public DType DType => _value.DType;

    /// <summary>Shape of the parameter.</summary>
    public TensorShape Shape => _value.Shape;

    /// <summary>Number of elements.</summary>
    public long ElementCount => _value.Shape.ElementCount;

    /// <summary>True when a gradient is attached; <see cref="Optimizer.Step"/> skips the parameter otherwise.</summary>
    public bool HasGradient => _gradient is not null;

    /// <summary>A parameter over managed memory (an array converts implicitly), 1-D unless <paramref name="shape"/> is given.</summary>
    /// <param name="value">The parameter values; updated in place.</param>
    /// <param name="gradient">The gradient buffer (same length and type), or empty for none yet.</param>
    /// <param name="name">Optional name for errors and state files.</param>
    /// <param name="shape">Row-major shape (up to 4 dims) whose element count is the memory's length.</param>
    public static ParameterRef Create<T>(Memory<T> value, Memory<T> gradient = default, string? name = null, params long[] shape)
        where T : unmanaged
    {
        var p = new ParameterRef(ViewSource.Of(value, shape, name ?? "parameter"), name);
        if (!gradient.IsEmpty || value.IsEmpty)
        {
            p.SetGradient(gradient);
        }

        return p;
    }

    /// <summary>
    /// A parameter over native memory owned by the caller (e.g. another framework's CPU tensor). Both pointers must
    /// address <paramref name="shape"/>'s element count of contiguous <paramref name="dtype"/> elements for as long
    /// as the parameter is used.
    /// </summary>
    /// <param name="value">Address of the parameter values.</param>
    /// <param name="gradient">Address of the gradient, or 0 for none yet.</param>
    /// <param name="dtype">F32, F16 or BF16.</param>
    /// <param name="shape">Row-major shape (up to 4 dims).</param>
    /// <param name="name">Optional name for errors and state files.</param>
    public static ParameterRef FromPointers(nint value, nint gradient, DType dtype, ReadOnlySpan<long> shape, string? name = null)
    {
        var p = new ParameterRef(ViewSource.Of(value, dtype, shape), name);
        if (gradient != 0)
        {
            p.SetGradient(gradient);
        }

        return p;
    }

    /// <summary>A parameter over <see cref="TensorHandle"/>s (pinned memory or native pointers); the handles stay the caller's.</summary>
    public static ParameterRef FromHandles(TensorHandle value, TensorHandle? gradient = null, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(value);
        var p = new ParameterRef(ViewSource.Of(value), name);
        if (gradient is not null)
        {
            p.SetGradient(gradient);
        }

        return p;
    }

    /// <summary>Attaches (or replaces) the gradient with managed memory of the parameter's type and length.</summary>
    /// <exception cref="ArgumentException">Another element type or length than the parameter.</exception>
    public void SetGradient<T>(Memory<T> gradient)
        where T : unmanaged => SetGradient(ViewSource.Of(gradient, Shape.ToArray(), GradientName));

    /// <summary>Attaches (or replaces) the gradient with caller-owned native memory of the parameter's dtype and shape.</summary>
    public void SetGradient(nint gradient) =>
        SetGradient(ViewSource.Of(gradient == 0 ? throw new ArgumentNullException(nameof(gradient), $"{GradientName}: null pointer (use ClearGradient to detach)") : gradient, DType, Shape.ToArray()));

    /// <summary>Attaches (or replaces) the gradient with a <see cref="TensorHandle"/>.</summary>
    public void SetGradient(TensorHandle gradient)
    {
        ArgumentNullException.ThrowIfNull(gradient);
        SetGradient(ViewSource.Of(gradient));
    }

    /// <summary>Detaches the gradient: the next steps skip this parameter (its state is kept).</summary>
    public void ClearGradient() => _gradient = null;

    /// <summary>The parameter values as a view (for ops); pinned only while a native call uses it.</summary>
    public TensorRef Value => _value.View();

    /// <summary>The gradient as a read-only view.</summary>
    /// <exception cref="InvalidOperationException">No gradient is attached.</exception>
    public TensorRef Gradient => (_gradient ?? throw new InvalidOperationException($"{Describe()} has no gradient")).View();

    public override string ToString() => $"{Describe()} ({DType}, shape {Shape})";

    internal string Describe() => Name is null ? "parameter (unnamed)" : $"parameter '{Name}'";

    private string GradientName => $"gradient of {Describe()}";

    private void SetGradient(ViewSource gradient)
    {
        if (gradient.DType != DType)
        {
            throw new ArgumentException($"{GradientName} has dtype {gradient.DType} but the parameter is {DType}", nameof(gradient));
        }

        if (!gradient.Shape.Equals(Shape))
        {
            throw new ArgumentException($"{GradientName} has shape {gradient.Shape} but the parameter has shape {Shape}", nameof(gradient));
        }

        _gradient = gradient;
    }

    /// <summary>Where a view comes from: managed memory (pinned per call), a native pointer, or a handle.</summary>
    private abstract class ViewSource
    {
        public abstract DType DType { get; }

        public abstract TensorShape Shape { get; }

        public abstract TensorRef View();

        public static ViewSource Of<T>(Memory<T> memory, long[] shape, string what)
            where T : unmanaged
        {
            DType dtype = DTypes.Of<T>();
            TensorShape s = shape.Length == 0 ? TensorShape.Create(memory.Length) : TensorShape.Create(shape);
            if (s.ElementCount != memory.Length)
            {
                throw new ArgumentException($"{what}: shape {s} has {s.ElementCount} elements but the memory has {memory.Length}", nameof(memory));
            }

            return new MemorySource<T>(memory, dtype, s);
        }

        public static ViewSource Of(nint pointer, DType dtype, ReadOnlySpan<long> shape)
        {
            // Validates shape, dtype-independent; a null pointer is only accepted for an empty tensor.
            TensorRef view = TensorRef.FromPointer(pointer, dtype, shape);
            return new PointerSource(pointer, dtype, view.Shape);
        }

        public static ViewSource Of(TensorHandle handle)
        {
            TensorRef view = handle.AsRef();
            if (!view.IsContiguous)
            {
                throw new ArgumentException($"tensor handle {view.ToString()} is not contiguous; optimizers need contiguous parameters and gradients", nameof(handle));
            }

            return new HandleSource(handle);
        }
    }

    private sealed class MemorySource<T>(Memory<T> memory, DType dtype, TensorShape shape) : ViewSource
        where T : unmanaged
    {
        private readonly long[] _dims = shape.ToArray();

        public override DType DType => dtype;

        public override TensorShape Shape => shape;

        public override TensorRef View() => TensorRef.FromSpan(memory.Span, _dims);
    }

    private sealed class PointerSource(nint pointer, DType dtype, TensorShape shape) : ViewSource
    {
        private readonly long[] _dims = shape.ToArray();

        public override DType DType => dtype;

        public override TensorShape Shape => shape;

        public override TensorRef View() => TensorRef.FromPointer(pointer, dtype, _dims);
    }

    private sealed class HandleSource(TensorHandle handle) : ViewSource
    {
        public override DType DType => handle.DType;

        public override TensorShape Shape => handle.Shape;

        public override TensorRef View() => handle.AsRef();
    }
}
