using System.Globalization;
using Bnb.Models.Onnx;

namespace Bnb.Models.Encoder;

/// <summary>
/// One linear layer as the ONNX export stores it: <see cref="Weight"/> is [<see cref="InFeatures"/> ×
/// <see cref="OutFeatures"/>] row-major (the MatMul's right operand, i.e. PyTorch's weight transposed) plus its bias.
/// </summary>
public sealed record LinearWeights(string Name, int InFeatures, int OutFeatures, float[] Weight, float[] Bias)
{
    /// <summary>The weight in PyTorch / bitsandbytes layout [out × in] (a new array).</summary>
    public float[] WeightOutIn()
    {
        var t = new float[Weight.Length];
        for (int i = 0; i < InFeatures; i++)
        {
            for (int o = 0; o < OutFeatures; o++)
            {
                t[(o * InFeatures) + i] = Weight[(i * OutFeatures) + o];
            }
        }

        return t;
    }
}

/// <summary>Per-layer weights of a BERT encoder block.</summary>
public sealed record BertLayerWeights(
    LinearWeights Query, LinearWeights Key, LinearWeights Value, LinearWeights AttentionOutput,
    float[] AttentionNormGamma, float[] AttentionNormBeta,
    LinearWeights Intermediate, LinearWeights Output, float[] OutputNormGamma, float[] OutputNormBeta)
{
    public IEnumerable<LinearWeights> Linears => [Query, Key, Value, AttentionOutput, Intermediate, Output];
}

/// <summary>
/// The weights and hyper-parameters of a BERT-family encoder (BERT, MiniLM, …) found in an ONNX graph exported from
/// Hugging Face transformers (<c>torch.onnx.export</c>): named embedding / LayerNorm / bias initializers, and
/// anonymous MatMul weights that are identified by following each MatMul to the bias Add that consumes it
/// (<c>MatMul(x, W) → Add(bias, ·)</c>, bias named <c>encoder.layer.N.attention.self.query.bias</c> etc.).
/// </summary>
public sealed class BertWeights
{
    private const string WordEmbeddings = "embeddings.word_embeddings.weight";

    private BertWeights()
    {
    }

    public int HiddenSize { get; private init; }

    public int Heads { get; private init; }

    public int IntermediateSize { get; private init; }

    public int VocabularySize { get; private init; }

    public int MaxPositions { get; private init; }

    public float LayerNormEpsilon { get; private init; }

    public float[] WordEmbeddingTable { get; private init; } = [];

    public float[] PositionEmbeddingTable { get; private init; } = [];

    /// <summary>Token type 0 row (the encoder embeds single sentences); zeros when the model has no token types.</summary>
    public float[] TokenTypeEmbedding { get; private init; } = [];

    public float[] EmbeddingNormGamma { get; private init; } = [];

    public float[] EmbeddingNormBeta { get; private init; } = [];

    public IReadOnlyList<BertLayerWeights> Layers { get; private init; } = [];

    public IEnumerable<LinearWeights> Linears => Layers.SelectMany(l => l.Linears);

