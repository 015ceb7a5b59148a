using System.Globalization;
using Bnb.Examples.QLoRA;
using Bnb.Quantization;
using Bnb.Runtime;

// QLoRA in miniature: LoRA adapters trained on the CPU over frozen NF4 (double-quantized) base layers.
// Usage: dotnet run --project examples/QLoRA [-- steps [--plain-adamw]]   (BNB_LIBRARY_PATH must point at the native backends)
int steps = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 300;
bool plain = args.Contains("--plain-adamw");
using var runtime = new BnbRuntime();
var backend = runtime.DefaultBackend;
if (backend is null)
{
    Console.Error.WriteLine("No Bnb backend could be loaded; set BNB_LIBRARY_PATH to artifacts/native/<rid> (see `bnb info`).");
    return 1;
}

using var context = backend.CreateContext();
var quantizer = new Quantizer(context);
var options = new TrainerOptions { Steps = steps, PlainAdamW = plain };
Console.WriteLine($"backend {backend.Name}; MLP {options.In}→{options.Hidden}→{options.Out}, NF4 + double quant base, LoRA rank {options.Rank}, " +
    $"{(plain ? "float32 AdamW" : "paged 8-bit AdamW")} lr {options.LearningRate}");
var losses = Trainer.Run(quantizer, options, (step, loss) =>
{
    if (step % 25 == 0 || step == options.Steps - 1)
    {
        Console.WriteLine($"step {step,4}  loss {loss:F5}");
    }
});

float first = losses.Take(10).Average(), last = losses.TakeLast(10).Average();
Console.WriteLine($"mean loss of the first 10 steps {first:F5}, of the last 10 {last:F5} ({last / first:P1})");
return last < first ? 0 : 2;
