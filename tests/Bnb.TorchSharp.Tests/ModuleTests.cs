using Bnb.Quantization;
using Bnb.TorchSharp.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace Bnb.TorchSharp.Tests;

/// <summary>Linear4bit / Linear8bitLt inside TorchSharp models, against TorchSharp's own linear layers.</summary>
public sealed class ModuleTests(CpuRefQuantizer fixture) : IClassFixture<CpuRefQuantizer>
{
    private Quantizer Q => fixture.Quantizer;

    /// <summary>mean |a-b|, max |a-b| and mean |a-b| / (|a| + 1e-9), computed in float64.</summary>
    private static (double Mean, double Max, double Rel) Errors(Tensor actual, Tensor expected)
    {
        using var a = actual.to(ScalarType.Float64);
        using var b = expected.to(ScalarType.Float64);
        using var d = (a - b).abs();
        using var rel = d / (b.abs() + 1e-9);
        return (d.mean().item<double>(), d.max().item<double>(), rel.mean().item<double>());
    }

    [TorchTheory]
    [InlineData(QuantType.Nf4, 1, 256, 128)]
    [InlineData(QuantType.Nf4, 7, 512, 64)]
    [InlineData(QuantType.Fp4, 33, 256, 96)]
    public void Linear4bit_forward_matches_a_torch_linear_over_the_dequantized_weight(QuantType quantType, int rows, int k, int n)
    {
        torch.random.manual_seed(11);
        using var linear = nn.Linear(k, n);
        using var x = torch.randn(rows, k);
        using var module = Linear4bit.FromLinear(Q, linear, quantType, blocksize: 64, compressStatistics: true);
        using var _ = torch.no_grad();

        using var output = module.forward(x);
        using var wq = module.DequantizeWeight();
        using var reference = nn.functional.linear(x, wq, linear.bias);
        Assert.Equal(new long[] { rows, n }, output.shape);

        // bitsandbytes test_gemv_4bit (spec §6.1), float32, dim <= 512: errors against dequantize + linear divided by
        // sqrt(dim) stay below mean + 7 std of err1 2e-8±2e-9, maxerr1 6e-8±2e-8; relerr1 8e-7±1.2e-6 (not scaled).
        var (mean, max, rel) = Errors(output, reference);
        double scale = Math.Sqrt(k);
        Assert.True(mean / scale < 2e-8 + (7 * 2e-9), $"mean error {mean / scale:E3} per sqrt(dim)");
        Assert.True(max / scale < 6e-8 + (7 * 2e-8), $"max error {max / scale:E3} per sqrt(dim)");
        Assert.True(rel < 8e-7 + (7 * 1.2e-6), $"relative error {rel:E3}");

        // Against the original float32 layer the only difference is the 4-bit weight error: the output error stays
        // within the 4-bit quantization error of the weights (spec §6.1 test_4bit_compressed_stats: mean abs error of
        // normalized values < 0.11), carried through a dot product over k inputs of unit variance.
        using var full = linear.forward(x);
        using var dw = (wq - linear.weight!).abs();
        double weightErr = dw.mean().item<float>();
        var (outErr, _, _) = Errors(output, full);
        Assert.True(outErr < 1.5 * weightErr * Math.Sqrt(k), $"output error {outErr:E3} vs weight error {weightErr:E3}");
        Assert.True(outErr > 0, "a 4-bit layer cannot reproduce float32 exactly");
    }

    [TorchFact]
    public void Linear4bit_accepts_half_and_bfloat16_inputs_and_batched_shapes()
    {
        torch.random.manual_seed(12);
        using var linear = nn.Linear(128, 32);
        using var module = Linear4bit.FromLinear(Q, linear);
        using var _ = torch.no_grad();
        using var x = torch.randn(2, 3, 128);
        using var wq = module.DequantizeWeight();

        foreach (var (dtype, meanBound) in new[] { (ScalarType.Float16, 5.2e-5 + (7 * 6.3e-6)), (ScalarType.BFloat16, 4.2e-4 + (7 * 5.9e-5)) })
        {
            using var xt = x.to(dtype);
            using var output = module.forward(xt);
            Assert.Equal(dtype, output.dtype);
            Assert.Equal(new long[] { 2, 3, 32 }, output.shape);
            using var reference = nn.functional.linear(xt.to(ScalarType.Float32), wq, linear.bias);
            var (mean, _, _) = Errors(output, reference);
            Assert.True(mean / Math.Sqrt(128) < meanBound, $"{dtype}: mean error {mean / Math.Sqrt(128):E3} per sqrt(dim)");
        }
    }

