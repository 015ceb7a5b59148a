using System.Globalization;
using System.Text.Json;
using Bnb.Models.Encoder;
using Bnb.Models.Onnx;
using Bnb.Quantization;
using Bnb.Runtime;
using Spectre.Console;

namespace Bnb.Cli;

/// <summary>The encoder evaluation shared by <c>bnb demo</c> and <c>bnb eval-encoder</c>: load, run every format on every selected backend, print.</summary>
internal static class EncoderRun
{
    /// <summary>
    /// Slow backends encode only the first sentences: every quantized format first runs on this many sentences, and
    /// when that pace projects more than <see cref="FullRunBudgetSeconds"/> for the whole set (the scalar cpu_ref
    /// oracle, whose 4-bit GEMM manages about one sentence per second; an OpenCL device that is really the CPU under
    /// PoCL), that subset is the row, marked "(8 sentences)" and compared with fp32 on the same subset.
    /// </summary>
    public const int SubsetSentences = 8;

    /// <summary>Projected seconds per format above which a backend reports the subset (see <see cref="SubsetSentences"/>).</summary>
    public const double FullRunBudgetSeconds = 20;

    public static int Fail(string message)
    {
        Console.Error.WriteLine($"error: {message}");
        return 2;
    }

    public static int Run(Func<EncoderModel> load, IReadOnlyList<string> sentences, IReadOnlyList<EncoderFormat> formats, string backendSelection,
                          bool json, IReadOnlyList<string> libraries, string title)
    {
        EncoderModel model;
        try
        {
            model = load();
        }
        catch (Exception e) when (e is IOException or InvalidDataException or OnnxFormatException or NotSupportedException or UnauthorizedAccessException)
        {
            return Fail(e.Message);
        }

        var options = new BnbRuntimeOptions();
        foreach (string l in libraries)
        {
            options.LibraryPaths.Add(l);
        }

        using var runtime = new BnbRuntime(options);
        var available = runtime.Backends.Where(b => b.IsAvailable).ToList();
        List<BnbBackend> selected;
        if (backendSelection is "best" or "")
        {
            selected = runtime.DefaultBackend is { } best ? [best] : [];
        }
        else if (backendSelection == "all")
        {
            selected = available;
        }
        else
        {
            selected = [];
            foreach (string name in backendSelection.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var b = available.FirstOrDefault(x => x.Name == name);
                if (b is null)
                {
                    return Fail($"backend '{name}' is not loaded (loaded: {string.Join(", ", available.Select(x => x.Name).DefaultIfEmpty("none"))}; see `bnb info`)");
                }

                selected.Add(b);
            }
        }

        bool quantized = formats.Any(f => f != EncoderFormat.Fp32);
        if (quantized && selected.Count == 0)
        {
            return Fail("no Bnb backend could be loaded, so the quantized formats cannot run. Run `bnb info` to see why, or set BNB_LIBRARY_PATH.");
        }

        var tokens = model.Tokenize(sentences);
        var evaluation = new EncoderEvaluation(model.Weights, tokens);
        if (!json)
        {
            AnsiConsole.MarkupLine(Markup.Escape(title));
            AnsiConsole.MarkupLine(Markup.Escape($"{model.Weights}; {tokens.Sum(t => t.Length)} tokens; {Environment.ProcessorCount} logical CPUs"));
        }

        if (Console.IsOutputRedirected)
        {
            AnsiConsole.Profile.Width = 140; // a log or CI: do not wrap the table at 80 columns
        }

        EncoderEvaluation? subset = null;
        var reports = new List<EncoderReport>();
        var sentenceCounts = new List<int>(); // parallel to reports
        var fp32 = evaluation.Evaluate(EncoderFormat.Fp32, null, "managed");
        if (formats.Contains(EncoderFormat.Fp32) || !json)
        {
            reports.Add(fp32);
            sentenceCounts.Add(tokens.Count);
        }

        foreach (var backend in selected)
        {
            using var context = backend.CreateContext();
            var quantizer = new Quantizer(context);
            foreach (var format in formats.Where(f => f != EncoderFormat.Fp32))
            {
                if (!json)
                {
                    AnsiConsole.MarkupLine($"[grey]{backend.Name}: {format.Name()}…[/]");
                }

                EncoderReport? report = null;
                if (tokens.Count > SubsetSentences)
                {
                    subset ??= new EncoderEvaluation(model.Weights, [.. tokens.Take(SubsetSentences)]);
                    var probe = subset.Evaluate(format, quantizer, backend.Name);
                    if (tokens.Count / probe.SentencesPerSecond > FullRunBudgetSeconds)
                    {
                        report = probe with { Backend = $"{backend.Name} ({SubsetSentences} sentences)" };
                        sentenceCounts.Add(SubsetSentences);
                    }
                }

                if (report is null)
                {
                    report = evaluation.Evaluate(format, quantizer, backend.Name);
                    sentenceCounts.Add(tokens.Count);
                }

                reports.Add(report);
            }
        }

        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(reports.Select((r, i) => new Dictionary<string, object>
            {
                ["format"] = r.Format,
                ["backend"] = r.Backend,
                ["sentences"] = sentenceCounts[i],
                ["weight_bytes"] = r.WeightBytes,
                ["mean_cos"] = r.MeanCosine,
                ["min_cos"] = r.MinCosine,
                ["pearson"] = r.Pearson,
                ["nn_agreement"] = r.NearestNeighbourAgreement,
                ["sentences_per_s"] = r.SentencesPerSecond,
            }), new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }

        var table = new Table().AddColumns("format", "backend", "linear weights", "vs fp32", "mean cos", "min cos", "pearson", "NN agree", "sentences/s");
        foreach (var r in reports)
        {
            table.AddRow(
                r.Format, r.Backend, Bytes(r.WeightBytes), F($"{fp32.WeightBytes / (double)r.WeightBytes:F2}×"), F($"{r.MeanCosine:F5}"), F($"{r.MinCosine:F5}"),
                F($"{r.Pearson:F5}"), F($"{r.NearestNeighbourAgreement:P1}"), F($"{r.SentencesPerSecond:F1}"));
        }

        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("[grey]mean/min cos: each sentence's embedding against its fp32 embedding; pearson: of the pairwise-similarity matrices; " +
                               "NN agree: same nearest other sentence as with fp32. Quantized: the 36 linear layers; embeddings, LayerNorm and attention stay fp32 " +
                               "(Bnb's managed kernels). sentences/s: one timed pass in batches of 32 — a demonstration on a possibly busy machine, not a benchmark.[/]");
        return 0;
    }

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static string Bytes(long b) => b >= 1 << 20 ? F($"{b / 1048576.0:F2} MiB") : F($"{b / 1024.0:F1} KiB");
}
