using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using Bnb.Benchmarks;
using Bnb.Benchmarks.Torch;

// Bnb AdamW (32-bit, 8-bit, paged 8-bit) and TorchSharp's fp32 AdamW side by side: same parameter count
// (BNB_OPTIM_BENCH_PARAMS, default 16 M), same thread counts (1 and all logical CPUs), one table. Any BenchmarkDotNet
// arguments work; default: the short job, in process (as Bnb.Benchmarks).
var config = ManualConfig.Create(DefaultConfig.Instance).AddColumn(new ThroughputColumn(flops: false));
var effective = args.Length > 0 ? args.ToList() : ["--filter", "*", "--job", "short"];
if (!effective.Remove("--outOfProcess") && !effective.Contains("--inProcess", StringComparer.OrdinalIgnoreCase))
{
    effective.Add("--inProcess");
}

var summaries = BenchmarkSwitcher.FromTypes([typeof(TorchAdamWBenchmarks)]).Run([.. effective], config);
return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
