using Bnb.Quantization;
using Bnb.Runtime;
using TorchSharp;

namespace Bnb.TorchSharp.Tests;

/// <summary>Finds the Bnb cpu_ref backend and checks that TorchSharp's native library loads here.</summary>
internal static class TorchTestEnvironment
{
    private static readonly Lazy<string?> TorchProblem = new(ProbeTorch);

    /// <summary>The first entry of BNB_LIBRARY_PATH, else &lt;repo&gt;/artifacts/native/&lt;rid&gt;.</summary>
    public static string NativeDirectory
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable(BnbRuntimeOptions.LibraryPathVariable);
            string? first = env?.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
            if (first is not null)
            {
                return File.Exists(first) ? Path.GetDirectoryName(first)! : first;
            }

            string? dir = AppContext.BaseDirectory;
            while (dir is not null && !File.Exists(Path.Combine(dir, "Bnb.sln")))
            {
                dir = Path.GetDirectoryName(dir);
            }

            return Path.Combine(dir ?? ".", "artifacts", "native", BnbRuntime.RuntimeIdentifier);
        }
    }

    public static string CpuRefPath => Path.Combine(NativeDirectory, OperatingSystem.IsWindows() ? "bnb_cpu_ref.dll" : OperatingSystem.IsMacOS() ? "libbnb_cpu_ref.dylib" : "libbnb_cpu_ref.so");

    /// <summary>Why the tests cannot run here, or null.</summary>
    public static string? SkipReason =>
        !File.Exists(CpuRefPath) ? $"backend 'cpu_ref' is not built ({CpuRefPath} missing); build native code or set BNB_LIBRARY_PATH"
        : TorchProblem.Value;

    private static string? ProbeTorch()
    {
        try
        {
            using var t = torch.zeros(1);
            return null;
        }
        catch (Exception e)
        {
            string first = (e.InnerException ?? e).Message.Split('\n')[0];
            return $"TorchSharp's native library does not load here ({first}); on Debian 12 the build patches it with tools/scripts/fix-torchsharp-debian12.sh, which needs patchelf (apt-get install patchelf)";
        }
    }
}

/// <summary>A [Fact] skipped, with the reason, when cpu_ref is not built or TorchSharp cannot load.</summary>
internal sealed class TorchFactAttribute : FactAttribute
{
    public TorchFactAttribute()
    {
        Skip = TorchTestEnvironment.SkipReason;
    }
}

/// <summary>A [Theory] skipped like <see cref="TorchFactAttribute"/>.</summary>
internal sealed class TorchTheoryAttribute : TheoryAttribute
{
    public TorchTheoryAttribute()
    {
        Skip = TorchTestEnvironment.SkipReason;
    }
}

/// <summary>One cpu_ref runtime and context per test class.</summary>
public sealed class CpuRefQuantizer : IDisposable
{
    private readonly Lazy<(BnbRuntime Runtime, BnbContext Context, Quantizer Quantizer)> _state = new(() =>
    {
        var options = new BnbRuntimeOptions { UseEnvironment = false, SearchApplicationDirectory = false, Strict = true };
        options.LibraryPaths.Add(TorchTestEnvironment.CpuRefPath);
        var runtime = new BnbRuntime(options);
        var context = runtime.GetBackend("cpu_ref").CreateContext();
        return (runtime, context, new Quantizer(context));
    });

    internal Quantizer Quantizer => _state.Value.Quantizer;

    public void Dispose()
    {
        if (_state.IsValueCreated)
        {
            _state.Value.Context.Dispose();
            _state.Value.Runtime.Dispose();
        }
    }
}
