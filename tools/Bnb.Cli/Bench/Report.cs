using System.Globalization;
using System.Text;
using Spectre.Console;

namespace Bnb.Cli.Bench;

/// <summary>Renders measurements: a Spectre table, a Markdown table, and the README report with the issue's targets.</summary>
internal static class Report
{
    private static string F(double v, int digits = 1) => double.IsFinite(v) ? v.ToString("F" + digits, CultureInfo.InvariantCulture) : "-";

    public static Table Table(IReadOnlyList<Measurement> results)
    {
        var table = new Table().AddColumns("backend", "op", "quant", "dtype", "shape", "threads", "median ms", "GB/s", "GFLOP/s", "runs");
        foreach (var r in results)
        {
            table.AddRow(
                Markup.Escape(r.Variant), r.Op, r.Quant, r.Dtype, Markup.Escape(r.Shape), r.Threads.ToString(CultureInfo.InvariantCulture),
                F(r.MedianMs, 2), F(r.Gbps), r.Flops() > 0 ? F(r.Gflops) : "-", r.Runs.ToString(CultureInfo.InvariantCulture));
        }

        return table;
    }

    private static double Flops(this Measurement r) => r.FlopsPerCall;

    /// <summary>A plain Markdown table of any measurements.</summary>
    public static string Markdown(IReadOnlyList<Measurement> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| backend | op | quant | dtype | shape | threads | median ms | GB/s | GFLOP/s |");
        sb.AppendLine("|---|---|---|---|---|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {r.Variant} | {r.Op} | {r.Quant} | {r.Dtype} | {r.Shape} | {r.Threads} | {F(r.MedianMs, 2)} | {F(r.Gbps)} | {(r.FlopsPerCall > 0 ? F(r.Gflops) : "-")} |");
        }

        if (results.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine(CultureInfo.InvariantCulture, $"CPU: {results[0].Cpu}.");
        }

