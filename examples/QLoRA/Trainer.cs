using Bnb.Dense;
using Bnb.Nn;
using Bnb.Optim;
using Bnb.Quantization;

namespace Bnb.Examples.QLoRA;

/// <summary>
/// QLoRA on the CPU in miniature. A "pretrained" two-layer MLP (In → Hidden → GELU → Out) is quantized to NF4 with
/// double quantization and frozen; LoRA adapters (rank <see cref="TrainerOptions.Rank"/>) on both layers learn a
/// fine-tuning task: matching a teacher whose weights differ from the base by a low-rank update. Gradients flow
/// through the frozen 4-bit weights into the first layer's adapter; only the adapters train — by default with
/// bitsandbytes' paged 8-bit AdamW (<see cref="Bnb.Optim.AdamW"/>, <c>optimBits: 8, paged: true</c>), or with the
/// plain float32 <see cref="AdamW"/> of this example.
/// </summary>
public static class Trainer
{
    /// <summary>Runs the fine-tuning and returns the training loss (mean squared error) of every step.</summary>
    public static IReadOnlyList<float> Run(Quantizer quantizer, TrainerOptions options, Action<int, float>? onStep = null)
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        ArgumentNullException.ThrowIfNull(options);
        var rng = new Random(options.Seed);
        int d0 = options.In, d1 = options.Hidden, d2 = options.Out;

        // Base ("pretrained") weights and a teacher = base + rank-2 update per layer (the task to learn).
        float[] w1 = Gaussian(rng, d1 * d0, 1 / MathF.Sqrt(d0)), w2 = Gaussian(rng, d2 * d1, 1 / MathF.Sqrt(d1));
        float[] t1 = AddLowRank(rng, w1, d1, d0, 2, 0.5f / MathF.Sqrt(d0)), t2 = AddLowRank(rng, w2, d2, d1, 2, 0.5f / MathF.Sqrt(d1));

        var base1 = Linear4bit.Quantize<float>(quantizer, w1, d1, d0, quantType: QuantType.Nf4, doubleQuant: true);
        var base2 = Linear4bit.Quantize<float>(quantizer, w2, d2, d1, quantType: QuantType.Nf4, doubleQuant: true);
        var lora1 = new LoraLinear(base1, options.Rank, options.Alpha, seed: options.Seed + 1);
        var lora2 = new LoraLinear(base2, options.Rank, options.Alpha, seed: options.Seed + 2);
        LoraLinear[] adapters = [lora1, lora2];
        using var optimizer = options.PlainAdamW ? null : PagedAdamW8Bit(quantizer, adapters, options.LearningRate);
        var plain = options.PlainAdamW ? adapters.SelectMany(a => new[] { new AdamW(a.A.Length, options.LearningRate), new AdamW(a.B.Length, options.LearningRate) }).ToArray() : [];

        int b = options.BatchSize;
        var losses = new List<float>();
        var target = new float[b * d2];
        var hidden = new float[b * d1];
        for (int step = 0; step < options.Steps; step++)
        {
            float[] x = Gaussian(rng, b * d0, 1);
            Teacher(x, t1, t2, b, d0, d1, d2, target);

            // Forward: h = gelu(lora1(x)), y = lora2(h).
            float[] z1 = lora1.Forward(x, b);
            z1.CopyTo(hidden, 0);
            RowOps.Gelu(hidden);
            float[] y = lora2.Forward(hidden, b);

            // MSE loss and its gradient.
            double loss = 0;
            var gy = new float[y.Length];
            for (int i = 0; i < y.Length; i++)
            {
                float e = y[i] - target[i];
                loss += e * e;
                gy[i] = 2 * e / y.Length;
            }

            losses.Add((float)(loss / y.Length));
            onStep?.Invoke(step, losses[^1]);

            // Backward: through lora2 (and its frozen NF4 weight) into h, through GELU, into lora1's adapter.
            lora1.ZeroGrad();
            lora2.ZeroGrad();
            var gh = new float[hidden.Length];
            lora2.Backward(gy, gh);
            for (int i = 0; i < gh.Length; i++)
            {
                gh[i] *= GeluDerivative(z1[i]);
            }

            lora1.Backward(gh, []);
            if (optimizer is not null)
            {
                optimizer.Step();
            }
            else
            {
                for (int i = 0; i < adapters.Length; i++)
                {
                    plain[2 * i].Step(adapters[i].A, adapters[i].GradA);
                    plain[(2 * i) + 1].Step(adapters[i].B, adapters[i].GradB);
                }
            }
        }

        return losses;
    }

    /// <summary>
    /// bitsandbytes' <c>PagedAdamW8bit</c> over the adapters' A and B (their gradient arrays are where Backward
    /// accumulates). The tensors are small, so the thresholds that keep small parameters in 32-bit, unpaged state
    /// are lowered to make every adapter use 8-bit blockwise, paged state.
    /// </summary>
    private static Bnb.Optim.AdamW PagedAdamW8Bit(Quantizer quantizer, LoraLinear[] adapters, float lr)
    {
        var parameters = adapters.SelectMany((a, i) => new[]
        {
            ParameterRef.Create<float>(a.A, a.GradA, $"lora{i}.A", a.Rank, a.InFeatures),
            ParameterRef.Create<float>(a.B, a.GradB, $"lora{i}.B", a.OutFeatures, a.Rank),
        });
        return new Bnb.Optim.AdamW(quantizer.Context, parameters, lr: lr, optimBits: 8, minEightBitSize: 256, paged: true) { PagedMinElements = 0 };
    }

    private static void Teacher(float[] x, float[] t1, float[] t2, int b, int d0, int d1, int d2, float[] output)
    {
        var h = new float[b * d1];
        Gemm.MatMulTransposedB(x, t1, h, b, d1, d0);
        RowOps.Gelu(h);
        Gemm.MatMulTransposedB(h, t2, output, b, d2, d1);
    }

    /// <summary>d/dz of z·Φ(z) = Φ(z) + z·φ(z).</summary>
    private static float GeluDerivative(float z) =>
        (float)((0.5 * (1 + RowOps.Erf(z / Math.Sqrt(2)))) + (z * Math.Exp(-0.5 * z * z) / Math.Sqrt(2 * Math.PI)));

    private static float[] Gaussian(Random rng, int n, float scale)
    {
        var r = new float[n];
        for (int i = 0; i < n; i++)
        {
            r[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        }

        return r;
    }

    private static float[] AddLowRank(Random rng, float[] w, int rows, int cols, int rank, float scale)
    {
        float[] u = Gaussian(rng, rows * rank, scale), v = Gaussian(rng, cols * rank, 1);
        var t = (float[])w.Clone();
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++)
            {
                for (int r = 0; r < rank; r++)
                {
                    t[(i * cols) + j] += u[(i * rank) + r] * v[(j * rank) + r];
                }
            }
        }

        return t;
    }
}

/// <summary>Sizes and hyper-parameters of <see cref="Trainer.Run"/>.</summary>
public sealed record TrainerOptions
{
    public int In { get; init; } = 64;

    public int Hidden { get; init; } = 128;

    public int Out { get; init; } = 32;

    public int Rank { get; init; } = 8;

    public float Alpha { get; init; } = 16;

    public int BatchSize { get; init; } = 32;

    public int Steps { get; init; } = 300;

    public float LearningRate { get; init; } = 1e-2f;

    public int Seed { get; init; } = 42;

    /// <summary>Use this example's float32 AdamW instead of Bnb.Optim's paged 8-bit AdamW.</summary>
    public bool PlainAdamW { get; init; }
}
