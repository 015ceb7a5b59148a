using Bnb.Memory;
using Bnb.Quantization;
using Bnb.Serialization;

namespace Bnb.Nn;

/// <summary>
/// bitsandbytes' <c>Embedding8bit</c>: a table [NumEmbeddings, Dim] stored row-wise int8 (<c>CB</c>, <c>SCB</c>);
/// a lookup returns <c>CB[i] · SCB[i] / 127</c>.
/// </summary>
public sealed class Embedding8bit
{
    /// <summary>A table over already quantized rows.</summary>
    public Embedding8bit(Int8Weight table)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (table.CB.Length != (long)table.OutFeatures * table.InFeatures || table.SCB.Length != table.OutFeatures)
        {
            throw new ArgumentException($"CB has {table.CB.Length} and SCB {table.SCB.Length} values for [{table.OutFeatures}, {table.InFeatures}]", nameof(table));
        }

        Table = table;
    }

    /// <summary>CB [NumEmbeddings, Dim] and SCB [NumEmbeddings].</summary>
    public Int8Weight Table { get; }

    public int NumEmbeddings => Table.OutFeatures;

    public int Dim => Table.InFeatures;

    public long WeightBytes => Table.CB.Length + (4L * Table.SCB.Length);

    /// <summary>Quantizes a dense table [numEmbeddings, dim] (float, Half or BFloat16) row-wise, from fp16 as bitsandbytes does.</summary>
    public static Embedding8bit Quantize<T>(Quantizer quantizer, ReadOnlySpan<T> table, int numEmbeddings, int dim)
        where T : unmanaged =>
        new(Linear8bitLt.QuantizeWeight(quantizer, table, numEmbeddings, dim));

    /// <summary>Writes the rows of <paramref name="indices"/> into <paramref name="output"/> [indices.Length, Dim].</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index outside [0, NumEmbeddings).</exception>
    public void Forward<T>(ReadOnlySpan<int> indices, Span<T> output)
        where T : unmanaged
    {
        FloatData.RequireFloat<T>(nameof(output));
        FloatData.CheckMatrix(output.Length, indices.Length, Dim, nameof(output));
        Embeddings.CheckIndices(indices, NumEmbeddings);
        for (int r = 0; r < indices.Length; r++)
        {
            int row = indices[r];
            float scale = Table.SCB[row];
            ReadOnlySpan<sbyte> cb = Table.CB.AsSpan(row * Dim, Dim);
            Span<T> o = output.Slice(r * Dim, Dim);
            for (int c = 0; c < Dim; c++)
            {
                o[c] = FloatData.FromFloat<T>(cb[c] * scale / 127f);
            }
        }
    }

    /// <summary>Allocating float32 lookup: [indices.Length, Dim].</summary>
    public float[] Forward(ReadOnlySpan<int> indices)
    {
        var output = new float[checked(indices.Length * Dim)];
        Forward<float>(indices, output);
        return output;
    }
}

/// <summary>
/// bitsandbytes' <c>Embedding4bit</c> (<c>EmbeddingNF4</c>/<c>EmbeddingFP4</c>): a table [NumEmbeddings, Dim] stored as
/// NF4/FP4 without double quantization. When Dim is a multiple of the blocksize every row owns whole blocks, so a
/// lookup dequantizes only the selected rows; otherwise it dequantizes the table.
/// </summary>
public sealed class Embedding4bit
{
    private readonly Quantizer _quantizer;
    private readonly byte[] _packed;

    /// <summary>A table over an already quantized weight (shape [NumEmbeddings, Dim], plain absmax).</summary>
    public Embedding4bit(Quantizer quantizer, byte[] packed, QuantState state)
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        ArgumentNullException.ThrowIfNull(packed);
        ArgumentNullException.ThrowIfNull(state);
        if (state.QuantType is null || state.Nested || state.Shape.Length != 2 || state.Shape[0] > int.MaxValue || state.Shape[1] > int.MaxValue)
        {
            throw new ArgumentException("an Embedding4bit table needs a plain (not double-quantized) 4-bit state of shape [num_embeddings, dim]", nameof(state));
        }

