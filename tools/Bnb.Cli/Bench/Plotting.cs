namespace Bnb.Cli.Bench;

/// <summary><c>--plot FILE.png</c>: a ScottPlot bar chart, one bar per measurement (GB/s or GFLOP/s by op).</summary>
internal static class Plotting
{
    public static void Save(IReadOnlyList<Measurement> results, string file, string op)
    {
        var plot = new ScottPlot.Plot();
        var ticks = new List<ScottPlot.Tick>();
        var bars = new List<ScottPlot.Bar>();
        string unit = results[0].HeadlineUnit;
        bool mixed = results.Any(r => r.HeadlineUnit != unit);
        for (int i = 0; i < results.Count; i++)
        {
            var r = results[i];
            bars.Add(new ScottPlot.Bar { Position = i, Value = r.Headline, FillColor = ScottPlot.Colors.C0 });
            string label = results.Select(x => x.Op).Distinct().Count() > 1 ? $"{r.Op} {r.Quant}\n{r.Label}" : r.Label;
            ticks.Add(new ScottPlot.Tick(i, label));
        }

        plot.Add.Bars(bars);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual([.. ticks]);
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.Margins(bottom: 0);
        var first = results[0];
        string shape = results.Select(r => r.Shape).Distinct().Count() == 1 ? $", {first.Shape}" : string.Empty;
        plot.Title(first.Op == "stream" ? $"bnb bench stream: read bandwidth{shape}" : $"bnb bench {op}: {first.Quant}/{first.Dtype}{shape}");
        plot.YLabel(mixed ? "GB/s (bandwidth ops) or GFLOP/s (gemm, int8)" : unit);
        plot.SavePng(file, Math.Max(640, 110 * results.Count), 480);
    }
}