    /// <summary>Finds the encoder in <paramref name="model"/>.</summary>
    /// <exception cref="NotSupportedException">The graph is not a BERT-family encoder exported like MiniLM; the message says what is missing.</exception>
    public static BertWeights FromOnnx(OnnxModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var init = model.Initializers;
        string? wordName = init.Keys.FirstOrDefault(k => k.EndsWith(WordEmbeddings, StringComparison.Ordinal));
        if (wordName is null)
        {
            throw NotBert($"no initializer named '{WordEmbeddings}' (found {init.Count} initializers, {model.Nodes.Count} nodes)");
        }

        string prefix = wordName[..^WordEmbeddings.Length]; // e.g. "" or "bert."
        var linears = FindLinears(model);
        float[] Vector(string name, int length)
        {
            if (!init.TryGetValue(prefix + name, out var t))
            {
                throw NotBert($"no initializer named '{prefix + name}'");
            }

            float[] v = t.ToFloats();
            return v.Length == length ? v : throw NotBert($"'{prefix + name}' has shape {t.ShapeText}, expected [{length}]");
        }

        var word = init[wordName];
        if (word.Dims.Count != 2)
        {
            throw NotBert($"'{wordName}' has shape {word.ShapeText}, expected [vocabulary, hidden]");
        }

        int vocab = checked((int)word.Dims[0]), hidden = checked((int)word.Dims[1]);
        if (!init.TryGetValue(prefix + "embeddings.position_embeddings.weight", out var pos) || pos.Dims.Count != 2 || pos.Dims[1] != hidden)
        {
            throw NotBert($"no position embedding table '{prefix}embeddings.position_embeddings.weight' of shape [positions, {hidden}]");
        }

        float[] tokenType = new float[hidden];
        if (init.TryGetValue(prefix + "embeddings.token_type_embeddings.weight", out var tt))
        {
            if (tt.Dims.Count != 2 || tt.Dims[1] != hidden)
            {
                throw NotBert($"'{tt.Name}' has shape {tt.ShapeText}, expected [types, {hidden}]");
            }

            Array.Copy(tt.ToFloats(), tokenType, hidden);
        }

        LinearWeights Linear(string name, int inFeatures, int outFeatures)
        {
            if (!linears.TryGetValue(prefix + name, out var l))
            {
                throw NotBert($"no linear layer '{prefix + name}' (a MatMul whose output feeds an Add with the initializer '{prefix + name}.bias')");
            }

            return l.InFeatures == inFeatures && l.OutFeatures == outFeatures ? l
                : throw NotBert($"linear layer '{l.Name}' is [{l.InFeatures} × {l.OutFeatures}], expected [{inFeatures} × {outFeatures}]");
        }

        var layers = new List<BertLayerWeights>();
        int intermediate = 0;
        for (int i = 0; linears.ContainsKey($"{prefix}encoder.layer.{i}.attention.self.query"); i++)
        {
            string p = $"encoder.layer.{i}.";
            var inter = linears.GetValueOrDefault($"{prefix}{p}intermediate.dense");
            intermediate = inter?.OutFeatures ?? throw NotBert($"no linear layer '{prefix}{p}intermediate.dense'");
            layers.Add(new BertLayerWeights(
                Linear(p + "attention.self.query", hidden, hidden), Linear(p + "attention.self.key", hidden, hidden),
                Linear(p + "attention.self.value", hidden, hidden), Linear(p + "attention.output.dense", hidden, hidden),
                Vector(p + "attention.output.LayerNorm.weight", hidden), Vector(p + "attention.output.LayerNorm.bias", hidden),
                Linear(p + "intermediate.dense", hidden, intermediate), Linear(p + "output.dense", intermediate, hidden),
                Vector(p + "output.LayerNorm.weight", hidden), Vector(p + "output.LayerNorm.bias", hidden)));
        }

        if (layers.Count == 0)
        {
            throw NotBert($"no encoder layers: no MatMul feeds an Add with the bias '{prefix}encoder.layer.0.attention.self.query.bias'");
        }

        return new BertWeights
        {
            HiddenSize = hidden,
            Heads = FindHeads(model, hidden),
            IntermediateSize = intermediate,
            VocabularySize = vocab,
            MaxPositions = checked((int)pos.Dims[0]),
            LayerNormEpsilon = FindEpsilon(model),
            WordEmbeddingTable = word.ToFloats(),
            PositionEmbeddingTable = pos.ToFloats(),
            TokenTypeEmbedding = tokenType,
            EmbeddingNormGamma = Vector("embeddings.LayerNorm.weight", hidden),
            EmbeddingNormBeta = Vector("embeddings.LayerNorm.bias", hidden),
            Layers = layers,
        };
    }

