namespace Bnb.Runtime;

/// <summary>How a <see cref="BnbRuntime"/> finds, filters and configures backends.</summary>
public sealed class BnbRuntimeOptions
{
    /// <summary>Name of the variable holding a path-separator list of backend files or directories.</summary>
    public const string LibraryPathVariable = "BNB_LIBRARY_PATH";

    /// <summary>Name of the variable holding a comma-separated list of backend names to load (e.g. <c>cpu_ref,cuda</c>).</summary>
    public const string BackendsVariable = "BNB_BACKENDS";

    /// <summary>Backend files or directories to load, searched before anything else.</summary>
    public IList<string> LibraryPaths { get; } = new List<string>();

    /// <summary>
    /// When true, a path in <see cref="LibraryPaths"/> that cannot be loaded throws (<see cref="Errors.BnbLoadException"/>
    /// or <see cref="Errors.BnbAbiMismatchException"/>) instead of only being recorded in the trace.
    /// </summary>
    public bool Strict { get; set; }

    /// <summary>Read <c>BNB_LIBRARY_PATH</c> and <c>BNB_BACKENDS</c> (default true).</summary>
    public bool UseEnvironment { get; set; } = true;

    /// <summary>Search <c>runtimes/&lt;rid&gt;/native/</c> and the application directory (default true).</summary>
    public bool SearchApplicationDirectory { get; set; } = true;

    /// <summary>Backend names to load; null = all (or <c>BNB_BACKENDS</c> when set). Wins over the variable.</summary>
    public IReadOnlyCollection<string>? Backends { get; set; }

    /// <summary>
    /// Also expose backends whose probe returned 0 (they cannot run here); useful for diagnostics and for testing
    /// stubs. They are never chosen as <see cref="BnbRuntime.DefaultBackend"/>.
    /// </summary>
    public bool IncludeUnavailable { get; set; }

    /// <summary>Default worker-thread count of contexts (0 = backend default, 1 = caller's thread only).</summary>
    public int NumThreads { get; set; }

    /// <summary>Default NaN/Inf policy of contexts.</summary>
    public NonFinitePolicy NonFinitePolicy { get; set; } = NonFinitePolicy.Error;

    /// <summary>The ABI major asked of <c>bnb_get_api</c>; only tests change it, to provoke a mismatch.</summary>
    internal uint RequestedAbiMajor { get; set; } = Interop.BnbNative.BNB_ABI_MAJOR;
}
