using Bnb.Errors;
using Bnb.Interop;
using Bnb.Memory;
using Bnb.Quantization;
using Bnb.Runtime;

namespace Bnb.Tests;

public sealed class LoaderTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("bnb-loader-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static BnbRuntimeOptions Isolated(params string[] paths)
    {
        var o = new BnbRuntimeOptions { UseEnvironment = false, SearchApplicationDirectory = false };
        foreach (string p in paths)
        {
            o.LibraryPaths.Add(p);
        }

        return o;
    }

    [Fact]
    public void A_missing_file_is_a_trace_entry_not_a_crash()
    {
        string missing = Path.Combine(_temp, "libbnb_nothere.so");
        using var runtime = new BnbRuntime(Isolated(missing));
        var attempt = Assert.Single(runtime.LoadAttempts);
        Assert.Equal(LoadStage.NotFound, attempt.Stage);
        Assert.Equal(missing, attempt.Path);
        Assert.Equal(LoadSource.Explicit, attempt.Source);
        Assert.Empty(runtime.Backends);
        Assert.Null(runtime.DefaultBackend);
    }

    [Fact]
    public void A_missing_file_demanded_strictly_throws_a_load_exception()
    {
        string missing = Path.Combine(_temp, "libbnb_nothere.so");
        var options = Isolated(missing);
        options.Strict = true;
        var e = Assert.Throws<BnbLoadException>(() => new BnbRuntime(options));
        Assert.Equal(missing, e.LibraryPath);
        Assert.Contains("NotFound", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_that_is_not_a_library_is_recorded_with_the_os_message()
    {
        string fake = Path.Combine(_temp, LibraryFile("fake"));
        File.WriteAllText(fake, "this is not a shared library\n");
        using var runtime = new BnbRuntime(Isolated(_temp));
        var attempt = Assert.Single(runtime.LoadAttempts);
        Assert.Equal(LoadStage.LoadFailed, attempt.Stage);
        Assert.Equal("fake", attempt.BackendName);
        Assert.False(string.IsNullOrWhiteSpace(attempt.Message));

        var strict = Isolated(fake);
        strict.Strict = true;
        Assert.Throws<BnbLoadException>(() => new BnbRuntime(strict));
    }

    [Fact]
    public void Library_path_variable_entries_are_searched()
    {
        string fake = Path.Combine(_temp, LibraryFile("fake"));
        File.WriteAllText(fake, "x");
        string? saved = Environment.GetEnvironmentVariable(BnbRuntimeOptions.LibraryPathVariable);
        try
        {
            Environment.SetEnvironmentVariable(BnbRuntimeOptions.LibraryPathVariable, string.Join(Path.PathSeparator, _temp, Path.Combine(_temp, "missing-dir")));
            using var runtime = new BnbRuntime(new BnbRuntimeOptions { SearchApplicationDirectory = false });
            Assert.Contains(runtime.LoadAttempts, a => a.Source == LoadSource.Environment && a.Stage == LoadStage.LoadFailed && a.Path == fake);
            Assert.Contains(runtime.LoadAttempts, a => a.Source == LoadSource.Environment && a.Stage == LoadStage.NotFound);
        }
        finally
        {
            Environment.SetEnvironmentVariable(BnbRuntimeOptions.LibraryPathVariable, saved);
        }
    }

    [Fact]
    public void Backend_names_come_from_file_names()
    {
        Assert.Equal("cpu_ref", BnbRuntime.BackendNameFromFile("/x/libbnb_cpu_ref.so"));
        Assert.Equal("cuda", BnbRuntime.BackendNameFromFile(@"bnb_cuda.dll"));
        Assert.Equal("cpu_avx2", BnbRuntime.BackendNameFromFile("libbnb_cpu_avx2.dylib"));
        Assert.Null(BnbRuntime.BackendNameFromFile("libfoo.so"));
        Assert.Equal(("cuda", 1), BnbDevice.Parse("cuda:1"));
        Assert.Equal(("cpu_ref", 0), BnbDevice.Parse("cpu_ref"));
        Assert.Throws<FormatException>(() => BnbDevice.Parse("cuda:x"));
    }

    [BackendFact("cpu_ref")]
    public void Cpu_ref_loads_with_its_abi_capabilities_and_device()
    {
        using var runtime = TestEnvironment.CreateRuntime(false, "cpu_ref");
        var backend = Assert.Single(runtime.Backends);
        Assert.Equal("cpu_ref", backend.Name);
        Assert.True(backend.ProbeScore > 0);
        Assert.Equal((uint)BnbNative.BNB_ABI_MAJOR, backend.AbiMajor);
        Assert.Same(backend, runtime.DefaultBackend);
        Assert.True(backend.Capabilities.Ops.HasFlag(BackendOps.Quantize4Bit));
        Assert.True(backend.Capabilities.FloatDTypes.HasFlag(DTypeFlags.BF16));
        Assert.True(backend.Capabilities.QuantTypes.HasFlag(QuantTypeFlags.Nf4 | QuantTypeFlags.Fp4));
        Assert.Equal(DeviceKind.Cpu, backend.DeviceKind);
        Assert.Contains("cpu_ref:0", runtime.Devices.Select(d => d.Id));
        var attempt = Assert.Single(runtime.LoadAttempts);
        Assert.Equal(LoadStage.Loaded, attempt.Stage);
        Assert.Equal(backend.ProbeScore, attempt.ProbeScore);
        using var context = runtime.CreateContext("cpu_ref:0", numThreads: 1);
        Assert.Equal("cpu_ref:0", context.Device);
    }

    [BackendFact("cpu_ref")]
    public void An_abi_major_the_library_lacks_is_a_mismatch()
    {
        var options = Isolated(TestEnvironment.LibraryPath("cpu_ref"));
        options.RequestedAbiMajor = 999;
        using (var runtime = new BnbRuntime(options))
        {
            var attempt = Assert.Single(runtime.LoadAttempts);
            Assert.Equal(LoadStage.AbiMismatch, attempt.Stage);
            Assert.Contains("999", attempt.Message, StringComparison.Ordinal);
            Assert.Empty(runtime.Backends);
        }

        options.Strict = true;
        var e = Assert.Throws<BnbAbiMismatchException>(() => new BnbRuntime(options));
        Assert.Equal(BnbStatus.AbiMismatch, e.Status);
    }

    [BackendFact("cpu_ref")]
    public void Backends_variable_restricts_what_loads()
    {
        var options = Isolated(TestEnvironment.LibraryPath("cpu_ref"));
        options.Backends = ["cuda"];
        using var runtime = new BnbRuntime(options);
        Assert.Equal(LoadStage.Excluded, Assert.Single(runtime.LoadAttempts).Stage);
        Assert.Empty(runtime.Backends);
        Assert.Throws<KeyNotFoundException>(() => runtime.GetBackend("cpu_ref"));
    }

    [BackendFact("cpu_ref")]
    public void The_same_backend_found_twice_loads_once()
    {
        string copy = Path.Combine(_temp, LibraryFile("cpu_ref"));
        File.Copy(TestEnvironment.LibraryPath("cpu_ref"), copy);
        using var runtime = new BnbRuntime(Isolated(TestEnvironment.LibraryPath("cpu_ref"), _temp));
        Assert.Single(runtime.Backends);
        Assert.Equal([LoadStage.Loaded, LoadStage.Duplicate], runtime.LoadAttempts.Select(a => a.Stage));
    }

    [BackendFact("gaudi")]
    public void Gaudi_stub_probes_zero_and_is_only_listed_on_request()
    {
        using (var runtime = new BnbRuntime(Isolated(TestEnvironment.LibraryPath("gaudi"))))
        {
            Assert.Equal(LoadStage.ProbeZero, Assert.Single(runtime.LoadAttempts).Stage);
            Assert.Empty(runtime.Backends);
        }

        using var all = TestEnvironment.CreateRuntime(true, "gaudi");
        var gaudi = all.GetBackend("gaudi");
        Assert.Equal(0, gaudi.ProbeScore);
        Assert.False(gaudi.IsAvailable);
        Assert.Null(all.DefaultBackend);
        Assert.ThrowsAny<BnbException>(() => gaudi.CreateContext());
    }

    [BackendFact("gaudi")]
    public void Every_gaudi_op_is_not_supported_naming_op_and_backend()
    {
        using var runtime = TestEnvironment.CreateRuntime(true, "gaudi");
        var gaudi = runtime.GetBackend("gaudi");
        using var context = new BnbContext(gaudi, 0, 1, NonFinitePolicy.Error, gaudi.Native.NullContext());
        var q = new Quantizer(context);
        var x = new float[64];
        var codes = new byte[64];
        var absmax = new float[1];
        var state = new QuantState(absmax, [2, 32], new float[16], DType.F32, 64, QuantType.Nf4);
        var code = new float[256];
        var ops = new (string Op, Action Call)[]
        {
            ("quantize_blockwise", () => q.QuantizeBlockwise(TensorRef.FromSpan<float>(x), TensorRef.FromSpan<byte>(codes), TensorRef.FromSpan<float>(absmax), 64, Rounding.Nearest, TensorRef.FromSpan<float>(code))),
            ("dequantize_blockwise", () => q.DequantizeBlockwise(TensorRef.FromSpan<byte>(codes), AbsmaxRef.Plain(TensorRef.FromSpan<float>(absmax)), TensorRef.FromSpan<float>(code), 64, TensorRef.FromSpan<float>(x))),
            ("quantize_absmax_nested", () => q.QuantizeAbsmaxNested(TensorRef.FromSpan<float>(absmax), TensorRef.FromSpan<byte>(codes), TensorRef.FromSpan<float>(absmax), 64, Rounding.Nearest, TensorRef.FromSpan<float>(code))),
            ("quantize_4bit", () => q.Quantize4Bit(TensorRef.FromSpan<float>(x), TensorRef.FromSpan<byte>(codes), TensorRef.FromSpan<float>(absmax))),
            ("dequantize_4bit", () => q.Dequantize4Bit<float>(codes.AsSpan(0, 32), state, x)),
            ("gemv_4bit", () => q.Gemv4Bit(TensorRef.FromSpan<float>(x, 2, 32), TensorRef.FromSpan<byte>(codes), state, TensorRef.FromSpan<float>(x, 2, 2))),
            ("gemm_4bit", () => q.Gemm4Bit(TensorRef.FromSpan<float>(x, 2, 32), TensorRef.FromSpan<byte>(codes), state, TensorRef.FromSpan<float>(x, 2, 2))),
            ("int8_vectorwise_quant", () => q.Int8VectorwiseQuant<float>(x, 2, 32)),
            ("int8_vectorwise_dequant", () => q.Int8VectorwiseDequant(new sbyte[64], new float[2])),
            ("int8_linear_matmul", () => q.Int8LinearMatmul(new sbyte[64], new sbyte[64], 2, 2, 32)),
            ("int8_mm_dequant", () => q.Int8MmDequant<float>(new int[4], new float[2], new float[2])),
            ("int8_double_quant", () => q.Int8DoubleQuant<float>(x, 2, 32)),
        };
        foreach (var (op, call) in ops)
        {
            var e = Assert.Throws<BnbNotSupportedException>(call);
            Assert.Equal(BnbStatus.NotSupported, e.Status);
            Assert.Equal(op, e.Operation);
            Assert.Contains("gaudi", e.Message, StringComparison.Ordinal);
            Assert.Contains(op, e.Message, StringComparison.Ordinal);
        }
    }

    private static string LibraryFile(string name) =>
        OperatingSystem.IsWindows() ? $"bnb_{name}.dll" : OperatingSystem.IsMacOS() ? $"libbnb_{name}.dylib" : $"libbnb_{name}.so";
}
