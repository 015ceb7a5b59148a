using BenchmarkDotNet.Attributes;
using static TorchSharp.torch;

namespace Bnb.Benchmarks.Torch;

/// <summary>
/// <see cref="OptimizerBenchmarks"/> (Bnb AdamW with 32-bit, 8-bit and paged 8-bit state) next to TorchSharp's fp32
/// AdamW on the same number of parameters and the same thread count, in one run. TorchSharp's parameter is one
/// tensor; its gradient is set once by a backward pass (optimizer steps do not clear it).
/// </summary>
public class TorchAdamWBenchmarks : OptimizerBenchmarks
{
    private TorchSharp.Modules.Parameter? _param;
    private TorchSharp.Modules.AdamW? _adamW;

    public static new Work WorkOf(string method, Func<string, object?> parameter) => OptimizerBenchmarks.WorkOf(method, parameter);

    public override void Setup()
    {
        base.Setup();
        set_num_threads(Threads);
        _param = new TorchSharp.Modules.Parameter(empty(Params).uniform_(-0.1, 0.1), requires_grad: true);
        using (Tensor g = empty(Params).uniform_(-0.01, 0.01))
        using (Tensor loss = (_param * g).sum())
        {
            loss.backward();
        }

        _adamW = optim.AdamW([_param], lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 1e-2);
        _adamW.step(); // allocate exp_avg / exp_avg_sq
    }

    [Benchmark(Baseline = true)]
    public void TorchSharpAdamW32() => _adamW!.step();

    public override void Cleanup()
    {
        _adamW?.Dispose();
        _param?.Dispose();
        base.Cleanup();
    }
}