    /// <summary>Every <c>MatMul(x, W)</c> with a 2-D float initializer W whose output feeds <c>Add</c> with a 1-D float initializer named <c>*.bias</c>.</summary>
    private static Dictionary<string, LinearWeights> FindLinears(OnnxModel model)
    {
        var consumers = new Dictionary<string, List<OnnxNode>>(StringComparer.Ordinal);
        foreach (var n in model.Nodes)
        {
            foreach (string i in n.Inputs)
            {
                if (!consumers.TryGetValue(i, out var list))
                {
                    consumers[i] = list = [];
                }

                list.Add(n);
            }
        }

        var result = new Dictionary<string, LinearWeights>(StringComparer.Ordinal);
        foreach (var mm in model.Nodes.Where(n => n.OpType == "MatMul" && n.Inputs.Count == 2 && n.Outputs.Count == 1))
        {
            if (!model.Initializers.TryGetValue(mm.Inputs[1], out var w) || w.Dims.Count != 2 || w.DataType != OnnxDataType.Float)
            {
                continue;
            }

            foreach (var add in consumers.GetValueOrDefault(mm.Outputs[0]) ?? [])
            {
                if (add.OpType != "Add")
                {
                    continue;
                }

                string other = add.Inputs[0] == mm.Outputs[0] ? add.Inputs[^1] : add.Inputs[0];
                if (model.Initializers.TryGetValue(other, out var b) && other.EndsWith(".bias", StringComparison.Ordinal)
                    && b.Dims.Count == 1 && b.Dims[0] == w.Dims[1])
                {
                    string name = other[..^".bias".Length];
                    result[name] = new LinearWeights(name, checked((int)w.Dims[0]), checked((int)w.Dims[1]), w.ToFloats(), b.ToFloats());
                }
            }
        }

        return result;
    }

    /// <summary>
    /// Heads from the attention reshape <c>[batch, seq, heads, head_dim]</c>: a Concat of two shape values and two
    /// int64 constants whose product is the hidden size.
    /// </summary>
    private static int FindHeads(OnnxModel model, int hidden)
    {
        foreach (var n in model.Nodes.Where(n => n.OpType == "Concat" && n.Inputs.Count == 4))
        {
            if (model.Initializers.TryGetValue(n.Inputs[2], out var h) && model.Initializers.TryGetValue(n.Inputs[3], out var d)
                && h.ElementCount == 1 && d.ElementCount == 1 && h.DataType == OnnxDataType.Int64 && d.DataType == OnnxDataType.Int64)
            {
                long heads = h.ToInt64s()[0], headDim = d.ToInt64s()[0];
                if (heads > 0 && headDim > 0 && heads * headDim == hidden)
                {
                    return (int)heads;
                }
            }
        }

        // Reshape with a constant shape [0, 0, heads, head_dim] (other exporters).
        foreach (var n in model.Nodes.Where(n => n.OpType == "Reshape" && n.Inputs.Count == 2))
        {
            if (model.Initializers.TryGetValue(n.Inputs[1], out var s) && s.ElementCount == 4 && s.DataType == OnnxDataType.Int64)
            {
                long[] v = s.ToInt64s();
                if (v[2] > 0 && v[3] > 0 && v[2] * v[3] == hidden)
                {
                    return (int)v[2];
                }
            }
        }

        throw NotBert($"cannot find the number of attention heads (no reshape to [batch, sequence, heads, head_dim] with heads·head_dim = {hidden})");
    }

    /// <summary>LayerNorm epsilon: a LayerNormalization node's attribute, or the constant added to the variance before Sqrt.</summary>
    private static float FindEpsilon(OnnxModel model)
    {
        if (model.Nodes.FirstOrDefault(n => n.OpType == "LayerNormalization") is { } ln)
        {
            return ln.Attribute("epsilon")?.Float ?? 1e-5f; // ONNX's default
        }

        var producers = model.Nodes.SelectMany(n => n.Outputs.Select(o => (o, n))).GroupBy(p => p.o).ToDictionary(g => g.Key, g => g.First().n, StringComparer.Ordinal);
        foreach (var sqrt in model.Nodes.Where(n => n.OpType == "Sqrt" && n.Inputs.Count == 1))
        {
            if (producers.TryGetValue(sqrt.Inputs[0], out var add) && add.OpType == "Add")
            {
                foreach (string i in add.Inputs)
                {
                    if (model.Initializers.TryGetValue(i, out var c) && c.ElementCount == 1 && c.DataType == OnnxDataType.Float)
                    {
                        return c.ToFloats()[0];
                    }
                }
            }
        }

        throw NotBert("cannot find the LayerNorm epsilon (no LayerNormalization node and no Add(variance, epsilon) → Sqrt)");
    }

    private static NotSupportedException NotBert(string why) =>
        new($"not a BERT-family encoder exported like all-MiniLM-L6-v2: {why}");

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"BERT encoder: {Layers.Count} layers, hidden {HiddenSize}, {Heads} heads, FFN {IntermediateSize}, vocabulary {VocabularySize}, {MaxPositions} positions, LayerNorm eps {LayerNormEpsilon:G3}");
}