    [TorchFact]
    public void Linear4bit_reads_a_non_contiguous_input_correctly()
    {
        torch.random.manual_seed(13);
        using var linear = nn.Linear(64, 16);
        using var module = Linear4bit.FromLinear(Q, linear, compressStatistics: false);
        using var _ = torch.no_grad();
        using var xt = torch.randn(64, 5).t(); // [5, 64] with strides [1, 5]
        using var dense = xt.contiguous();
        using var a = module.forward(xt);
        using var b = module.forward(dense);
        Assert.Equal(b.data<float>().ToArray(), a.data<float>().ToArray());
    }

    [TorchFact]
    public void Linear8bitLt_matches_a_half_precision_linear_within_bitsandbytes_tolerance()
    {
        // bitsandbytes test_linear_no_igemmlt (spec §6.5): Linear 1024 -> 3072, x fp16 [3, 1024], threshold 6: at most
        // 2.5e-4 of the elements outside atol 0.02 / rtol 1e-5 of the fp16 layer, and all within atol 0.03.
        torch.random.manual_seed(14);
        using var linear = nn.Linear(1024, 3072);
        using var module = Linear8bitLt.FromLinear(Q, linear, threshold: 6f);
        using var _ = torch.no_grad();
        using var x = torch.randn(3, 1024).to(ScalarType.Float16);
        x[0, 17] = torch.tensor(9.0f); // one outlier column: exercises the mixed-precision decomposition
        x[2, 500] = torch.tensor(-7.5f);

        using var output = module.forward(x);
        Assert.Equal(ScalarType.Float16, output.dtype);
        using var w16 = linear.weight!.to(ScalarType.Float16);
        using var b16 = linear.bias!.to(ScalarType.Float16);
        using var reference = nn.functional.linear(x.to(ScalarType.Float32), w16.to(ScalarType.Float32), b16.to(ScalarType.Float32)).to(ScalarType.Float16);

        using var o = output.to(ScalarType.Float32);
        using var r = reference.to(ScalarType.Float32);
        using var tolerance = (r.abs() * 1e-5) + 0.02;
        using var outside = (o - r).abs() > tolerance;
        long bad = outside.sum().item<long>();
        Assert.True(bad <= (long)(2.5e-4 * o.numel()), $"{bad} of {o.numel()} elements outside atol 0.02");
        Assert.True((o - r).abs().max().item<float>() <= 0.03f);
    }

    [TorchFact]
    public void Linear8bitLt_outlier_columns_are_computed_exactly_from_the_dequantized_int8_weights()
    {
        torch.random.manual_seed(15);
        using var linear = nn.Linear(64, 8);
        using var plain = Linear8bitLt.FromLinear(Q, linear, threshold: 0f);
        using var decomposed = Linear8bitLt.FromLinear(Q, linear, threshold: 3f);
        using var _ = torch.no_grad();
        using var x = torch.randn(4, 64) * 0.5f;
        x[1, 10] = torch.tensor(20f); // an outlier that wrecks the row scale without decomposition

        using var wq = decomposed.DequantizeWeight();
        using var reference = nn.functional.linear(x, linear.weight!, linear.bias);
        using var withOutliers = decomposed.forward(x);
        using var without = plain.forward(x);
        var (errDecomposed, _, _) = Errors(withOutliers, reference);
        var (errPlain, _, _) = Errors(without, reference);
        Assert.True(errDecomposed < errPlain / 2, $"decomposition error {errDecomposed:E3} vs plain int8 {errPlain:E3}");
        Assert.True(errDecomposed < 0.02, $"decomposition error {errDecomposed:E3}");
    }

    [TorchFact]
    public void Bnb_modules_run_inside_a_torch_Sequential_model()
    {
        torch.random.manual_seed(16);
        using var l1 = nn.Linear(96, 64);
        using var l2 = nn.Linear(64, 10);
        using var q1 = Linear4bit.FromLinear(Q, l1, QuantType.Nf4);
        using var q2 = Linear8bitLt.FromLinear(Q, l2);
        using var model = nn.Sequential(("fc1", q1), ("act", nn.ReLU()), ("fc2", q2));
        using var _ = torch.no_grad();
        using var x = torch.randn(5, 96);

        using var y = model.forward(x);
        using var h = q1.forward(x);
        using var hr = nn.functional.relu(h);
        using var expected = q2.forward(hr);
        Assert.Equal(expected.data<float>().ToArray(), y.data<float>().ToArray());
        Assert.Contains(model.named_buffers(), b => b.name == "fc1.bias");
        Assert.Contains(model.named_buffers(), b => b.name == "fc2.weight");
        Assert.Contains(model.named_buffers(), b => b.name == "fc2.SCB");
    }

