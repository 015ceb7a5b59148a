using System.Runtime.InteropServices;
using Bnb.Memory;

namespace Bnb.Cli.Bench;

/// <summary>A 64-byte aligned unmanaged buffer (benchmark operands can exceed 2 GiB and must not move).</summary>
internal sealed unsafe class NativeBuffer : IDisposable
{
    private void* _pointer;

    public NativeBuffer(long bytes)
    {
        Bytes = Math.Max(bytes, 1);
        _pointer = NativeMemory.AlignedAlloc((nuint)Bytes, 64);
        if (_pointer == null)
        {
            throw new OutOfMemoryException($"cannot allocate {Bytes:N0} bytes for the benchmark");
        }
    }

    public long Bytes { get; }

    public void* Pointer => _pointer;

    public TensorRef Tensor(DType dtype, params ReadOnlySpan<long> shape) => TensorRef.FromPointer(_pointer, dtype, shape);

    /// <summary>Random bytes (4-bit codes, 8-bit codes, int8 values): any byte is a valid code.</summary>
    public void FillRandomBytes(Random random)
    {
        for (long offset = 0; offset < Bytes; offset += int.MaxValue / 2)
        {
            int n = (int)Math.Min(int.MaxValue / 2, Bytes - offset);
            random.NextBytes(new Span<byte>((byte*)_pointer + offset, n));
        }
    }

    /// <summary><paramref name="count"/> values uniform in [lo, hi) stored as <paramref name="dtype"/> (f32, f16 or bf16).</summary>
    public void FillRandomFloats(Random random, DType dtype, long count, float lo = -1f, float hi = 1f)
    {
        float span = hi - lo;
        switch (dtype)
        {
            case DType.F32:
                {
                    var p = (float*)_pointer;
                    for (long i = 0; i < count; i++)
                    {
                        p[i] = lo + (random.NextSingle() * span);
                    }

                    break;
                }

            case DType.F16:
                {
                    var p = (Half*)_pointer;
                    for (long i = 0; i < count; i++)
                    {
                        p[i] = (Half)(lo + (random.NextSingle() * span));
                    }

                    break;
                }

            case DType.BF16:
                {
                    var p = (BFloat16*)_pointer;
                    for (long i = 0; i < count; i++)
                    {
                        p[i] = (BFloat16)(lo + (random.NextSingle() * span));
                    }

                    break;
                }

            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "float dtype expected");
        }
    }

    /// <summary>Writes every cache line (touches the pages so first-use page faults stay out of the timing).</summary>
    public void Touch()
    {
        var p = (byte*)_pointer;
        for (long i = 0; i < Bytes; i += 4096)
        {
            p[i] = p[i];
        }
    }

    public void Dispose()
    {
        if (_pointer != null)
        {
            NativeMemory.AlignedFree(_pointer);
            _pointer = null;
        }
    }
}
