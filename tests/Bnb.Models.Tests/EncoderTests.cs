using Bnb.Dense;
using Bnb.Models.Encoder;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Bnb.Models.Tests;

/// <summary>all-MiniLM-L6-v2 on Bnb: the fp32 path against ONNX Runtime, then every quantized format against fp32.</summary>
public sealed class EncoderTests(MiniLmFixture fixture) : IClassFixture<MiniLmFixture>
{
    [Fact]
    public void The_MiniLM_graph_is_recognised_with_its_36_linear_layers()
    {
        var w = fixture.Model.Weights;
        Assert.Equal(6, w.Layers.Count);
        Assert.Equal(36, w.Linears.Count());
        Assert.Equal((384, 12, 1536, 30522, 512), (w.HiddenSize, w.Heads, w.IntermediateSize, w.VocabularySize, w.MaxPositions));
        Assert.Equal(1e-12f, w.LayerNormEpsilon);
        Assert.All(w.Layers, l => Assert.Equal((384, 1536), (l.Intermediate.InFeatures, l.Intermediate.OutFeatures)));
        Assert.Equal(30522, fixture.Model.Tokenizer.VocabularySize);
    }

    [Fact]
    public void Tokenization_matches_bert_uncased_wordpiece()
    {
        // [CLS]=101, [SEP]=102; "the"=1996, "quick"=4248, "brown"=2829, "fox"=4419, "."=1012 in bert-base-uncased's vocabulary.
        Assert.Equal([101, 1996, 4248, 2829, 4419, 1012, 102], fixture.Model.Tokenizer.Encode("The QUICK brown fox.", 64));
        int[] truncated = fixture.Model.Tokenizer.Encode(string.Join(' ', Enumerable.Repeat("word", 100)), 10);
        Assert.Equal(10, truncated.Length);
        Assert.Equal((101, 102), (truncated[0], truncated[^1]));
    }

    [Fact]
    public void Fp32_encoder_matches_onnx_runtime()
    {
        const int count = 16;
        var sentences = MiniLmFixture.Sentences.Take(count).ToList();
        var tokens = fixture.Model.Tokenize(sentences);
        float[] ours = new BertEncoder(fixture.Model.Weights, EncoderFormat.Fp32.LinearFactory(null)).Embed(tokens);

        var contents = MiniLmPackage.Load();
        using var options = new SessionOptions { IntraOpNumThreads = Environment.ProcessorCount };
        using var session = new InferenceSession(contents.Onnx, options);
        int h = fixture.Model.Weights.HiddenSize;
        double sum = 0, min = 1;
        for (int s = 0; s < count; s++)
        {
            int len = tokens[s].Length;
            var ids = new DenseTensor<long>(tokens[s].Select(t => (long)t).ToArray(), [1, len]);
            var mask = new DenseTensor<long>(Enumerable.Repeat(1L, len).ToArray(), [1, len]);
            var types = new DenseTensor<long>(new long[len], [1, len]);
            using var results = session.Run(
            [
                NamedOnnxValue.CreateFromTensor("input_ids", ids),
                NamedOnnxValue.CreateFromTensor("attention_mask", mask),
                NamedOnnxValue.CreateFromTensor("token_type_ids", types),
            ]);
            float[] hidden = results.First(r => r.Name == "last_hidden_state").AsTensor<float>().ToArray();
            var pooled = new float[h];
            RowOps.MeanRows(hidden, h, pooled);
            double cos = RowOps.Cosine(pooled, ours.AsSpan(s * h, h));
            sum += cos;
            min = Math.Min(min, cos);
        }

        Assert.True(sum / count >= 0.99999, $"mean cosine to ONNX Runtime {sum / count:F7} (min {min:F7})");
    }

    [BackendTheory]
    [InlineData(EncoderFormat.Int8, 0.998)]
    [InlineData(EncoderFormat.Int8T0, 0.995)]
    [InlineData(EncoderFormat.Nf4, 0.96)]
    [InlineData(EncoderFormat.Nf4Dq, 0.96)]
    [InlineData(EncoderFormat.Fp4, 0.92)]
    public void Quantized_encoder_stays_close_to_fp32(EncoderFormat format, double minMeanCosine)
    {
        var q = fixture.Quantizer ?? throw new InvalidOperationException("no backend");
        var r = fixture.Evaluation.Evaluate(format, q, fixture.BackendName);
        Assert.True(r.MeanCosine >= minMeanCosine, $"{format} on {r.Backend}: mean cosine {r.MeanCosine:F4} < {minMeanCosine} (min {r.MinCosine:F4}, pearson {r.Pearson:F4})");
        Assert.True(r.MinCosine <= r.MeanCosine && r.MeanCosine < 1.0, $"{format}: cosines {r.MinCosine} / {r.MeanCosine}");
        long fp32Bytes = fixture.Model.Weights.Linears.Sum(l => l.Weight.LongLength * 4);
        double ratio = fp32Bytes / (double)r.WeightBytes;
        Assert.InRange(ratio, format is EncoderFormat.Int8 or EncoderFormat.Int8T0 ? 3.9 : 6.9, format == EncoderFormat.Nf4Dq ? 7.9 : 8.0);
    }
}

