using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using Bnb.Benchmarks;

// Any BenchmarkDotNet command line works (e.g. `-- --list flat`, `--filter *Gemv* --job Default`); with no
// arguments: every benchmark, short job. Benchmarks run in-process (--inProcess) unless --outOfProcess is given:
// the out-of-process toolchain searches the whole repository for the project file and trips over the wine
// prefix's z: → / link (.wine/dosdevices), and the in-process emit toolchain has no per-benchmark build either.
var config = ManualConfig.Create(DefaultConfig.Instance)
    .AddColumn(new ThroughputColumn(flops: false), new ThroughputColumn(flops: true));
var effective = args.Length > 0 ? args.ToList() : ["--filter", "*", "--job", "short"];
if (!effective.Remove("--outOfProcess") && !effective.Contains("--inProcess", StringComparer.OrdinalIgnoreCase))
{
    effective.Add("--inProcess");
}

var summaries = BenchmarkSwitcher.FromAssembly(typeof(Backends).Assembly).Run([.. effective], config);
return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