        return sb.ToString();
    }

    // ── the README report ───────────────────────────────────────────────────────────────────────────────────

    /// <summary>Peer numbers quoted from issue 4 (measured by the issue author on the same machine kind), per thread count.</summary>
    private sealed record Peer(string Name, double? T1, double? T2, string Note = "");

    private const string PeerLabel = "quoted from issue 4, measured by the issue author on the same machine kind";

    public static string SuiteMarkdown(IReadOnlyList<Measurement> results)
    {
        var sb = new StringBuilder();
        int[] threads = [.. results.Select(r => r.Threads).Distinct().Order()];
        var bw = results.Where(r => r.Op == "stream").ToDictionary(r => r.Threads, r => r.Gbps);
        double Bw(int t) => bw.TryGetValue(t, out double v) ? v : double.NaN;
        string cpu = results.FirstOrDefault()?.Cpu ?? Machine.Cpu;

        sb.AppendLine(CultureInfo.InvariantCulture, $"Machine: **{cpu}**; {DateTime.UtcNow:yyyy-MM-dd} UTC; all rows marked *measured* come from this one `bnb bench suite` run.");
        sb.AppendLine();
        string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : string.Empty;
        if (double.TryParse(load, NumberStyles.Float, CultureInfo.InvariantCulture, out double l))
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"Load average (1 min) at the end of the run: {load} on {Environment.ProcessorCount} logical CPUs{(l > 0.5 ? " — **the machine was busy with other work: every number below (bandwidth included) is depressed and the 2-thread rows are not meaningful; re-run `benchmarks/run-suite.sh` on an idle machine**" : " (idle)")}.");
            sb.AppendLine();
        }


        // Targets summary.
        sb.AppendLine("### Targets (issue 4)");
        sb.AppendLine();
        sb.AppendLine("| target | threads | best measured | needed | met? |");
        sb.AppendLine("|---|---:|---|---:|---|");
        foreach (int t in threads)
        {
            var gemv = Best(results, r => r.Op == "gemv" && r.Quant == "nf4" && r.K == 8192 && r.N == 16384, t, r => r.Gbps);
            Target(sb, "NF4 GEMV M=1 K=8192 N=16384 cold, ≥ 90 % of read bandwidth", t, gemv, r => r.Gbps, 0.9 * Bw(t), "GB/s");
        }

        foreach (int t in threads)
        {
            var gemm = Best(results, r => r.Op == "gemm" && r.Quant == "nf4" && r.M == 512, t, r => r.Gflops);
            Target(sb, "NF4 GEMM M=512, ≥ 80 % of the BF16 roof (234 GFLOP/s/core)", t, gemm, r => r.Gflops, 0.8 * 234 * t, "GFLOP/s");
        }

        foreach (int t in threads)
        {
            var i8 = Best(results, r => r.Op == "int8-matmul", t, r => r.Gflops);
            Target(sb, "int8 matmul M=512, ≥ 60 % of the VNNI roof (470 GOP/s/core)", t, i8, r => r.Gflops, 0.6 * 470 * t, "GOP/s");
        }

        foreach (var (op, quant) in new[] { ("quantize", "q8"), ("dequantize", "q8"), ("quantize", "nf4"), ("dequantize", "nf4") })
        {
            foreach (int t in threads)
            {
                var m = Best(results, r => r.Op == op && r.Quant == quant && r.Rounding != "lut", t, r => r.Gbps);
                Target(sb, $"{(quant == "q8" ? "8-bit" : "NF4")} {op}, ≥ 80 % of memory bandwidth (bytes read + written)", t, m, r => r.Gbps, 0.8 * Bw(t), "GB/s");
            }
        }

        sb.AppendLine();
        sb.AppendLine("Roofs are the issue author's figures for this machine kind (`vdpbf16ps` ≈ 234 GFLOP/s per core, `vpdpbusd` ≈ 470 GOP/s per core); bandwidth is the *measured* STREAM-like read bandwidth at the same thread count. The issue also states ≥ 330 GFLOP/s for the 2-thread GEMM.");
        sb.AppendLine();

        // Memory bandwidth.
        sb.AppendLine("### Memory read bandwidth (STREAM-like)");
        sb.AppendLine();
        sb.AppendLine("| source | " + string.Join(" | ", threads.Select(t => $"{t} thread{(t > 1 ? "s" : string.Empty)} GB/s")) + " |");
        sb.AppendLine("|---|" + string.Concat(threads.Select(_ => "---:|")));
        sb.AppendLine("| measured: `bnb bench stream` (C# vector sum, 4 accumulators, " + (results.FirstOrDefault(r => r.Op == "stream")?.Shape ?? "-") + ") | " + string.Join(" | ", threads.Select(t => F(Bw(t)))) + " |");
        sb.AppendLine("| " + PeerLabel + " | " + string.Join(" | ", threads.Select(t => t == 1 ? "≈ 33" : t == 2 ? "38–60 (noisy)" : "-")) + " |");
        sb.AppendLine();

        Section(sb, results, threads, Bw, "4-bit GEMV, M = 1, K = 8192, N = 16384, weights cold (GB/s, % of measured read bandwidth)",
            r => r.Op == "gemv", r => r.Gbps, "GB/s", true,
            [
                new Peer("bitsandbytes CPU, NF4, bf16 activations (same shape)", 20, 39),
                new Peer("ggml q4_0 repacked (K = N = 4096)", 19, 33),
                new Peer("ggml iq4_nl repacked (K = N = 4096)", 20, 32),
                new Peer("ONNX Runtime MatMulNBits acc. level 4 (K = N = 4096)", 18, 26.5, "17–19 / 25–28"),
            ]);
        Section(sb, results, threads, Bw, "4-bit GEMM, M = 512, K = N = 4096 (GFLOP/s, % of the BF16 roof)",
            r => r.Op == "gemm", r => r.Gflops, "GFLOP/s", false,
            [
                new Peer("ggml q4_0 repacked", 136, 274),
                new Peer("ONNX Runtime MatMulNBits (about)", 140, 285),
                new Peer("ggml bf16 (unquantized)", 185, 367),
            ], roofPerCore: 234);
        Section(sb, results, threads, Bw, "int8 matmul, M = 512, K = N = 4096 (GOP/s, % of the VNNI roof)",
            r => r.Op == "int8-matmul", r => r.Gflops, "GOP/s", false, [], roofPerCore: 470);
        Section(sb, results, threads, Bw, "Quantize, 64 M float32 elements (GB/s of bytes read + written, % of measured read bandwidth)",
            r => r.Op == "quantize", r => r.Gbps, "GB/s", true,
            [new Peer("bitsandbytes CPU, 8-bit blockwise quantize", 0.65, 1.3)]);
        Section(sb, results, threads, Bw, "Dequantize, 64 M elements to float32 (GB/s of bytes read + written, % of measured read bandwidth)",
            r => r.Op == "dequantize", r => r.Gbps, "GB/s", true,
            [
                new Peer("bitsandbytes CPU, 8-bit dequantize", 20, 40),
                new Peer("bitsandbytes CPU, NF4 dequantize to fp32", 28, 52),
            ]);
        return sb.ToString();
    }

    private static Measurement? Best(IReadOnlyList<Measurement> results, Func<Measurement, bool> filter, int threads, Func<Measurement, double> value) =>
        results.Where(r => filter(r) && r.Threads == threads).OrderByDescending(value).FirstOrDefault();

    private static void Target(StringBuilder sb, string what, int threads, Measurement? m, Func<Measurement, double> value, double needed, string unit)
    {
        string got = m is null ? "not measured" : $"{F(value(m))} {unit} ({m.Variant}, {m.Quant}/{m.Dtype})";
        string met = m is null || !double.IsFinite(needed) ? "–" : value(m) >= needed ? "**met**" : $"not met ({F(100 * value(m) / needed, 0)} % of target)";
        sb.AppendLine(CultureInfo.InvariantCulture, $"| {what} | {threads} | {got} | {F(needed)} {unit} | {met} |");
    }

    private static void Section(
        StringBuilder sb, IReadOnlyList<Measurement> results, int[] threads, Func<int, double> bw, string title, Func<Measurement, bool> filter,
        Func<Measurement, double> value, string unit, bool vsBandwidth, Peer[] peers, double roofPerCore = 0)
    {
        sb.AppendLine(CultureInfo.InvariantCulture, $"### {title}");
        sb.AppendLine();
        sb.AppendLine("| implementation | " + string.Join(" | ", threads.Select(t => $"×{t} {unit} | ×{t} %")) + " |");
        sb.AppendLine("|---|" + string.Concat(threads.Select(_ => "---:|---:|")));
        string Pct(double v, int t)
        {
            double reference = vsBandwidth ? bw(t) : roofPerCore * t;
            return double.IsFinite(v) && reference > 0 ? F(100 * v / reference, 0) + " %" : "-";
        }

        foreach (var group in results.Where(filter).GroupBy(r => $"{r.Variant}, {r.Quant}, {r.Dtype}"))
        {
            var cells = threads.Select(t =>
            {
                var m = group.FirstOrDefault(r => r.Threads == t);
                return m is null ? "- | -" : $"{F(value(m))} | {Pct(value(m), t)}";
            });
            sb.AppendLine(CultureInfo.InvariantCulture, $"| measured: **{group.Key}** | {string.Join(" | ", cells)} |");
        }

        foreach (var p in peers)
        {
            var cells = threads.Select(t =>
            {
                double? v = t == 1 ? p.T1 : t == 2 ? p.T2 : null;
                return v is null ? "- | -" : $"{(p.Note.Length > 0 && t <= 2 ? p.Note.Split('/').ElementAtOrDefault(t - 1)?.Trim() ?? F(v.Value) : F(v.Value, v < 2 ? 2 : 0))} | {Pct(v.Value, t)}";
            });
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {p.Name} — *{PeerLabel}* | {string.Join(" | ", cells)} |");
        }

        sb.AppendLine();
    }
}
