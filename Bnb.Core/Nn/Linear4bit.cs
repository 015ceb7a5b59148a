using System.Runtime.InteropServices;
using Bnb.Dense;
using Bnb.Errors;
using Bnb.Memory;
using Bnb.Quantization;
using Bnb.Runtime;
using Bnb.Serialization;

namespace Bnb.Nn;

/// <summary>
/// bitsandbytes' <c>Linear4bit</c> (inference and frozen-base training): W [Out, In] stored as packed NF4/FP4 with
/// one absmax per block (optionally double-quantized), <c>y = x · dequant(W)ᵀ + b</c> computed by the backend's
/// 4-bit GEMV/GEMM in <see cref="ComputeDType"/>, the result cast back to the input's type.
/// </summary>
/// <remarks>
/// <para>When the backend offers its own packed weight layout (<see cref="WeightFormatFlags.Backend"/>), the weight
/// is repacked once into it and the forward uses that fast path; the standard bitsandbytes bytes are kept for
/// saving and for the backward pass.</para>
/// <para>The weight is frozen: <see cref="BackwardInput"/> gives the input gradient through dequant(W), as
/// bitsandbytes' <c>MatMul4Bit</c> does; adapters (<see cref="LoraLinear"/>) are what trains.</para>
/// </remarks>
public sealed class Linear4bit : IQuantizedLinear
{
    private readonly Quantizer _quantizer;
    private readonly byte[] _packed;
    private readonly byte[]? _backendPacked;
    private Array? _computeBias;

    /// <summary>A layer over an already quantized weight (from <see cref="Quantize{T}"/> or a checkpoint).</summary>
    /// <param name="quantizer">Backend the layer runs on.</param>
    /// <param name="packed">Standard packed codes of W [Out, In] (<c>(Out·In + 1) / 2</c> bytes).</param>
    /// <param name="state">Its 4-bit quant state; shape must be [Out, In].</param>
    /// <param name="bias">Optional bias [Out].</param>
    /// <param name="computeDType">F32, F16 or BF16; null = the state's dtype (the original weight dtype).</param>
    /// <param name="useBackendLayout">Use the backend's packed layout when it has one.</param>
    public Linear4bit(Quantizer quantizer, byte[] packed, QuantState state, float[]? bias = null, DType? computeDType = null, bool useBackendLayout = true)
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        ArgumentNullException.ThrowIfNull(packed);
        ArgumentNullException.ThrowIfNull(state);
        if (state.QuantType is null)
        {
            throw new ArgumentException("the state is not a 4-bit (NF4/FP4) state", nameof(state));
        }

        if (state.Shape.Length != 2 || state.Shape[0] > int.MaxValue || state.Shape[1] > int.MaxValue)
        {
            throw new ArgumentException($"a Linear4bit weight must have shape [out_features, in_features], not [{string.Join(", ", state.Shape)}]", nameof(state));
        }

        if (packed.Length != (state.ElementCount + 1) / 2)
        {
            throw new ArgumentException($"packed weight has {packed.Length} bytes; [{state.Shape[0]}, {state.Shape[1]}] needs {(state.ElementCount + 1) / 2}", nameof(packed));
        }

        if (bias is not null && bias.Length != state.Shape[0])
        {
            throw new ArgumentException($"bias has {bias.Length} values; the layer has {state.Shape[0]} outputs", nameof(bias));
        }

        float[] table = quantizer.GetCodeTable(state.QuantType.Value.Table());
        if (!MemoryMarshal.AsBytes(table.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(state.Code.AsSpan())))
        {
            throw new ArgumentException($"the state's quant_map is not the {state.QuantType.Value.Name()} table; custom 4-bit code tables are not supported", nameof(state));
        }

        ComputeDType = computeDType ?? (state.DType.IsFloatActivation() ? state.DType : DType.F32);
        if (!ComputeDType.IsFloatActivation())
        {
            throw new ArgumentException($"compute dtype {ComputeDType} is not F32, F16 or BF16", nameof(computeDType));
        }