/// <summary>The eval-encoder path: a user's .onnx + vocab.txt on disk, and the format list.</summary>
public sealed class UserModelTests(MiniLmFixture fixture) : IClassFixture<MiniLmFixture>
{
    [Fact]
    public void An_exported_encoder_on_disk_gives_the_same_embeddings_as_the_package()
    {
        var contents = MiniLmPackage.Load();
        string dir = Directory.CreateTempSubdirectory("bnb-encoder-").FullName;
        try
        {
            string onnx = Path.Combine(dir, "model.onnx"), vocab = Path.Combine(dir, "vocab.txt");
            File.WriteAllBytes(onnx, contents.Onnx);
            File.WriteAllBytes(vocab, contents.Vocab);
            var model = EncoderModel.Load(onnx, vocab);
            var tokens = model.Tokenize(MiniLmFixture.Sentences.Take(3));
            Assert.Equal(fixture.Model.Tokenize(MiniLmFixture.Sentences.Take(3)), tokens);
            float[] a = new BertEncoder(model.Weights, EncoderFormat.Fp32.LinearFactory(null)).Embed(tokens);
            float[] b = new BertEncoder(fixture.Model.Weights, EncoderFormat.Fp32.LinearFactory(null)).Embed(tokens);
            Assert.Equal(b, a);

            // A graph that is ONNX but not a BERT encoder: the error says what is missing.
            File.WriteAllBytes(onnx, contents.Onnx.AsSpan(0, 20).ToArray());
            Assert.Contains("not a valid ONNX model", Assert.Throws<Bnb.Models.Onnx.OnnxFormatException>(() => EncoderModel.Load(onnx, vocab)).Message, StringComparison.Ordinal);
            Assert.Throws<FileNotFoundException>(() => EncoderModel.Load(Path.Combine(dir, "missing.onnx"), vocab));
            Assert.Throws<FileNotFoundException>(() => EncoderModel.ReadSentences(Path.Combine(dir, "missing.txt")));
            File.WriteAllText(Path.Combine(dir, "one.txt"), "only one line\n\n");
            Assert.Throws<InvalidDataException>(() => EncoderModel.ReadSentences(Path.Combine(dir, "one.txt")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Format_lists_parse_and_reject_unknown_names()
    {
        Assert.Equal([EncoderFormat.Int8, EncoderFormat.Int8T0, EncoderFormat.Nf4, EncoderFormat.Nf4Dq, EncoderFormat.Fp4], EncoderFormats.Parse("int8,int8-t0, NF4 ,nf4-dq,fp4,int8"));
        Assert.Contains("unknown format 'q3'", Assert.Throws<ArgumentException>(() => EncoderFormats.Parse("int8,q3")).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => EncoderFormats.Parse(" , "));
    }

    [Fact]
    public void Embed_rejects_bad_token_lists()
    {
        var encoder = new BertEncoder(fixture.Model.Weights, EncoderFormat.Fp32.LinearFactory(null));
        Assert.Contains("no tokens", Assert.Throws<ArgumentException>(() => encoder.Embed([[101, 102], []])).Message, StringComparison.Ordinal);
        Assert.Contains("outside the vocabulary", Assert.Throws<ArgumentException>(() => encoder.Embed([[101, 30522, 102]])).Message, StringComparison.Ordinal);
        Assert.Contains("512 positions", Assert.Throws<ArgumentException>(() => encoder.Embed([new int[513]])).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Metrics_follow_their_definitions()
    {
        // Three 2-D embeddings; the candidate rotates the third one a little.
        float[] reference = [1, 0, 0, 1, 1, 1];
        float[] candidate = [1, 0, 0, 1, 1, 0.75f];
        var m = EncoderEvaluation.Compare(reference, candidate, 3);
        double c3 = (1 + 0.75) / (Math.Sqrt(2) * 1.25);
        Assert.Equal((1 + 1 + c3) / 3, m.MeanCosine, 12);
        Assert.Equal(c3, m.MinCosine, 12);
        Assert.Equal(1.0, m.NearestNeighbourAgreement); // 0→2 and 1→2 in both; 2→0 (a tie in the reference resolved to the first index, 0.8 vs 0.6 in the candidate)
        Assert.Equal(1.0, EncoderEvaluation.PearsonCorrelation([1, 2, 3], [2, 4, 6]), 12);
        Assert.Equal(-1.0, EncoderEvaluation.PearsonCorrelation([1, 2, 3], [3, 2, 1]), 12);
    }
}
