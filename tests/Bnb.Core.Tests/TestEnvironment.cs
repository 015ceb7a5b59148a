using Bnb.Runtime;

namespace Bnb.Tests;

/// <summary>Where the tests find the repository, the golden vectors and the native backend libraries.</summary>
internal static class TestEnvironment
{
    private static readonly Lazy<string> Root = new(() =>
        Bnb.InteropGen.InteropGenerator.FindRepositoryRoot(AppContext.BaseDirectory)
        ?? throw new InvalidOperationException($"no Bnb.sln above {AppContext.BaseDirectory}"));

    public static string RepoRoot => Root.Value;

    public static string GoldenDirectory => Path.Combine(RepoRoot, "tests", "golden");

    /// <summary>The first entry of BNB_LIBRARY_PATH, else &lt;repo&gt;/artifacts/native/&lt;rid&gt;.</summary>
    public static string NativeDirectory
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable(BnbRuntimeOptions.LibraryPathVariable);
            string? first = env?.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
            return first ?? Path.Combine(RepoRoot, "artifacts", "native", BnbRuntime.RuntimeIdentifier);
        }
    }

    /// <summary>The library file of backend <paramref name="name"/> in <see cref="NativeDirectory"/>.</summary>
    public static string LibraryPath(string name)
    {
        string file = OperatingSystem.IsWindows() ? $"bnb_{name}.dll" : OperatingSystem.IsMacOS() ? $"libbnb_{name}.dylib" : $"libbnb_{name}.so";
        return Path.Combine(Directory.Exists(NativeDirectory) ? NativeDirectory : Path.GetDirectoryName(NativeDirectory) ?? NativeDirectory, file);
    }

    public static bool HasBackend(string name) => File.Exists(LibraryPath(name));

    /// <summary>A runtime that loads exactly the given backend files (no environment, no app directory).</summary>
    public static BnbRuntime CreateRuntime(bool includeUnavailable = false, params string[] backends)
    {
        var options = new BnbRuntimeOptions
        {
            UseEnvironment = false,
            SearchApplicationDirectory = false,
            IncludeUnavailable = includeUnavailable,
            Strict = true,
        };
        foreach (string b in backends)
        {
            options.LibraryPaths.Add(LibraryPath(b));
        }

        return new BnbRuntime(options);
    }
}

/// <summary>A [Fact] that is skipped, with the reason, when the backend library has not been built.</summary>
internal sealed class BackendFactAttribute : FactAttribute
{
    public BackendFactAttribute(string backend)
    {
        if (!TestEnvironment.HasBackend(backend))
        {
            Skip = $"backend '{backend}' is not built ({TestEnvironment.LibraryPath(backend)} missing); build native code or set BNB_LIBRARY_PATH";
        }
    }
}

/// <summary>A [Theory] that is skipped, with the reason, when the backend library has not been built.</summary>
internal sealed class BackendTheoryAttribute : TheoryAttribute
{
    public BackendTheoryAttribute(string backend)
    {
        if (!TestEnvironment.HasBackend(backend))
        {
            Skip = $"backend '{backend}' is not built ({TestEnvironment.LibraryPath(backend)} missing); build native code or set BNB_LIBRARY_PATH";
        }
    }
}
