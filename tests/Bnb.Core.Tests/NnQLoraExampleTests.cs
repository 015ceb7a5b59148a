using Bnb.Examples.QLoRA;

namespace Bnb.Tests;

/// <summary>The QLoRA example (examples/QLoRA) trains: its loss falls.</summary>
public sealed class NnQLoraExampleTests(CpuRefFixture fixture) : IClassFixture<CpuRefFixture>
{
    [BackendTheory("cpu_ref")]
    [InlineData(false)]
    [InlineData(true)]
    public void Lora_adapters_over_a_frozen_nf4_base_learn_the_task(bool plainAdamW)
    {
        // Default: Bnb.Optim's paged 8-bit AdamW; else the example's float32 AdamW.
        var losses = Trainer.Run(fixture.Quantizer, new TrainerOptions { Steps = 150, PlainAdamW = plainAdamW });
        Assert.Equal(150, losses.Count);
        Assert.All(losses, l => Assert.True(float.IsFinite(l)));
        float first = losses.Take(10).Average(), last = losses.TakeLast(10).Average();
        Assert.True(last < 0.1f * first, $"loss fell only from {first} to {last}");
    }

    [Fact]
    public void AdamW_moves_against_the_gradient_and_checks_sizes()
    {
        var opt = new AdamW(2, lr: 0.1f, weightDecay: 0);
        float[] p = [1f, -1f];
        opt.Step(p, [0.5f, -2f]);

        // First bias-corrected Adam step is lr · sign(g) (up to eps).
        Assert.Equal(0.9f, p[0], 5);
        Assert.Equal(-0.9f, p[1], 5);
        Assert.Throws<ArgumentException>(() => opt.Step(p, [1f]));
    }
}
