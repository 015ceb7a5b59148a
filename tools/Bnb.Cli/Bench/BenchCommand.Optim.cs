using System.Diagnostics;
using System.Text.Json;
using Bnb.Memory;
using Bnb.Optim;
using Bnb.Runtime;
using Spectre.Console;

namespace Bnb.Cli.Bench;

/// <summary><c>bnb bench optim</c> settings.</summary>
/// <param name="Kind">adam, adamw, lamb, ademamix, lion, sgd, lars, rmsprop or adagrad.</param>
/// <param name="Bits">32 or 8.</param>
/// <param name="Paged">Paged state under a budget of <paramref name="BudgetMiB"/>.</param>
/// <param name="Params">Total parameters (f32), split into tensors of <paramref name="TensorParams"/>.</param>
/// <param name="TensorParams">Elements per parameter tensor (a model's layers; paging moves whole tensors).</param>
/// <param name="BudgetMiB">Paged: the pager budget; null = a quarter of the state (state 4× the budget).</param>
/// <param name="Rounding">8-bit state requantization: lut (the optimizers' default) or nearest.</param>
internal sealed record OptimBenchArgs(string Kind, int Bits, bool Paged, long Params, long TensorParams, long? BudgetMiB, string Rounding)
{
    public Quantization.Rounding RoundingMode => Rounding switch
    {
        "lut" => Quantization.Rounding.BnbCpuLut,
        "nearest" => Quantization.Rounding.Nearest,
        _ => throw new ArgumentException($"--rounding {Rounding}: expected lut or nearest"),
    };
}

internal static partial class BenchCommand
{
    public static readonly string[] OptimKinds = ["adam", "adamw", "lamb", "ademamix", "lion", "sgd", "lars", "rmsprop", "adagrad"];

    /// <summary>
    /// One optimizer step over <c>--params</c> f32 parameters (random values and gradients, state warmed by one
    /// untimed step) per measurement, per backend and thread count. GB/s counts the parameter, gradient and state
    /// bytes one step reads and writes.
    /// </summary>
    private static int RunOptim(BenchArgs args, BnbRuntime runtime, List<BnbBackend> backends, int[] threads, IAnsiConsole ui, IAnsiConsole err)
    {
        OptimBenchArgs o = args.Optim ?? throw new ArgumentException("bench optim: missing optimizer settings");
        if (!OptimKinds.Contains(o.Kind))
        {
            throw new ArgumentException($"--kind {o.Kind}: expected {string.Join(", ", OptimKinds)}");
        }

        if (o.Bits is not (8 or 32) || o.Params <= 0 || o.TensorParams <= 0)
        {
            throw new ArgumentException($"--bits {o.Bits} --params {o.Params} --tensor-params {o.TensorParams}: expected bits 8 or 32 and positive sizes");
        }

        var results = new List<Measurement>();
        foreach (BnbBackend backend in backends)
        {
            foreach (int t in threads)
            {
                if (!args.Json)
                {
                    ui.MarkupLineInterpolated($"[grey]{backend.Name} ×{t}: {o.Kind} {o.Bits}-bit{(o.Paged ? " paged" : "")}, {o.Params:N0} params...[/]");
                }

                results.Add(MeasureOptim(backend, t, o, args));
            }
        }

        string json = JsonSerializer.Serialize(results, Measurement.Json);
        if (args.JsonOut is { } path)
        {
            File.WriteAllText(path, json + "\n");
        }

        if (args.Json)
        {
            Console.Out.WriteLine(json);
            return 0;
        }

        var table = new Table().AddColumns("backend", "threads", "optimizer", "params", "median ms", "M params/s", "state B/param", "GB/s");
        foreach (Measurement m in results)
        {
            table.AddRow(m.Backend, m.Threads.ToString(System.Globalization.CultureInfo.InvariantCulture), m.Quant, m.N.ToString("N0", System.Globalization.CultureInfo.InvariantCulture),
                m.MedianMs.ToString("F1", System.Globalization.CultureInfo.InvariantCulture), (m.ParamsPerS!.Value / 1e6).ToString("F0", System.Globalization.CultureInfo.InvariantCulture),
                m.StateBytesPerParam!.Value.ToString("F3", System.Globalization.CultureInfo.InvariantCulture), m.Gbps.ToString("F1", System.Globalization.CultureInfo.InvariantCulture));
        }

        ui.Write(table);
        ui.MarkupLine($"[grey]{Markup.Escape(Machine.Cpu)}; one step over all parameters, median of timed steps after a state-allocating warm-up step.[/]");
        return 0;
    }

