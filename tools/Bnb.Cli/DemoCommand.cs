using System.Diagnostics;
using System.Globalization;
using Bnb.Quantization;
using Bnb.Runtime;
using Spectre.Console;

namespace Bnb.Cli;

/// <summary>
/// <c>bnb demo</c>: quantizes a built-in deterministic weight matrix in every format through every loaded backend
/// and prints size, error and throughput. A demonstration printout, not a benchmark.
/// </summary>
internal static class DemoCommand
{
    private const int Repetitions = 3;

    public static int Run(int rows, int cols, int seed, IReadOnlyList<string> libraries)
    {
        var options = new BnbRuntimeOptions();
        foreach (string l in libraries)
        {
            options.LibraryPaths.Add(l);
        }

        using var runtime = new BnbRuntime(options);
        var backends = runtime.Backends.Where(b => b.IsAvailable).ToList();
        if (backends.Count == 0)
        {
            AnsiConsole.MarkupLine("[red]No Bnb backend could be loaded.[/] Run [bold]bnb info[/] to see why, or set BNB_LIBRARY_PATH.");
            return 1;
        }

        float[] weight = SampleWeight(rows, cols, seed);
        long fp16Bytes = (long)weight.Length * 2;
        AnsiConsole.MarkupLine($"Sample weight: {rows}×{cols} float32, N(0, 1)·0.02 (seed {seed}); compression is relative to fp16 ({fp16Bytes:N0} bytes).");

        var table = new Table().AddColumns("backend", "format", "bytes", "vs fp16", "max abs err", "mean abs err", "GB/s");
        foreach (var backend in backends)
        {
            using var context = backend.CreateContext();
            var q = new Quantizer(context);
            foreach (var format in Formats)
            {
                var result = format.Run(q, weight, rows, cols);
                var (max, mean) = Errors(weight, result.Restored);
                double gbs = weight.Length * 4.0 / result.Seconds / 1e9;
                table.AddRow(
                    backend.Name, format.Name, result.Bytes.ToString("N0", CultureInfo.InvariantCulture),
                    $"{fp16Bytes / (double)result.Bytes:F2}×", max.ToString("E2", CultureInfo.InvariantCulture), mean.ToString("E2", CultureInfo.InvariantCulture), gbs.ToString("F2", CultureInfo.InvariantCulture));
            }
        }

        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("[grey]GB/s = float32 input bytes / best of " + Repetitions + " quantize calls (Stopwatch); see benchmarks/ for measurements.[/]");
        return 0;
    }

    private sealed record Format(string Name, Func<Quantizer, float[], int, int, Outcome> Run);

    private sealed record Outcome(long Bytes, float[] Restored, double Seconds);

    private static readonly Format[] Formats =
    [
        new("q8 nearest", (q, w, r, c) => Blockwise(q, w, Rounding.Nearest)),
        new("q8 bnb_cpu_lut", (q, w, r, c) => Blockwise(q, w, Rounding.BnbCpuLut)),
        new("nf4", (q, w, r, c) => FourBit(q, w, r, c, QuantType.Nf4, false)),
        new("fp4", (q, w, r, c) => FourBit(q, w, r, c, QuantType.Fp4, false)),
        new("nf4+dq", (q, w, r, c) => FourBit(q, w, r, c, QuantType.Nf4, true)),
        new("fp4+dq", (q, w, r, c) => FourBit(q, w, r, c, QuantType.Fp4, true)),
        new("int8 rowwise", Int8RowWise),
    ];

    private static Outcome Blockwise(Quantizer q, float[] w, Rounding rounding)
    {
        var (r, seconds) = Time(() => q.QuantizeBlockwise<float>(w, blocksize: 4096, rounding: rounding));
        return new Outcome(r.Data.Length + StateBytes(r.State), q.DequantizeBlockwise<float>(r.Data, r.State), seconds);
    }

    private static Outcome FourBit(Quantizer q, float[] w, int rows, int cols, QuantType type, bool nested)
    {
        var (r, seconds) = Time(() => q.Quantize4Bit<float>(w, [rows, cols], type, 64, compressStatistics: nested));
        return new Outcome(r.Data.Length + StateBytes(r.State), q.Dequantize4Bit<float>(r.Data, r.State), seconds);
    }

    private static Outcome Int8RowWise(Quantizer q, float[] w, int rows, int cols)
    {
        var (r, seconds) = Time(() => q.Int8VectorwiseQuant<float>(w, rows, cols));
        return new Outcome(r.CA.Length + (r.RowStats.Length * 4L), q.Int8VectorwiseDequant(r.CA, r.RowStats), seconds);
    }

    /// <summary>Bytes of the statistics a checkpoint stores: absmax, or nested codes + nested absmax + offset.</summary>
    private static long StateBytes(QuantState s) =>
        s.State2 is { } s2 ? s.QuantizedAbsmax!.Length + (s2.Absmax!.Length * 4L) + 4 : s.Absmax!.Length * 4L;

    private static (T Result, double Seconds) Time<T>(Func<T> run)
    {
        T result = run();
        double best = double.MaxValue;
        for (int i = 0; i < Repetitions; i++)
        {
            long start = Stopwatch.GetTimestamp();
            result = run();
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }

        return (result, best);
    }

    private static (double Max, double Mean) Errors(float[] x, float[] y)
    {
        double max = 0, sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double e = Math.Abs(x[i] - (double)y[i]);
            max = Math.Max(max, e);
            sum += e;
        }

        return (max, sum / x.Length);
    }

    /// <summary>Deterministic N(0, 1)·0.02 values (Box–Muller over a seeded generator), like a linear layer's weight.</summary>
    private static float[] SampleWeight(int rows, int cols, int seed)
    {
        var random = new Random(seed);
        var w = new float[rows * cols];
        for (int i = 0; i < w.Length; i += 2)
        {
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            double radius = Math.Sqrt(-2.0 * Math.Log(u1));
            w[i] = (float)(radius * Math.Cos(2 * Math.PI * u2) * 0.02);
            if (i + 1 < w.Length)
            {
                w[i + 1] = (float)(radius * Math.Sin(2 * Math.PI * u2) * 0.02);
            }
        }

        return w;
    }
}
