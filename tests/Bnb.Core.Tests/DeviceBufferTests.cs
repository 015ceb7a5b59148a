using Bnb.Errors;
using Bnb.Memory;
using Bnb.Quantization;
using Bnb.Runtime;

namespace Bnb.Tests;

/// <summary>
/// <see cref="DeviceBuffer"/> on cpu_ref (memory through buffer_alloc, copies through memory_copy, ops on its
/// tensor), and the GPU backends on a machine without a GPU: listed with zero devices, clear NoDevice errors.
/// </summary>
public sealed class DeviceBufferTests
{
    [BackendFact("cpu_ref")]
    public void Buffer_RoundTripsData_AndFeedsOps()
    {
        using var runtime = TestEnvironment.CreateRuntime(false, "cpu_ref");
        using var context = runtime.GetBackend("cpu_ref").CreateContext();
        var quantizer = new Quantizer(context);
        float[] input = new float[128];
        for (int i = 0; i < input.Length; i++)
        {
            input[i] = MathF.Sin(i * 0.37f) * (1 + (i % 7));
        }

        using var x = DeviceBuffer.Allocate(context, DType.F32, [128]);
        using var packed = DeviceBuffer.Allocate(context, DType.U8, [64]);
        using var absmax = DeviceBuffer.Allocate(context, DType.F32, [2]);
        using var back = DeviceBuffer.Allocate(context, DType.F32, [128], DeviceMemoryKind.HostPinned);
        Assert.Equal(512, x.Bytes);
        Assert.Equal("cpu_ref:0", x.Device);
        Assert.Equal("cpu_ref:0", x.Tensor.Device);

        float[] zeros = new float[128];
        x.CopyTo<float>(zeros);
        Assert.All(zeros, v => Assert.Equal(0f, v)); // buffer_alloc zeroes
        x.CopyFrom<float>(input);
        quantizer.Quantize4Bit(x.Tensor, packed.Tensor, absmax.Tensor, QuantType.Nf4, 64);
        quantizer.Dequantize4Bit(packed.Tensor, AbsmaxRef.Plain(absmax.Tensor), back.Tensor, QuantType.Nf4, 64);

        // the same op on host spans gives the same bytes: the buffer is just memory the backend allocated
        var host = quantizer.Quantize4Bit<float>(input, [128], QuantType.Nf4, 64);
        byte[] packedBytes = new byte[64];
        packed.CopyTo<byte>(packedBytes);
        Assert.Equal(host.Data, packedBytes);
        float[] dequantized = new float[128];
        back.CopyTo<float>(dequantized);
        Assert.Equal(quantizer.Dequantize4Bit<float>(host.Data, host.State), dequantized);
    }

    [BackendFact("cpu_ref")]
    public void Buffer_RejectsBadUse_WithClearErrors()
    {
        using var runtime = TestEnvironment.CreateRuntime(false, "cpu_ref");
        using var context = runtime.GetBackend("cpu_ref").CreateContext();
        var empty = Assert.Throws<ArgumentException>(() => DeviceBuffer.Allocate(context, DType.F32, [0]));
        Assert.Contains("holds no bytes", empty.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => DeviceBuffer.Allocate(context, DType.F32, [4], (DeviceMemoryKind)2));

        var buffer = DeviceBuffer.Allocate(context, DType.F32, [4]);
        var tooLong = Assert.Throws<ArgumentException>(() => buffer.CopyFrom<float>(new float[5]));
        Assert.Contains("20 bytes do not fit the buffer's 16", tooLong.Message);
        var view = Assert.Throws<ArgumentException>(() => buffer.AsTensor(DType.F32, 5));
        Assert.Contains("needs 20 bytes but the buffer holds 16", view.Message);
        buffer.Dispose();
        Assert.True(buffer.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => buffer.CopyTo<float>(new float[4]));
        Assert.Throws<ObjectDisposedException>(() => { _ = buffer.Tensor; });
    }

    [BackendFact("cuda")]
    public void Cuda_WithoutDevice_IsListedWithoutDevices_AndSaysNoDevice() => CheckGpuBackend("cuda", "CUDA");

    [BackendFact("hip")]
    public void Hip_WithoutDevice_IsListedWithoutDevices_AndSaysNoDevice() => CheckGpuBackend("hip", "HIP");

    private static void CheckGpuBackend(string name, string vendor)
    {
        using var probe = TestEnvironment.CreateRuntime(true, name);
        var backend = probe.GetBackend(name);
        Assert.Equal(DeviceKind.Gpu, backend.DeviceKind);
        if (backend.IsAvailable)
        {
            // a machine with a GPU: the devices are listed as "<name>:<index>" and a context can be made
            Assert.NotEmpty(backend.Devices);
            Assert.Contains(probe.Devices, d => d.Id == $"{name}:0" && d.Kind == DeviceKind.Gpu && d.WarpSize > 0);
            using var context = backend.CreateContext();
            Assert.Equal($"{name}:0", context.Device);
            return;
        }

        Assert.Empty(backend.Devices);
        Assert.DoesNotContain(probe.Devices, d => d.Backend == name);
        var error = Assert.Throws<BnbDeviceException>(() => backend.CreateContext());
        Assert.Equal(BnbStatus.NoDevice, error.Status);
        Assert.StartsWith($"bnb_{name}: context_create: no usable {vendor} device on this machine: ", error.Message);

        // the default runtime does not load a backend that cannot run (probe 0) and records why
        using var runtime = TestEnvironment.CreateRuntime(false, name);
        Assert.Empty(runtime.Backends);
        Assert.Equal(LoadStage.ProbeZero, Assert.Single(runtime.LoadAttempts).Stage);
    }
}