    private static unsafe Measurement MeasureOptim(BnbBackend backend, int threads, OptimBenchArgs o, BenchArgs args)
    {
        using BnbContext context = backend.CreateContext(numThreads: threads);
        using var values = new NativeBuffer(o.Params * 4);
        using var grads = new NativeBuffer(o.Params * 4);
        var random = new Random(20240601);
        values.FillRandomFloats(random, DType.F32, o.Params, -0.1f, 0.1f);
        grads.FillRandomFloats(random, DType.F32, o.Params, -0.01f, 0.01f);
        var parameters = new List<ParameterRef>();
        for (long start = 0; start < o.Params; start += o.TensorParams)
        {
            long n = Math.Min(o.TensorParams, o.Params - start);
            parameters.Add(ParameterRef.FromPointers((nint)((float*)values.Pointer + start), (nint)((float*)grads.Pointer + start), DType.F32, [n], $"p{parameters.Count}"));
        }

        using Optimizer optimizer = Create(context, o, parameters);
        PagedAllocator? pager = null;
        if (o.Paged)
        {
            // State per parameter: AdEMAMix 3 moments, Lion/SGD/LARS/RMSprop/Adagrad 1, Adam family 2.
            long moments = o.Kind == "ademamix" ? 3 : o.Kind is "adam" or "adamw" or "lamb" ? 2 : 1;
            long stateBytes = o.Params * moments * (o.Bits / 8);
            // Default: a quarter of the state, but at least one tensor's state (an update maps all of its moments).
            long budget = o.BudgetMiB is { } mib ? mib << 20 : Math.Max(stateBytes / 4, (moments * (o.Bits / 8) * Math.Min(o.TensorParams, o.Params)) + 4096);
            pager = new PagedAllocator(context, budget);
            optimizer.PagedAllocator = pager;
            optimizer.PagedMinElements = 0;
        }

        optimizer.Step(); // allocates the state (zero-initialised), so timed steps see steady-state work
        PagedMemoryStats? before = pager?.GetStats();
        int steps = 0;
        var job = new BenchJob(backend.Name, new BenchSpec("optim", $"{o.Kind}{(o.Bits == 8 ? "8bit" : "")}{(o.Paged ? "-paged" : "")}", "f32", 0, 0, o.Params, o.Bits == 8 ? Optimizer.BlockSize : 0, false, o.Bits == 8 ? o.Rounding : "-", false), threads);
        long stateTraffic = (long)(optimizer.StateBytes * 2); // every state byte read and written once per step
        long bytes = (o.Params * 12) + stateTraffic; // gradient read, parameter read + written
        Measurement m = Time(job, args, bytes, 0, 1, _ =>
        {
            long t0 = Stopwatch.GetTimestamp();
            optimizer.Step();
            steps++;
            return Stopwatch.GetElapsedTime(t0).TotalSeconds;
        }, _ => { });
        PagedMemoryStats? after = pager?.GetStats();
        return m with
        {
            Rounding = o.Bits == 8 ? o.Rounding : "-",
            ParamsPerS = o.Params / (m.MedianMs / 1e3),
            StateBytesPerParam = optimizer.StateBytes / (double)o.Params,
            Bits = o.Bits,
            Paged = o.Paged,
            PagerBudgetBytes = after?.BudgetBytes,
            PagerLoadedBytesPerStep = after is null ? null : (after.LoadedBytes - before!.LoadedBytes) / (double)Math.Max(steps, 1),
        };
    }

    private static Optimizer Create(BnbContext c, OptimBenchArgs o, List<ParameterRef> ps) => o.Kind switch
    {
        "adam" => new Adam(c, ps, optimBits: o.Bits, paged: o.Paged, rounding: o.RoundingMode),
        "adamw" => new AdamW(c, ps, optimBits: o.Bits, paged: o.Paged, rounding: o.RoundingMode),
        "lamb" => new Lamb(c, ps, optimBits: o.Bits, rounding: o.RoundingMode),
        "ademamix" => new AdEMAMix(c, ps, optimBits: o.Bits, paged: o.Paged, rounding: o.RoundingMode),
        "lion" => new Lion(c, ps, optimBits: o.Bits, paged: o.Paged, rounding: o.RoundingMode),
        "sgd" => new Sgd(c, ps, 0.01, 0.9, optimBits: o.Bits, rounding: o.RoundingMode),
        "lars" => new Lars(c, ps, 0.01, 0.9, optimBits: o.Bits, rounding: o.RoundingMode),
        "rmsprop" => new RmsProp(c, ps, optimBits: o.Bits, rounding: o.RoundingMode),
        _ => new Adagrad(c, ps, optimBits: o.Bits, rounding: o.RoundingMode),
    };
}
