using Bnb.Errors;
using Bnb.Memory;
using Bnb.Quantization;
using Bnb.Runtime;
using Silk.NET.OpenCL;

namespace Bnb.Silk.Tests;

/// <summary>
/// An application that drives OpenCL with Silk.NET (its own context, in-order queue and cl_mem buffers) quantizes a
/// weight to NF4 and runs gemv_4bit through Bnb's bnb_xpu backend on those buffers, in place, then reads the results
/// back with Silk.NET. They must equal bnb_cpu_ref's on the same inputs, bit for bit (bnb_xpu's plain kernels sum in
/// the reference's order; PoCL runs them on the CPU in CI).
/// </summary>
public sealed unsafe class SilkRoundTripTests : IDisposable
{
    private const int N = 80, K = 192, Blocksize = 64;

    private readonly CL _cl = CL.GetApi();
    private readonly nint _device, _context, _queue;

    public SilkRoundTripTests()
    {
        if (SilkEnvironment.SkipReason is not null)
        {
            return;
        }

        _device = SilkEnvironment.FirstDevice(_cl);
        int err;
        nint device = _device;
        _context = _cl.CreateContext(null, 1, &device, null, null, &err);
        Assert.Equal(0, err);
        _queue = _cl.CreateCommandQueue(_context, _device, (CommandQueueProperties)0, &err);
        Assert.Equal(0, err);
    }

    public void Dispose()
    {
        if (_queue != 0) _cl.ReleaseCommandQueue(_queue);
        if (_context != 0) _cl.ReleaseContext(_context);
        _cl.Dispose();
    }

    private nint Buffer<T>(T[] init) where T : unmanaged
    {
        int err;
        nint m;
        fixed (T* p = init)
        {
            m = _cl.CreateBuffer(_context, MemFlags.ReadWrite | MemFlags.CopyHostPtr, (nuint)(init.Length * sizeof(T)), p, &err);
        }

        Assert.Equal(0, err);
        return m;
    }

    private T[] Read<T>(nint buffer, int count) where T : unmanaged
    {
        var result = new T[count];
        fixed (T* p = result)
        {
            Assert.Equal(0, _cl.EnqueueReadBuffer(_queue, buffer, true, 0, (nuint)(count * sizeof(T)), p, 0, null, null));
        }

        return result;
    }

    private static (float[] W, float[] A) Inputs()
    {
        var rng = new Random(1234);
        float[] w = new float[N * K], a = new float[K];
        for (int i = 0; i < w.Length; i++) w[i] = (float)(rng.NextDouble() * 2 - 1) * 0.05f;
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return (w, a);
    }

    [SilkFact]
    public void Quantize_and_gemv_4bit_run_in_place_on_the_applications_buffers_and_match_cpu_ref()
    {
        var (w, a) = Inputs();

        // reference on host memory
        using var runtime = SilkEnvironment.CreateRuntime();
        byte[] packedRef = new byte[N * K / 2];
        float[] absmaxRef = new float[N * K / Blocksize], outRef = new float[N];
        using (var cpu = runtime.GetBackend("cpu_ref").CreateContext())
        {
            var q = new Quantizer(cpu);
            q.Quantize4Bit(TensorRef.FromSpan(w.AsSpan()), TensorRef.FromSpan(packedRef.AsSpan()), TensorRef.FromSpan(absmaxRef.AsSpan()), QuantType.Nf4, Blocksize);
            q.Gemv4Bit(TensorRef.FromSpan(a.AsSpan(), 1, K), TensorRef.FromSpan(packedRef.AsSpan()), AbsmaxRef.Plain(TensorRef.FromSpan(absmaxRef.AsSpan())),
                QuantType.Nf4, Blocksize, TensorRef.FromSpan(outRef.AsSpan(), 1, N));
        }

        // the application's OpenCL buffers, through bnb_xpu on the application's queue
        nint mW = Buffer(w), mA = Buffer(a), mPacked = Buffer(new byte[N * K / 2]), mAbsmax = Buffer(new float[N * K / Blocksize]), mOut = Buffer(new float[N]);
        try
        {
            BnbDevice? dev = BnbOpenCL.FindDevice(runtime, _cl, _device);
            Assert.NotNull(dev);
            using var xpu = runtime.GetBackend("xpu").CreateContext(dev.Index);
            using (BnbOpenCL.UseQueue(xpu, _queue))
            {
                var q = new Quantizer(xpu);
                q.Quantize4Bit(BnbOpenCL.Tensor(mW, DType.F32, N * K), BnbOpenCL.Tensor(mPacked, DType.U8, N * K / 2),
                    BnbOpenCL.Tensor(mAbsmax, DType.F32, N * K / Blocksize), QuantType.Nf4, Blocksize);
                q.Gemv4Bit(BnbOpenCL.Tensor(mA, DType.F32, 1, K), BnbOpenCL.Tensor(mPacked, DType.U8, N * K / 2),
                    AbsmaxRef.Plain(BnbOpenCL.Tensor(mAbsmax, DType.F32, N * K / Blocksize)), QuantType.Nf4, Blocksize,
                    BnbOpenCL.Tensor(mOut, DType.F32, 1, N));
            }

            // read back with Silk.NET on the same queue (in order after Bnb's kernels)
            Assert.Equal(packedRef, Read<byte>(mPacked, N * K / 2));
            Assert.Equal(absmaxRef, Read<float>(mAbsmax, N * K / Blocksize));
            Assert.Equal(outRef, Read<float>(mOut, N));
            Assert.Equal(w, Read<float>(mW, N * K)); // inputs untouched
        }
        finally
        {
            foreach (nint m in new[] { mW, mA, mPacked, mAbsmax, mOut }) _cl.ReleaseMemObject(m);
        }
    }