        if (packed.Length != (state.ElementCount + 1) / 2)
        {
            throw new ArgumentException($"packed table has {packed.Length} bytes; [{state.Shape[0]}, {state.Shape[1]}] needs {(state.ElementCount + 1) / 2}", nameof(packed));
        }

        _quantizer = quantizer;
        _packed = packed;
        State = state;
    }

    public QuantState State { get; }

    public int NumEmbeddings => (int)State.Shape[0];

    public int Dim => (int)State.Shape[1];

    public long WeightBytes => _packed.Length + (4L * State.Absmax!.Length) + (4L * State.Code.Length);

    /// <summary>True when lookups dequantize only the selected rows (Dim is a multiple of the blocksize).</summary>
    public bool RowwiseLookup => Dim % State.Blocksize == 0;

    /// <summary>Quantizes a dense table [numEmbeddings, dim] (float, Half or BFloat16).</summary>
    public static Embedding4bit Quantize<T>(Quantizer quantizer, ReadOnlySpan<T> table, int numEmbeddings, int dim, QuantType quantType = QuantType.Nf4, int blocksize = 64)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        FloatData.RequireFloat<T>(nameof(table));
        FloatData.CheckMatrix(table.Length, numEmbeddings, dim, nameof(table));
        QuantizedTensor q = quantizer.Quantize4Bit(table, [numEmbeddings, dim], quantType, blocksize);
        return new Embedding4bit(quantizer, q.Data, q.State);
    }

    /// <summary>Writes the rows of <paramref name="indices"/> into <paramref name="output"/> [indices.Length, Dim].</summary>
    public void Forward<T>(ReadOnlySpan<int> indices, Span<T> output)
        where T : unmanaged
    {
        FloatData.RequireFloat<T>(nameof(output));
        FloatData.CheckMatrix(output.Length, indices.Length, Dim, nameof(output));
        Embeddings.CheckIndices(indices, NumEmbeddings);
        QuantType qt = State.QuantType!.Value;
        int bs = State.Blocksize;
        if (RowwiseLookup)
        {
            int rowBytes = Dim / 2, rowBlocks = Dim / bs;
            for (int r = 0; r < indices.Length; r++)
            {
                int row = indices[r];
                _quantizer.Dequantize4Bit(
                    TensorRef.FromReadOnlySpan<byte>(_packed.AsSpan(row * rowBytes, rowBytes)),
                    AbsmaxRef.Plain(TensorRef.FromReadOnlySpan<float>(State.Absmax.AsSpan(row * rowBlocks, rowBlocks))),
                    TensorRef.FromSpan(output.Slice(r * Dim, Dim)), qt, bs);
            }

            return;
        }

        float[] all = _quantizer.Dequantize4Bit<float>(_packed, State);
        for (int r = 0; r < indices.Length; r++)
        {
            FloatData.Convert<float, T>(all.AsSpan(indices[r] * Dim, Dim), output.Slice(r * Dim, Dim));
        }
    }

    /// <summary>Allocating float32 lookup: [indices.Length, Dim].</summary>
    public float[] Forward(ReadOnlySpan<int> indices)
    {
        var output = new float[checked(indices.Length * Dim)];
        Forward<float>(indices, output);
        return output;
    }
}

internal static class Embeddings
{
    public static void CheckIndices(ReadOnlySpan<int> indices, int count)
    {
        for (int i = 0; i < indices.Length; i++)
        {
            if ((uint)indices[i] >= (uint)count)
            {
                throw new ArgumentOutOfRangeException(nameof(indices), indices[i], $"index {i} is {indices[i]}; the table has {count} rows");
            }
        }
    }
}
