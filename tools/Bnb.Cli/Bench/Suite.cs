namespace Bnb.Cli.Bench;

/// <summary>
/// <c>bnb bench suite</c>: the measurements behind benchmarks/README.md, side by side in one process — the
/// STREAM-like read bandwidth, then every issue-4 target op on every loaded backend at 1 and N threads.
/// </summary>
internal static class Suite
{
    /// <summary>The scalar reference runs single-threaded whatever the context asks: measure it once.</summary>
    private static IEnumerable<int> ThreadsOf(string backend, int[] threads) => backend == "cpu_ref" ? [threads.Min()] : threads;

    public static List<BenchJob> Jobs(List<string> backends, string? best, int[] threads)
    {
        var jobs = new List<BenchJob>();
        var stream = BenchCommand.DefaultSpec("stream", null, "f32", null, null, null, null, false, false, "nearest");
        jobs.AddRange(threads.Select(t => new BenchJob("memory", stream, t)));

        void All(BenchSpec spec, bool includeRef = true)
        {
            foreach (string b in backends.Where(b => includeRef || b != "cpu_ref"))
            {
                jobs.AddRange(ThreadsOf(b, threads).Select(t => new BenchJob(b, spec, t)));
            }
        }

        // 4-bit GEMV, cold weights, K = 8192, N = 16384 (bitsandbytes' own measurement shape), bf16 activations.
        All(BenchCommand.DefaultSpec("gemv", "nf4", "bf16", null, null, null, null, packed: false, hot: false, "nearest"));
        All(BenchCommand.DefaultSpec("gemv", "nf4", "bf16", null, null, null, null, packed: true, hot: false, "nearest"));
        All(BenchCommand.DefaultSpec("gemv", "nf4", "f32", null, null, null, null, packed: true, hot: false, "nearest"));

        // 4-bit GEMM M = 512, K = N = 4096, bf16 activations (the BF16 roof), packed layout.
        All(BenchCommand.DefaultSpec("gemm", "nf4", "bf16", null, null, null, null, packed: true, hot: false, "nearest"));

        // int8 matmul M = 512, K = N = 4096.
        All(BenchCommand.DefaultSpec("int8-matmul", null, "f32", null, null, null, null, false, false, "nearest"));

        // Quantize / dequantize, 64 M float32 elements (see README: 256 M does not fit CI's memory comfortably).
        foreach (string op in new[] { "quantize", "dequantize" })
        {
            All(BenchCommand.DefaultSpec(op, "nf4", "f32", null, null, null, null, false, false, "nearest"));
            All(BenchCommand.DefaultSpec(op, "q8", "f32", null, null, null, null, false, false, "nearest"));
        }

        All(BenchCommand.DefaultSpec("quantize", "q8", "f32", null, null, null, null, false, false, "lut"));
        _ = best;
        return jobs;
    }
}