    [TorchFact]
    public void Wrapped_Bnb_Nn_layers_give_exactly_the_layers_own_results()
    {
        var r = new Random(17);
        float[] w = [.. Enumerable.Range(0, 48 * 128).Select(_ => (float)((r.NextDouble() * 2) - 1) * 0.1f)];
        float[] bias = [.. Enumerable.Range(0, 48).Select(i => i * 0.01f)];
        float[] x = [.. Enumerable.Range(0, 3 * 128).Select(_ => (float)((r.NextDouble() * 2) - 1))];
        var layer4 = Bnb.Nn.Linear4bit.Quantize<float>(Q, w, 48, 128, bias, QuantType.Fp4, 128, doubleQuant: true);
        var layer8 = Bnb.Nn.Linear8bitLt.Quantize<float>(Q, w, 48, 128, bias, threshold: 0.9f);
        using var m4 = new Linear4bit(layer4, Q);
        using var m8 = new Linear8bitLt(layer8, Q);
        using var _ = torch.no_grad();
        using var xt = x.ToTorch(3, 128);
        using var y4 = m4.forward(xt);
        using var y8 = m8.forward(xt);
        Assert.Equal(Bnb.Nn.QuantizedLinearExtensions.Forward(layer4, x, 3), y4.data<float>().ToArray());
        Assert.Equal(Bnb.Nn.QuantizedLinearExtensions.Forward(layer8, x, 3), y8.data<float>().ToArray());
        Assert.True(layer8.LastOutlierCount > 0, "the input was chosen to have outlier columns");
        m8.Weight[0, 0] = torch.tensor((sbyte)5, ScalarType.Int8); // the CB buffer is a view of the layer's array
        Assert.Equal((sbyte)5, layer8.Weight.CB[0]);
    }

    [TorchFact]
    public void Forward_rejects_bad_inputs_with_clear_messages()
    {
        using var linear = nn.Linear(64, 8);
        using var module = Linear4bit.FromLinear(Q, linear);
        using var wrongK = torch.randn(2, 32);
        var e1 = Assert.Throws<ArgumentException>(() => module.forward(wrongK));
        Assert.Contains("does not end in in_features = 64", e1.Message, StringComparison.Ordinal);

        using var ints = torch.zeros([2, 64], ScalarType.Int32);
        var e2 = Assert.Throws<ArgumentException>(() => module.forward(ints));
        Assert.Contains("Int32 is not float32, float16 or bfloat16", e2.Message, StringComparison.Ordinal);

        var e4 = Assert.Throws<ArgumentOutOfRangeException>(() => Linear8bitLt.FromLinear(Q, linear, threshold: float.NaN));
        Assert.Contains("threshold", e4.Message, StringComparison.Ordinal);
    }

    [TorchTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void Input_gradients_flow_through_the_frozen_quantized_weight(bool eightBit)
    {
        // QLoRA shape: a trainable layer before the quantized one, a trainable adapter beside it.
        torch.random.manual_seed(18);
        using var first = nn.Linear(32, 64);
        using var baseLayer = nn.Linear(64, 48);
        using var adapter = nn.Linear(64, 48, hasBias: false);
        BnbLinear quantized = eightBit ? Linear8bitLt.FromLinear(Q, baseLayer, threshold: 0f) : Linear4bit.FromLinear(Q, baseLayer);
        using var wq = eightBit ? ((Linear8bitLt)quantized).DequantizeWeight() : ((Linear4bit)quantized).DequantizeWeight();
        using var x = torch.randn(5, 32);

        using var h = first.forward(x);
        using var y = quantized.forward(h) + adapter.forward(h);
        Assert.True(y.requires_grad);
        using (var loss = y.square().sum())
        {
            loss.backward();
        }

        using var gradFirst = first.weight!.grad!.clone();
        using var gradAdapter = adapter.weight!.grad!.clone();
        first.zero_grad();
        adapter.zero_grad();

        // The same graph in TorchSharp with the dequantized weight as a constant.
        using var h2 = first.forward(x);
        using var yRef = nn.functional.linear(h2, wq, baseLayer.bias!.detach()) + adapter.forward(h2);
        using (var loss = yRef.square().sum())
        {
            loss.backward();
        }

        // 4-bit: the forward is the dequantized linear up to summation order; 8-bit: the forward quantizes the
        // activations, so y (and the gradients through it) differ by the int8 activation error.
        double tolerance = eightBit ? 0.05 : 1e-4;
        Assert.True(gradFirst.allclose(first.weight!.grad!, rtol: tolerance, atol: tolerance), "gradient of the layer before");
        Assert.True(gradAdapter.allclose(adapter.weight!.grad!, rtol: tolerance, atol: tolerance), "gradient of the adapter");
        quantized.Dispose();
    }

    [TorchFact]
    public void An_empty_batch_gives_an_empty_output()
    {
        using var linear = nn.Linear(64, 8);
        using var module = Linear4bit.FromLinear(Q, linear);
        using var _ = torch.no_grad();
        using var x = torch.zeros(0, 64);
        using var y = module.forward(x);
        Assert.Equal(new long[] { 0, 8 }, y.shape);
    }
}
