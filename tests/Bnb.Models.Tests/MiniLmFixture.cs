using Bnb.Models.Encoder;
using Bnb.Quantization;
using Bnb.Runtime;

namespace Bnb.Models.Tests;

/// <summary>
/// all-MiniLM-L6-v2 loaded once per test class, the repository's sentences (data/sentences-gutenberg.txt), the fp32
/// embeddings of the first <see cref="SentenceCount"/>, and the best loaded backend (if any).
/// </summary>
public sealed class MiniLmFixture : IDisposable
{
    /// <summary>Sentences the accuracy tests use (the issue asks for at least 64).</summary>
    public const int SentenceCount = 64;

    private readonly Lazy<EncoderModel> _model = new(() => EncoderModel.LoadMiniLm());
    private readonly Lazy<EncoderEvaluation> _evaluation;
    private readonly Lazy<(BnbRuntime Runtime, BnbContext Context, Quantizer Quantizer)?> _backend = new(() =>
    {
        var runtime = new BnbRuntime();
        if (runtime.DefaultBackend is not { } best)
        {
            runtime.Dispose();
            return null;
        }

        var context = best.CreateContext();
        return (runtime, context, new Quantizer(context));
    });

    public MiniLmFixture()
    {
        _evaluation = new(() => new EncoderEvaluation(Model.Weights, Model.Tokenize(Sentences.Take(SentenceCount))));
    }

    public static string RepoRoot { get; } = FindRoot();

    public static IReadOnlyList<string> Sentences { get; } = EncoderModel.ReadSentences(Path.Combine(RepoRoot, "data", "sentences-gutenberg.txt"));

    public EncoderModel Model => _model.Value;

    public EncoderEvaluation Evaluation => _evaluation.Value;

    /// <summary>The best loaded backend's quantizer, or null when no backend library could be loaded.</summary>
    public Quantizer? Quantizer => _backend.Value?.Quantizer;

    public string BackendName => _backend.Value?.Context.Backend.Name ?? "none";

    public void Dispose()
    {
        if (_backend.IsValueCreated && _backend.Value is { } b)
        {
            b.Context.Dispose();
            b.Runtime.Dispose();
        }
    }

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Bnb.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException($"no Bnb.sln above {AppContext.BaseDirectory}");
    }
}

/// <summary>A [Theory] skipped, with the reason, when no Bnb backend library can be loaded.</summary>
internal sealed class BackendTheoryAttribute : TheoryAttribute
{
    private static readonly Lazy<string?> Missing = new(() =>
    {
        using var runtime = new BnbRuntime();
        return runtime.DefaultBackend is null
            ? $"no Bnb backend library could be loaded (tried: {string.Join("; ", runtime.LoadAttempts.Select(a => a.ToString()).DefaultIfEmpty("nothing"))}); build native code or set BNB_LIBRARY_PATH"
            : null;
    });

    public BackendTheoryAttribute()
    {
        Skip = Missing.Value;
    }
}
