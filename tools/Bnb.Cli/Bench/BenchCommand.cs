using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Bnb.Errors;
using Bnb.Quantization;
using Bnb.Runtime;
using Spectre.Console;

namespace Bnb.Cli.Bench;

/// <summary>Everything <c>bnb bench</c> was asked.</summary>
internal sealed record BenchArgs(
    string Op,
    string Backend,
    string Threads,
    long? M,
    long? K,
    long? N,
    string? Quant,
    string Dtype,
    int? Blocksize,
    bool Packed,
    bool Hot,
    string Rounding,
    int Repeat,
    int Warmup,
    double MaxSeconds,
    bool Json,
    bool Markdown,
    string? Plot,
    string? JsonOut,
    IReadOnlyList<string> Libraries)
{
    /// <summary><c>bnb bench optim</c> settings (null for the other ops).</summary>
    public OptimBenchArgs? Optim { get; init; }
}

/// <summary>One job: a spec on one backend with one thread count (backend "memory" = the STREAM-like probe).</summary>
internal sealed record BenchJob(string Backend, BenchSpec Spec, int Threads);

/// <summary>
/// <c>bnb bench &lt;op&gt;</c>: side-by-side timings of the loaded backends. Each measurement: allocate and fill the
/// operands once, <c>--warmup</c> untimed calls, then up to <c>--repeat</c> timed calls (fewer when they exceed
/// <c>--max-seconds</c>), report the median.
/// </summary>
internal static partial class BenchCommand
{
    public static readonly string[] Ops = ["gemv", "gemm", "quantize", "dequantize", "int8-matmul", "stream", "suite", "optim"];

    public static int Run(BenchArgs args)
    {
        // Progress and diagnostics: stdout for the table view, stderr when stdout carries JSON/Markdown.
        var err = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        var ui = args.Json || args.Markdown ? err : AnsiConsole.Console;
        if (Console.IsOutputRedirected && ui == AnsiConsole.Console)
        {
            ui.Profile.Width = 160; // a log file, not a terminal: keep rows on one line
        }
        try
        {
            return RunCore(args, ui, err);
        }
        catch (Exception e) when (e is ArgumentException or BnbException or KeyNotFoundException or OutOfMemoryException)
        {
            err.MarkupLineInterpolated($"[red]bnb bench: {e.Message}[/]");
            return 2;
        }
    }

