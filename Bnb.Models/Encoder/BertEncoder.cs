using Bnb.Dense;

namespace Bnb.Models.Encoder;

/// <summary>
/// The BERT encoder forward pass on Bnb's managed kernels, producing mean-pooled sentence embeddings
/// (sentence-transformers' pooling for all-MiniLM-L6-v2; no normalization — cosine similarity is unaffected).
/// </summary>
/// <remarks>
/// <para>Sentences are not padded: the token rows of a batch are stacked into one [tokens × hidden] matrix, so every
/// row-wise step (linear layers, LayerNorm, GELU) runs once over the whole batch, and only attention looks at each
/// sentence's own rows. This gives the same result as a padded batch with an attention mask.</para>
/// <para>Per layer: q,k,v = x·W(q,k,v) + b; per sentence and head: softmax(q·kᵀ/√d)·v; x = LN(x + ctx·Wo + bo);
/// x = LN(x + GELU(x·W1 + b1)·W2 + b2).</para>
/// </remarks>
public sealed class BertEncoder
{
    private readonly BertWeights _weights;
    private readonly IEncoderLinear[][] _linears; // per layer: q, k, v, attention output, intermediate, output

    /// <param name="weights">The encoder's weights.</param>
    /// <param name="createLinear">Builds each of the linear layers (fp32, int8, 4-bit, …) from its exported weights.</param>
    public BertEncoder(BertWeights weights, Func<LinearWeights, IEncoderLinear> createLinear)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(createLinear);
        _weights = weights;
        _linears = [.. weights.Layers.Select(l => l.Linears.Select(createLinear).ToArray())];
    }

    public BertWeights Weights => _weights;

    public int Dimension => _weights.HiddenSize;

    /// <summary>Bytes of all linear-layer weights as stored (embeddings and LayerNorms stay fp32 and are not counted).</summary>
    public long LinearWeightBytes => _linears.Sum(l => l.Sum(x => x.WeightBytes));

    /// <summary>Mean-pooled embeddings of tokenized sentences, [sentences × hidden] row-major.</summary>
    /// <exception cref="ArgumentException">An empty sentence, a token id outside the vocabulary, or more tokens than positions.</exception>
    public float[] Embed(IReadOnlyList<int[]> sentences)
    {
        ArgumentNullException.ThrowIfNull(sentences);
        int h = _weights.HiddenSize;
        var starts = new int[sentences.Count + 1];
        for (int s = 0; s < sentences.Count; s++)
        {
            int[] ids = sentences[s];
            if (ids is null || ids.Length == 0)
            {
                throw new ArgumentException($"sentence {s} has no tokens", nameof(sentences));
            }

            if (ids.Length > _weights.MaxPositions)
            {
                throw new ArgumentException($"sentence {s} has {ids.Length} tokens, the model has {_weights.MaxPositions} positions", nameof(sentences));
            }

            foreach (int id in ids)
            {
                if ((uint)id >= (uint)_weights.VocabularySize)
                {
                    throw new ArgumentException($"sentence {s}: token id {id} is outside the vocabulary of {_weights.VocabularySize}", nameof(sentences));
                }
            }

            starts[s + 1] = starts[s] + ids.Length;
        }

        int tokens = starts[^1];
        var result = new float[sentences.Count * h];
        if (tokens == 0)
        {
            return result;
        }

        float[] x = EmbedTokens(sentences, tokens);
        var q = new float[tokens * h];
        var k = new float[tokens * h];
        var v = new float[tokens * h];
        var ctx = new float[tokens * h];
        var ffn = new float[tokens * _weights.IntermediateSize];
        for (int l = 0; l < _weights.Layers.Count; l++)
        {
            var lw = _weights.Layers[l];
            var lin = _linears[l];
            lin[0].Forward(x, tokens, q);
            lin[1].Forward(x, tokens, k);
            lin[2].Forward(x, tokens, v);
            Attention(q, k, v, ctx, starts);
            lin[3].Forward(ctx, tokens, q); // q is free again: attention output projection
            RowOps.Add(x, q);
            RowOps.LayerNorm(x, lw.AttentionNormGamma, lw.AttentionNormBeta, _weights.LayerNormEpsilon);
            lin[4].Forward(x, tokens, ffn);
            RowOps.Gelu(ffn);
            lin[5].Forward(ffn, tokens, q);
            RowOps.Add(x, q);
            RowOps.LayerNorm(x, lw.OutputNormGamma, lw.OutputNormBeta, _weights.LayerNormEpsilon);
        }

        for (int s = 0; s < sentences.Count; s++)
        {
            RowOps.MeanRows(x.AsSpan(starts[s] * h, (starts[s + 1] - starts[s]) * h), h, result.AsSpan(s * h, h));
        }

        return result;
    }

    /// <summary>word + position + token type 0, then LayerNorm.</summary>
    private float[] EmbedTokens(IReadOnlyList<int[]> sentences, int tokens)
    {
        int h = _weights.HiddenSize;
        var x = new float[tokens * h];
        int row = 0;
        foreach (int[] ids in sentences)
        {
            for (int p = 0; p < ids.Length; p++, row++)
            {
                var dst = x.AsSpan(row * h, h);
                _weights.WordEmbeddingTable.AsSpan(ids[p] * h, h).CopyTo(dst);
                RowOps.Add(dst, _weights.PositionEmbeddingTable.AsSpan(p * h, h));
                RowOps.Add(dst, _weights.TokenTypeEmbedding);
            }
        }

        RowOps.LayerNorm(x, _weights.EmbeddingNormGamma, _weights.EmbeddingNormBeta, _weights.LayerNormEpsilon);
        return x;
    }

    /// <summary>Scaled dot-product attention per (sentence, head), in parallel; each task writes its own ctx block.</summary>
    private void Attention(float[] q, float[] k, float[] v, float[] ctx, int[] starts)
    {
        int h = _weights.HiddenSize, heads = _weights.Heads, d = h / heads;
        int sentences = starts.Length - 1;
        float scale = 1f / MathF.Sqrt(d);
        Parallel.For(0, sentences * heads, task =>
        {
            int s = task / heads, head = task % heads;
            int r0 = starts[s], len = starts[s + 1] - r0;
            float[] scores = System.Buffers.ArrayPool<float>.Shared.Rent(len * len);
            try
            {
                var sc = scores.AsSpan(0, len * len);
                int offset = (r0 * h) + (head * d);

                // scores[len × len] = q_h · k_hᵀ, q_h and k_h being d-column slices of rows r0.. (row stride h).
                Gemm.Multiply(q.AsSpan(offset), h, false, k.AsSpan(offset), h, true, sc, len, len, len, d, maxThreads: 1);
                RowOps.Scale(sc, scale);
                RowOps.Softmax(sc, len);

                // ctx_h[len × d] = scores · v_h, written into the head's columns of ctx (row stride h).
                Gemm.Multiply(sc, len, false, v.AsSpan(offset), h, false, ctx.AsSpan(offset), h, len, d, len, maxThreads: 1);
            }
            finally
            {
                System.Buffers.ArrayPool<float>.Shared.Return(scores);
            }
        });
    }
}
