using System.Globalization;
using System.Reflection;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Bnb.Benchmarks;

/// <summary>GB/s (bytes read + written per call / median time) or GFLOP/s (operations per call / median time).</summary>
public sealed class ThroughputColumn(bool flops) : IColumn
{
    public string Id => flops ? "Bnb.GFLOPs" : "Bnb.GBps";

    public string ColumnName => flops ? "GFLOP/s" : "GB/s";

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => flops ? 1 : 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string Legend => flops
        ? "Floating-point (int8: integer) operations per call / median time, 10^9 per second"
        : "Bytes read and written per call (packed weights + absmax + activations + outputs) / median time, 10^9 per second";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats is null || stats.Median <= 0)
        {
            return "-";
        }

        var work = WorkOf(benchmarkCase);
        double amount = flops ? work.Flops : work.Bytes;
        return amount > 0 ? (amount / stats.Median).ToString("G4", CultureInfo.InvariantCulture) : "-"; // per ns = 10^9 per s
    }

    public bool IsAvailable(Summary summary) => true;

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    internal static Work WorkOf(BenchmarkCase benchmarkCase)
    {
        var type = benchmarkCase.Descriptor.Type;
        var method = type.GetMethod(nameof(IWorkModel.WorkOf), BindingFlags.Public | BindingFlags.Static);
        if (method is null)
        {
            return default;
        }

        object? Parameter(string name) => benchmarkCase.Parameters.Items.FirstOrDefault(p => p.Name == name)?.Value;
        return (Work)method.Invoke(null, [benchmarkCase.Descriptor.WorkloadMethod.Name, (Func<string, object?>)Parameter])!;
    }
}