    private static int RunCore(BenchArgs args, IAnsiConsole ui, IAnsiConsole err)
    {
        if (!Ops.Contains(args.Op))
        {
            throw new ArgumentException($"unknown op '{args.Op}' (expected {string.Join(", ", Ops)})");
        }

        var options = new BnbRuntimeOptions();
        foreach (string l in args.Libraries)
        {
            options.LibraryPaths.Add(l);
        }

        using var runtime = new BnbRuntime(options);
        var available = runtime.Backends.Where(b => b.IsAvailable).ToList();
        if (available.Count == 0 && args.Op != "stream")
        {
            throw new ArgumentException("no Bnb backend could be loaded; run `bnb info` to see why, or set BNB_LIBRARY_PATH");
        }

        List<BnbBackend> backends = args.Backend switch
        {
            "best" => [runtime.DefaultBackend!],
            "all" => available,
            _ => [.. args.Backend.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(runtime.GetBackend)],
        };
        if (args.Op == "stream")
        {
            backends = [];
        }

        int[] threads = ParseThreads(args.Threads);
        if (args.Op == "optim")
        {
            return RunOptim(args, runtime, backends, threads, ui, err);
        }

        List<BenchJob> jobs = args.Op == "suite"
            ? Suite.Jobs(available.Select(b => b.Name).ToList(), runtime.DefaultBackend?.Name, threads)
            : [.. Jobs(args, backends.Select(b => b.Name).ToList(), threads)];

        var results = new List<Measurement>();
        var failures = new List<string>();
        if (args.Json)
        {
            foreach (var job in jobs)
            {
                try
                {
                    results.Add(Measure(runtime, job, args, _ => { }, out _));
                }
                catch (BnbException e)
                {
                    failures.Add($"{job.Backend} {job.Spec.Op} {job.Spec.Quant}/{job.Spec.Dtype} ×{job.Threads}: {e.Message}");
                }
            }
        }
        else
        {
            ui.Progress()
                .AutoClear(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(ctx =>
                {
                    foreach (var job in jobs)
                    {
                        var task = ctx.AddTask(Markup.Escape($"{job.Backend} {job.Spec.Op} {job.Spec.Quant} {job.Spec.Dtype} ×{job.Threads}"), maxValue: 1.0);
                        try
                        {
                            results.Add(Measure(runtime, job, args, p => task.Value = p, out _));
                        }
                        catch (BnbException e)
                        {
                            failures.Add($"{job.Backend} {job.Spec.Op} {job.Spec.Quant}/{job.Spec.Dtype} ×{job.Threads}: {e.Message}");
                        }

                        task.Value = 1.0;
                        task.StopTask();
                    }
                });
        }

        foreach (string f in failures)
        {
            err.MarkupLineInterpolated($"[yellow]not measured: {f}[/]");
        }

        if (args.JsonOut is { } jsonOut)
        {
            File.WriteAllText(jsonOut, JsonSerializer.Serialize(results, Measurement.Json) + "\n");
        }

        if (args.Json)
        {
            Console.Out.Write(JsonSerializer.Serialize(results, Measurement.Json));
            Console.Out.WriteLine();
        }
        else if (args.Markdown)
        {
            Console.Out.Write(args.Op == "suite" ? Report.SuiteMarkdown(results) : Report.Markdown(results));
        }
        else
        {
            ui.Write(Report.Table(results));
            ui.MarkupLine($"[grey]{Markup.Escape(Machine.Cpu)}; median of timed runs after warm-up; GB/s = (packed weights + absmax + activations read + outputs written) / median.[/]");
        }

        if (args.Plot is { } plot && results.Count > 0)
        {
            Plotting.Save(results, plot, args.Op);
            err.MarkupLineInterpolated($"[grey]plot written to {plot}[/]");
        }

        return results.Count > 0 || jobs.Count == 0 ? 0 : 1;
    }

    private static int[] ParseThreads(string threads) =>
        [.. threads.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(t =>
            int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0 ? v : throw new ArgumentException($"--threads {threads}: expected positive integers (e.g. 1 or 1,2)"))];

    /// <summary>The default shapes of the issue (weights larger than the LLC); explicit --m/--k/--n win.</summary>
    internal static BenchSpec DefaultSpec(string op, string? quant, string dtype, long? m, long? k, long? n, int? blocksize, bool packed, bool hot, string rounding)
    {
        string q = quant ?? op switch
        {
            "int8-matmul" => "int8",
            "quantize" or "dequantize" => "nf4",
            _ => "nf4",
        };
        int bs = blocksize ?? (q == "q8" ? 4096 : 64);
        return op switch
        {
            "gemv" => new BenchSpec(op, q, dtype, m ?? 1, k ?? 8192, n ?? 16384, bs, packed, rounding, Cold: !hot),
            "gemm" => new BenchSpec(op, q, dtype, m ?? 512, k ?? 4096, n ?? 4096, bs, packed, rounding, Cold: false),
            "int8-matmul" => new BenchSpec(op, "int8", "i8", m ?? 512, k ?? 4096, n ?? 4096, 0, false, rounding, Cold: false),
            "quantize" or "dequantize" => new BenchSpec(op, q, q == "int8" && op == "dequantize" ? "f32" : dtype, 1, k ?? 4096, n ?? (64L << 20), q == "int8" ? 0 : bs, false, rounding, Cold: false),
            "stream" => new BenchSpec(op, "-", "-", 0, 0, 0, 0, false, rounding, Cold: true),
            _ => throw new ArgumentException($"unknown op '{op}'"),
        };
    }

    private static IEnumerable<BenchJob> Jobs(BenchArgs a, List<string> backends, int[] threads)
    {
        var spec = DefaultSpec(a.Op, a.Quant, a.Dtype, a.M, a.K, a.N, a.Blocksize, a.Packed, a.Hot, a.Rounding);
        if (a.Op == "stream")
        {
            foreach (int t in threads)
            {
                yield return new BenchJob("memory", spec, t);
            }

            yield break;
        }

        foreach (string b in backends)
        {
            foreach (int t in threads)
            {
                yield return new BenchJob(b, spec, t);
            }
        }
    }

    internal static Measurement Measure(BnbRuntime runtime, BenchJob job, BenchArgs a, Action<double> progress, out int copies)
    {
        var spec = job.Spec;
        var random = new Random(20240601);
        if (spec.Op == "stream")
        {
            using var buffer = new NativeBuffer(Stream.BufferBytes(Machine.LlcBytes));
            buffer.FillRandomBytes(random);
            long bytes = Stream.BytesRead(buffer, job.Threads);
            copies = 1;
            return Time(job, a, bytes, 0, 1, _ => Stream.ReadSeconds(buffer, job.Threads), progress);
        }

        using var context = runtime.GetBackend(job.Backend).CreateContext(numThreads: job.Threads);
        var q = new Quantizer(context);
        using var workload = Workload.Create(spec, q, Machine.LlcBytes, random);
        copies = workload.Copies;
        return Time(job, a, workload.Bytes, workload.Flops, workload.Copies, i =>
        {
            long t0 = Stopwatch.GetTimestamp();
            workload.Run(i);
            return Stopwatch.GetElapsedTime(t0).TotalSeconds;
        }, progress);
    }

    internal static Measurement Time(BenchJob job, BenchArgs a, long bytes, double flops, int copies, Func<int, double> once, Action<double> progress)
    {
        int iteration = 0;
        int warmups = 0;
        int total = Math.Max(1, a.Warmup + a.Repeat);
        for (int w = 0; w < a.Warmup; w++)
        {
            double s = once(iteration++);
            warmups++;
            progress((double)warmups / total);
            if (s > a.MaxSeconds / 4)
            {
                break; // a slow configuration (the scalar reference on a large shape): one warm-up is enough
            }
        }

        var times = new List<double>();
        double spent = 0;
        while (times.Count < Math.Max(1, a.Repeat))
        {
            double s = once(iteration++);
            times.Add(s);
            spent += s;
            progress((double)(warmups + times.Count) / total);
            if (spent > a.MaxSeconds && times.Count >= Math.Min(3, a.Repeat) || spent > 3 * a.MaxSeconds)
            {
                break;
            }
        }

        times.Sort();
        double median = times.Count % 2 == 1 ? times[times.Count / 2] : (times[(times.Count / 2) - 1] + times[times.Count / 2]) / 2;
        var spec = job.Spec;
        return new Measurement(
            job.Backend, spec.Op, spec.Quant, spec.Dtype, spec.M, spec.K, spec.N, job.Threads, spec.Packed, spec.Blocksize, spec.Op is "quantize" && spec.Quant == "q8" ? spec.Rounding : "-",
            median * 1e3, times[0] * 1e3, bytes / median / 1e9, flops / median / 1e9, bytes, flops, times.Count, warmups, copies, Machine.Cpu);
    }
}
