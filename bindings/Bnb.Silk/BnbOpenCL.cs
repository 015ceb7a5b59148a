using Bnb.Memory;
using Bnb.Runtime;
using Silk.NET.OpenCL;

namespace Bnb.Silk;

/// <summary>
/// Zero-copy interop between Silk.NET.OpenCL and Bnb's OpenCL backend (bnb_xpu).
/// </summary>
/// <remarks>
/// <para>An application that already drives OpenCL with Silk.NET keeps its own <c>cl_context</c>, in-order
/// <c>cl_command_queue</c> and <c>cl_mem</c> buffers. <see cref="UseQueue"/> makes a Bnb context run its ops on that
/// queue (and so in that OpenCL context); <see cref="Tensor"/> describes a <c>cl_mem</c> as a <see cref="TensorRef"/>.
/// Bnb's kernels then read and write the application's buffers in place: nothing is copied on Bnb's side, results are
/// ordered on the queue like the application's own commands, and the application reads them back (or keeps using
/// them) with Silk.NET as usual.</para>
/// <para>How a <c>cl_mem</c> travels through the C ABI: <c>bnb_tensor.data = (1 &lt;&lt; 63) | cl_mem</c> (a "cl_mem
/// reference", docs/backends.md "XPU"). Bit 63 is never set in a user-space address on 64-bit systems, so bnb_xpu
/// tells references from host pointers without dereferencing anything. A reference has no offset: for a view into a
/// larger buffer create a sub-buffer (<c>clCreateSubBuffer</c>) and pass that.</para>
/// <para>Lifetimes: keep the buffers and the queue alive until the ops that use them have finished (synchronize the
/// queue or the <see cref="BnbStream"/>); dispose the returned stream before releasing the queue.</para>
/// </remarks>
public static class BnbOpenCL
{
    /// <summary>Bit 63: marks a <c>bnb_tensor.data</c> value as a <c>cl_mem</c> handle (bnb_xpu).</summary>
    public const ulong ClMemTag = 1UL << 63;

    /// <summary>The <c>bnb_tensor.data</c> value that stands for <paramref name="clMem"/> on bnb_xpu.</summary>
    /// <exception cref="ArgumentException">0, or a value with bit 63 set (not a cl_mem handle of a 64-bit process).</exception>
    public static nint TensorData(nint clMem)
    {
        if (!Environment.Is64BitProcess)
        {
            throw new PlatformNotSupportedException("cl_mem references need a 64-bit process");
        }

        if (clMem == 0 || ((ulong)clMem & ClMemTag) != 0)
        {
            throw new ArgumentException($"0x{(ulong)clMem:x} is not a cl_mem handle", nameof(clMem));
        }

        return (nint)((ulong)clMem | ClMemTag);
    }

    /// <summary>
    /// A view of a <c>cl_mem</c> buffer as a Bnb tensor (contiguous, row-major). bnb_xpu checks that the buffer holds
    /// the declared elements and belongs to the OpenCL context of the queue the op runs on.
    /// </summary>
    public static TensorRef Tensor(nint clMem, DType dtype, params scoped ReadOnlySpan<long> shape) =>
        TensorRef.FromPointer(TensorData(clMem), dtype, shape, default, "xpu");

    /// <summary>
    /// Makes <paramref name="context"/> (a bnb_xpu context) run its ops on <paramref name="commandQueue"/>, an in-order
    /// queue the application created with Silk.NET. The queue is wrapped, not owned: dispose the returned stream (which
    /// also makes the context's own queue current again) before releasing the queue.
    /// </summary>
    /// <exception cref="ArgumentException">The context is not a bnb_xpu context.</exception>
    /// <exception cref="Bnb.Errors.BnbException">The queue is invalid, out-of-order, or on a device bnb_xpu does not list.</exception>
    public static BnbStream UseQueue(BnbContext context, nint commandQueue)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Backend.Name != "xpu")
        {
            throw new ArgumentException($"{context.Device} is not a bnb_xpu context: OpenCL queues and buffers only work with the xpu backend", nameof(context));
        }

        var stream = BnbStream.Wrap(context, commandQueue);
        try
        {
            stream.MakeCurrent();
        }
        catch
        {
            stream.Dispose();
            throw;
        }

        return stream;
    }

    /// <summary>
    /// The bnb_xpu device (<c>"xpu:&lt;index&gt;"</c>) that is the OpenCL device <paramref name="device"/>, matched by
    /// name; null when bnb_xpu does not list it.
    /// </summary>
    public static unsafe BnbDevice? FindDevice(BnbRuntime runtime, CL cl, nint device)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(cl);
        nuint size = 0;
        cl.GetDeviceInfo(device, DeviceInfo.Name, 0, null, &size);
        if (size == 0)
        {
            return null;
        }

        byte[] buffer = new byte[(int)size];
        fixed (byte* p = buffer)
        {
            cl.GetDeviceInfo(device, DeviceInfo.Name, size, p, null);
        }

        string name = System.Text.Encoding.UTF8.GetString(buffer).TrimEnd('\0').Trim();
        return runtime.Devices.FirstOrDefault(d => d.Backend == "xpu" && d.Name.StartsWith(name, StringComparison.Ordinal));
    }
}