    [SilkFact]
    public void Buffers_that_are_too_small_or_of_another_context_fail_with_the_argument_named()
    {
        var (w, _) = Inputs();
        using var runtime = SilkEnvironment.CreateRuntime();
        int err;
        nint device = _device;
        nint otherContext = _cl.CreateContext(null, 1, &device, null, null, &err);
        Assert.Equal(0, err);
        nint mW = Buffer(w), small = Buffer(new byte[16]), mAbsmax = Buffer(new float[N * K / Blocksize]);
        nint foreign = _cl.CreateBuffer(otherContext, MemFlags.ReadWrite, (nuint)(N * K / 2), null, &err);
        Assert.Equal(0, err);
        try
        {
            using var xpu = runtime.GetBackend("xpu").CreateContext(BnbOpenCL.FindDevice(runtime, _cl, _device)!.Index);
            using var stream = BnbOpenCL.UseQueue(xpu, _queue);
            var q = new Quantizer(xpu);
            var tooSmall = Assert.ThrowsAny<BnbException>(() => q.Quantize4Bit(BnbOpenCL.Tensor(mW, DType.F32, N * K),
                BnbOpenCL.Tensor(small, DType.U8, N * K / 2), BnbOpenCL.Tensor(mAbsmax, DType.F32, N * K / Blocksize), QuantType.Nf4, Blocksize));
            Assert.Equal(BnbStatus.BufferTooSmall, tooSmall.Status);
            Assert.Contains("out_packed", tooSmall.Message, StringComparison.Ordinal);
            var other = Assert.ThrowsAny<BnbException>(() => q.Quantize4Bit(BnbOpenCL.Tensor(mW, DType.F32, N * K),
                BnbOpenCL.Tensor(foreign, DType.U8, N * K / 2), BnbOpenCL.Tensor(mAbsmax, DType.F32, N * K / Blocksize), QuantType.Nf4, Blocksize));
            Assert.Equal(BnbStatus.InvalidArgument, other.Status);
            Assert.Contains("another OpenCL context", other.Message, StringComparison.Ordinal);
            Assert.Equal(new float[N * K / Blocksize], Read<float>(mAbsmax, N * K / Blocksize)); // nothing written
        }
        finally
        {
            foreach (nint m in new[] { mW, small, mAbsmax, foreign }) _cl.ReleaseMemObject(m);
            _cl.ReleaseContext(otherContext);
        }
    }

    [SilkFact]
    public void Only_xpu_contexts_take_an_OpenCL_queue_and_cl_mem_handles_are_checked()
    {
        using var runtime = SilkEnvironment.CreateRuntime();
        using var cpu = runtime.GetBackend("cpu_ref").CreateContext();
        Assert.Throws<ArgumentException>(() => BnbOpenCL.UseQueue(cpu, _queue));
        Assert.Throws<ArgumentException>(() => BnbOpenCL.TensorData(0));
        Assert.Equal(unchecked((nint)0x8000_0000_0000_1000UL), BnbOpenCL.TensorData(0x1000));
    }
}

/// <summary><c>bnb info</c>'s OpenCL listing (Bnb.Core, its own ICD-loader probe) against Silk.NET's enumeration.</summary>
public sealed class OpenClListingTests
{
    [SilkFact]
    public void Bnb_lists_the_same_OpenCL_devices_as_SilkNet()
    {
        var platforms = OpenClPlatform.Enumerate(out string? problem);
        Assert.Null(problem);
        using var cl = CL.GetApi();
        var expected = SilkEnvironment.AllDevices(cl).Select(d => SilkEnvironment.DeviceName(cl, d)).ToList();
        Assert.NotEmpty(expected);
        Assert.Equal(expected, platforms.SelectMany(p => p.Devices).Select(d => d.Name));
        Assert.All(platforms.SelectMany(p => p.Devices), d => Assert.True(d.ComputeUnits > 0 && d.GlobalMemory > 0, $"{d.Name}: {d.ComputeUnits} units, {d.GlobalMemory} bytes"));
    }
}