        _quantizer = quantizer;
        _packed = packed;
        State = state;
        Bias = bias;
        OutFeatures = (int)state.Shape[0];
        InFeatures = (int)state.Shape[1];
        if (useBackendLayout && quantizer.Context.Backend.Capabilities.WeightFormats.HasFlag(WeightFormatFlags.Backend))
        {
            try
            {
                _backendPacked = quantizer.WeightPack(WeightFormat.Backend, packed, OutFeatures, InFeatures, state.Blocksize);
            }
            catch (BnbException)
            {
                // The backend's layout does not cover this shape/blocksize: the standard layout always works.
                _backendPacked = null;
            }
        }
    }

    public int InFeatures { get; }

    public int OutFeatures { get; }

    public float[]? Bias { get; }

    /// <summary>The quant state (absmax, quant map, shape, dtype, blocksize, quant type).</summary>
    public QuantState State { get; }

    public QuantType QuantType => State.QuantType!.Value;

    /// <summary>The dtype the matmul runs in (bitsandbytes' <c>compute_dtype</c>).</summary>
    public DType ComputeDType { get; }

    /// <summary>True when the forward uses the backend's own packed layout.</summary>
    public bool UsesBackendLayout => _backendPacked is not null;

    /// <summary>The standard bitsandbytes packed bytes (what checkpoints hold).</summary>
    public ReadOnlySpan<byte> PackedWeight => _packed;

    public long WeightBytes => _packed.Length + (State.Nested
        ? State.QuantizedAbsmax!.Length + (4L * State.State2!.Absmax!.Length) + (4L * State.State2.Code.Length)
        : 4L * State.Absmax!.Length) + (4L * State.Code.Length);

    /// <summary>Quantizes a dense weight W [outFeatures, inFeatures] (float, Half or BFloat16) like bitsandbytes' <c>Params4bit</c>.</summary>
    /// <param name="quantizer">Backend that quantizes and later runs the layer.</param>
    /// <param name="weight">W row-major.</param>
    /// <param name="outFeatures">N.</param>
    /// <param name="inFeatures">K.</param>
    /// <param name="bias">Optional bias [N].</param>
    /// <param name="quantType">NF4 or FP4 (bitsandbytes' Linear4bit default is FP4; most models use NF4).</param>
    /// <param name="blocksize">Elements per absmax block (default 64).</param>
    /// <param name="doubleQuant">Double-quantize the absmax (<c>compress_statistics</c>).</param>
    /// <param name="computeDType">Compute dtype; null = <typeparamref name="T"/>'s dtype.</param>
    public static Linear4bit Quantize<T>(Quantizer quantizer, ReadOnlySpan<T> weight, int outFeatures, int inFeatures, float[]? bias = null,
        QuantType quantType = QuantType.Nf4, int blocksize = 64, bool doubleQuant = false, DType? computeDType = null)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        FloatData.RequireFloat<T>(nameof(weight));
        FloatData.CheckMatrix(weight.Length, outFeatures, inFeatures, nameof(weight));
        QuantizedTensor q = quantizer.Quantize4Bit(weight, [outFeatures, inFeatures], quantType, blocksize, doubleQuant);
        return new Linear4bit(quantizer, q.Data, q.State, bias, computeDType);
    }

    /// <summary>Loads the layer at <paramref name="prefix"/> of a bitsandbytes checkpoint (see <see cref="BnbCheckpoint"/>).</summary>
    /// <exception cref="CheckpointFormatException">Missing keys, wrong dtypes or shapes; the message names the tensor.</exception>
    public static Linear4bit FromCheckpoint(Quantizer quantizer, SafetensorsFile file, string prefix, DType? computeDType = null)
    {
        FourBitWeight w = BnbCheckpoint.Read4Bit(file, prefix);
        if (w.State.Shape.Length != 2)
        {
            throw new CheckpointFormatException($"has shape [{string.Join(", ", w.State.Shape)}]; a linear weight is 2-D", BnbCheckpoint.Key(prefix, "weight"), file.Source);
        }

        float[]? bias = BnbCheckpoint.ReadBias(file, prefix, w.State.Shape[0]);
        try
        {
            return new Linear4bit(quantizer, w.Packed, w.State, bias, computeDType);
        }
        catch (ArgumentException e)
        {
            throw new CheckpointFormatException(e.Message, BnbCheckpoint.Key(prefix, "weight"), file.Source, e);
        }
    }

    /// <summary>The checkpoint entries of this layer under <paramref name="prefix"/>: weight + quant state (+ bias in <paramref name="biasDType"/>, the model's dtype).</summary>
    public IReadOnlyList<SafetensorsEntry> ToCheckpointEntries(string prefix, SafetensorsDType biasDType = SafetensorsDType.F32) =>
        BnbCheckpoint.WithBias(BnbCheckpoint.Entries4Bit(prefix, _packed, State), prefix, Bias, biasDType);

    public void Forward<T>(ReadOnlySpan<T> input, int rows, Span<T> output)
        where T : unmanaged
    {
        FloatData.RequireFloat<T>(nameof(input));
        FloatData.CheckMatrix(input.Length, rows, InFeatures, nameof(input));
        FloatData.CheckMatrix(output.Length, rows, OutFeatures, nameof(output));
        switch (ComputeDType)
        {
            case DType.F32: Run<T, float>(input, rows, output); break;
            case DType.F16: Run<T, Half>(input, rows, output); break;
            default: Run<T, BFloat16>(input, rows, output); break;
        }
    }

    public void Forward(TensorRef input, TensorRef output) => QuantizedLinearExtensions.ForwardTensor(this, input, output);

    public void BackwardInput(ReadOnlySpan<float> gradOutput, int rows, Span<float> gradInput)
    {
        FloatData.CheckMatrix(gradOutput.Length, rows, OutFeatures, nameof(gradOutput));
        FloatData.CheckMatrix(gradInput.Length, rows, InFeatures, nameof(gradInput));
        float[] w = DequantizeWeight();
        Gemm.MatMul(gradOutput, w, gradInput, rows, InFeatures, OutFeatures);
    }

    public float[] DequantizeWeight() => _quantizer.Dequantize4Bit<float>(_packed, State);

    /// <summary>Casts to the compute type, runs the 4-bit matmul, casts back (bitsandbytes' Linear4bit.forward).</summary>
    private void Run<T, TC>(ReadOnlySpan<T> input, int rows, Span<T> output)
        where T : unmanaged
        where TC : unmanaged
    {
        if (rows == 0)
        {
            return;
        }

        bool same = typeof(T) == typeof(TC);
        TC[]? xBuffer = same ? null : new TC[input.Length];
        TC[]? yBuffer = same ? null : new TC[output.Length];
        if (xBuffer is not null)
        {
            FloatData.Convert(input, xBuffer.AsSpan());
        }

        ReadOnlySpan<TC> x = same ? MemoryMarshal.Cast<T, TC>(input) : xBuffer;
        Span<TC> y = same ? MemoryMarshal.Cast<T, TC>(output) : yBuffer;
        TensorRef bias = Bias is null ? default : TensorRef.FromReadOnlySpan<TC>(ComputeBias<TC>());
        TensorRef a = TensorRef.FromReadOnlySpan(x, rows, InFeatures);
        TensorRef o = TensorRef.FromSpan(y, rows, OutFeatures);
        WeightFormat format = _backendPacked is null ? WeightFormat.Standard : WeightFormat.Backend;
        TensorRef w = TensorRef.FromReadOnlySpan<byte>(_backendPacked ?? _packed);
        if (rows <= 16)
        {
            _quantizer.Gemv4Bit(a, w, State, o, bias, format);
        }
        else
        {
            _quantizer.Gemm4Bit(a, w, State, o, bias, format);
        }

        if (yBuffer is not null)
        {
            FloatData.Convert<TC, T>(yBuffer, output);
        }
    }

    /// <summary>The bias cast to the compute dtype (bitsandbytes casts it before the matmul).</summary>
    private TC[] ComputeBias<TC>()
        where TC : unmanaged
    {
        if (_computeBias is not TC[] cached)
        {
            cached = new TC[Bias!.Length];
            FloatData.Convert<float, TC>(Bias, cached);
            _computeBias = cached;
        }

        return cached;
    }
}
