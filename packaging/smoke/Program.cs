// Packaging smoke test: loads every backend the restored Bnb.Runtime.Cpu package put next to the app (NuGet
// runtimes/<rid>/native, or the app directory of a self-contained publish) and runs an NF4 quantize → dequantize
// round trip through Bnb.Core on each, checking the error bound. Exit 0 only if at least one backend ran and all passed.
using System.Runtime.InteropServices;
using Bnb.Quantization;
using Bnb.Runtime;

var options = new BnbRuntimeOptions { UseEnvironment = false }; // only what the packages installed
using var runtime = new BnbRuntime(options);
string rid = RuntimeInformation.RuntimeIdentifier;
foreach (var a in runtime.LoadAttempts)
{
    Console.WriteLine($"smoke: {rid}: load {Path.GetFileName(a.Path)} from {a.Source}: {a.Stage}{(a.Message is { Length: > 0 } m ? " (" + m + ")" : string.Empty)}");
}

var backends = runtime.Backends.Where(b => b.IsAvailable).ToList();
if (backends.Count == 0)
{
    Console.WriteLine($"smoke: {rid}: FAILED: no backend loaded from the package");
    return 1;
}

const int rows = 64, cols = 1024, blocksize = 64;
var random = new Random(42);
float[] weight = new float[rows * cols];
for (int i = 0; i < weight.Length; i++)
{
    // roughly N(0, 0.02): the shape of a real weight matrix
    weight[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()) * 0.02);
}

int failures = 0;
foreach (var backend in backends)
{
    using var context = backend.CreateContext();
    var q = new Quantizer(context);
    var quantized = q.Quantize4Bit<float>(weight, [rows, cols], QuantType.Nf4, blocksize);
    float[] restored = q.Dequantize4Bit<float>(quantized.Data, quantized.State);

    // NF4 error bound: half the widest gap between neighbouring NF4 codes, times the block's absmax.
    float[] table = q.GetCodeTable(CodeTable.Nf4);
    float halfGap = 0;
    for (int i = 1; i < table.Length; i++)
    {
        halfGap = Math.Max(halfGap, (table[i] - table[i - 1]) / 2);
    }

    double worst = 0;
    for (int i = 0; i < weight.Length; i++)
    {
        float absmax = quantized.State.Absmax![i / blocksize];
        double ratio = Math.Abs(weight[i] - restored[i]) / (absmax * halfGap * 1.001 + 1e-12);
        worst = Math.Max(worst, ratio);
    }

    bool ok = worst <= 1.0 && quantized.Data.Length == weight.Length / 2;
    failures += ok ? 0 : 1;
    Console.WriteLine($"smoke: {rid}: {backend.Name} ({Path.GetFileName(backend.LibraryPath)}): NF4 round trip of {rows}x{cols}, worst error {worst:P1} of the bound: {(ok ? "ok" : "FAILED")}");
}

return failures == 0 ? 0 : 1;
