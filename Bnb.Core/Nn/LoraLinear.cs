using Bnb.Dense;

namespace Bnb.Nn;

/// <summary>
/// A LoRA adapter over a frozen quantized linear layer (QLoRA): <c>y = base(x) + s · (x · Aᵀ) · Bᵀ</c> with
/// A [Rank, In], B [Out, Rank] trainable in float32 and <c>s = Alpha / Rank</c>. B starts at zero, so a fresh
/// adapter leaves the base layer's output unchanged.
/// </summary>
/// <remarks>
/// Backward for a batch x [rows, In] with upstream gradient g [rows, Out] and h = x · Aᵀ [rows, Rank]:
/// <code>
///   dB += s · gᵀ · h          [Out, Rank]
///   dh  = s · g · B           [rows, Rank]
///   dA += dhᵀ · x             [Rank, In]
///   dx  = g · dequant(W) + dh · A        (through the frozen base weight, then the adapter)
/// </code>
/// The forward keeps x and h for the next <see cref="Backward"/>.
/// </remarks>
public sealed class LoraLinear
{
    private float[] _x = [];
    private float[] _h = [];
    private int _rows = -1;

    /// <param name="baseLayer">The frozen 4-bit or 8-bit layer.</param>
    /// <param name="rank">Adapter rank r ≥ 1.</param>
    /// <param name="alpha">Scale numerator (<c>s = alpha / r</c>).</param>
    /// <param name="seed">Seed of A's initialisation (uniform ±1/√In, as PyTorch's Kaiming-uniform with a = √5).</param>
    public LoraLinear(IQuantizedLinear baseLayer, int rank, float alpha, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rank);
        if (!float.IsFinite(alpha))
        {
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "alpha must be finite");
        }

        Base = baseLayer;
        Rank = rank;
        Alpha = alpha;
        A = new float[rank * baseLayer.InFeatures];
        B = new float[baseLayer.OutFeatures * rank];
        GradA = new float[A.Length];
        GradB = new float[B.Length];
        var rng = new Random(seed);
        float bound = 1f / MathF.Sqrt(Math.Max(baseLayer.InFeatures, 1));
        for (int i = 0; i < A.Length; i++)
        {
            A[i] = (float)(((rng.NextDouble() * 2) - 1) * bound);
        }
    }

    public IQuantizedLinear Base { get; }

    public int Rank { get; }

    public float Alpha { get; }

    public float Scale => Alpha / Rank;

    public int InFeatures => Base.InFeatures;

    public int OutFeatures => Base.OutFeatures;

    /// <summary>Down projection [Rank, In] (trainable).</summary>
    public float[] A { get; }

    /// <summary>Up projection [Out, Rank] (trainable, starts at zero).</summary>
    public float[] B { get; }

    /// <summary>Accumulated gradient of A.</summary>
    public float[] GradA { get; }

    /// <summary>Accumulated gradient of B.</summary>
    public float[] GradB { get; }

    /// <summary><c>output[rows, Out] = base(input) + s · (input · Aᵀ) · Bᵀ</c>; remembers input for <see cref="Backward"/>.</summary>
    public void Forward(ReadOnlySpan<float> input, int rows, Span<float> output)
    {
        FloatData.CheckMatrix(input.Length, rows, InFeatures, nameof(input));
        FloatData.CheckMatrix(output.Length, rows, OutFeatures, nameof(output));
        var h = new float[rows * Rank];
        Gemm.MatMulTransposedB(input, A, h, rows, Rank, InFeatures);
        Base.Forward(input, rows, output);
        var scaled = (float[])h.Clone();
        RowOps.Scale(scaled, Scale);
        Gemm.Multiply(scaled, Rank, false, B, Rank, true, output, OutFeatures, rows, OutFeatures, Rank, accumulate: true);
        _x = input.ToArray();
        _h = h;
        _rows = rows;
    }

    /// <summary>Allocating forward: [rows, Out].</summary>
    public float[] Forward(ReadOnlySpan<float> input, int rows)
    {
        var output = new float[checked(rows * OutFeatures)];
        Forward(input, rows, output);
        return output;
    }

    /// <summary>
    /// Accumulates A's and B's gradients for the last forward's input and writes the input gradient into
    /// <paramref name="gradInput"/> (pass an empty span to skip it).
    /// </summary>
    /// <exception cref="InvalidOperationException">No forward ran since the last backward.</exception>
    public void Backward(ReadOnlySpan<float> gradOutput, Span<float> gradInput)
    {
        if (_rows < 0)
        {
            throw new InvalidOperationException("Backward needs a preceding Forward (its input is what the gradients are taken at)");
        }

        int rows = _rows;
        FloatData.CheckMatrix(gradOutput.Length, rows, OutFeatures, nameof(gradOutput));
        if (!gradInput.IsEmpty)
        {
            FloatData.CheckMatrix(gradInput.Length, rows, InFeatures, nameof(gradInput));
        }

        var g = gradOutput.ToArray();
        RowOps.Scale(g, Scale);

        // dB += (s·g)ᵀ · h ;  dh = (s·g) · B ;  dA += dhᵀ · x
        Gemm.Multiply(g, OutFeatures, true, _h, Rank, false, GradB, Rank, OutFeatures, Rank, rows, accumulate: true);
        var dh = new float[rows * Rank];
        Gemm.MatMul(g, B, dh, rows, Rank, OutFeatures);
        Gemm.Multiply(dh, Rank, true, _x, InFeatures, false, GradA, InFeatures, Rank, InFeatures, rows, accumulate: true);

        if (!gradInput.IsEmpty)
        {
            Base.BackwardInput(gradOutput, rows, gradInput);
            Gemm.Multiply(dh, Rank, false, A, InFeatures, false, gradInput, InFeatures, rows, InFeatures, Rank, accumulate: true);
        }

        _rows = -1;
    }

    public void ZeroGrad()
    {
        Array.Clear(GradA);
        Array.Clear(GradB);
    }
}
