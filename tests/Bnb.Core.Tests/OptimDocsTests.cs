using Bnb.Optim;
using Bnb.Runtime;

namespace Bnb.Tests;

/// <summary>The C# example of docs/optimizers.md compiles (it is this file's <see cref="Example"/>) and runs.</summary>
public sealed class OptimDocsTests(OptimBackendsFixture backends) : IClassFixture<OptimBackendsFixture>
{
    [CpuBackendsFact]
    public void The_documented_example_is_this_code_and_it_trains()
    {
        string source = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "tests", "Bnb.Core.Tests", "OptimDocsTests.cs"));
        string doc = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "docs", "optimizers.md"));
        Assert.Contains(Block(source, "// example:begin", "// example:end"), Normalize(doc), StringComparison.Ordinal);

        string dir = Directory.CreateTempSubdirectory("bnb-optim-doc-").FullName;
        try
        {
            string path = Path.Combine(dir, "optimizer.safetensors");
            float loss = Example(backends.Context(OptimBackendsFixture.AvailableBackends[^1]), path);
            Assert.True(loss < 0.5f * 4096 * 256 * 0.01f, $"loss {loss} did not go down"); // starts at Σ w² = n·0.01
            Assert.True(File.Exists(path));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Fits w to 0 (loss Σ w², gradient 2w): enough to show the loop.</summary>
    private static float Example(BnbContext context, string statePath)
    {
        // example:begin
        // The caller's parameters and gradient buffers: arrays here; Memory<T> or native pointers work the same.
        float[] weight = new float[4096 * 256], weightGrad = new float[weight.Length];
        float[] bias = new float[256], biasGrad = new float[bias.Length];
        Array.Fill(weight, 0.1f);
        var w = ParameterRef.Create<float>(weight, weightGrad, "layer.weight", 4096, 256);
        var b = ParameterRef.Create<float>(bias, biasGrad, "layer.bias");

        // bitsandbytes' AdamW8bit: 8-bit blockwise state for w; b (256 < min_8bit_size) keeps 32-bit state.
        using var optimizer = new AdamW(context, [w], lr: 1e-2, optimBits: 8);
        optimizer.AddParamGroup(new ParameterGroup([b], new OptimizerSettings { WeightDecay = 0 }));

        for (int step = 0; step < 20; step++)
        {
            for (int i = 0; i < weight.Length; i++)
            {
                weightGrad[i] = 2 * weight[i]; // your backward pass writes the gradients in place
            }

            optimizer.Step(); // updates weight and bias in place
        }

        optimizer.SaveState(statePath); // resume later with optimizer.LoadState(statePath)
        Console.WriteLine($"state: {optimizer.StateBytes / (double)(weight.Length + bias.Length):F2} bytes/param");
        // example:end
        return weight.Sum(x => x * x);
    }

    private static string Block(string text, string begin, string end)
    {
        int a = text.LastIndexOf(begin, StringComparison.Ordinal) + begin.Length, z = text.IndexOf(end, a, StringComparison.Ordinal);
        return Normalize(text[a..z]);
    }

    /// <summary>Lines trimmed and joined: indentation may differ between the doc and the source.</summary>
    private static string Normalize(string text) =>
        string.Join("\n", text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith("```", StringComparison.Ordinal)));
}
