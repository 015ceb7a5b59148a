namespace Bnb.Examples.QLoRA;

/// <summary>
/// Plain AdamW (Loshchilov &amp; Hutter): bias-corrected first and second moments in float32 and decoupled weight
/// decay. One instance per parameter tensor.
/// </summary>
public sealed class AdamW(int size, float lr = 1e-2f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 0.01f)
{
    private readonly float[] _m = new float[size];
    private readonly float[] _v = new float[size];
    private int _step;

    /// <summary>Updates <paramref name="parameter"/> in place from <paramref name="gradient"/>.</summary>
    public void Step(Span<float> parameter, ReadOnlySpan<float> gradient)
    {
        if (parameter.Length != _m.Length || gradient.Length != _m.Length)
        {
            throw new ArgumentException($"expected {_m.Length} values, got {parameter.Length} parameters and {gradient.Length} gradients");
        }

        _step++;
        float c1 = 1 - MathF.Pow(beta1, _step), c2 = 1 - MathF.Pow(beta2, _step);
        for (int i = 0; i < parameter.Length; i++)
        {
            _m[i] = (beta1 * _m[i]) + ((1 - beta1) * gradient[i]);
            _v[i] = (beta2 * _v[i]) + ((1 - beta2) * gradient[i] * gradient[i]);
            parameter[i] -= lr * ((weightDecay * parameter[i]) + (_m[i] / c1 / (MathF.Sqrt(_v[i] / c2) + eps)));
        }
    }
}
