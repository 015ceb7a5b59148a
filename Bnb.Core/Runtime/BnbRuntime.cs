using System.Runtime.InteropServices;
using Bnb.Errors;
using Bnb.Interop;

namespace Bnb.Runtime;

/// <summary>
/// Discovers and loads every Bnb backend library it can find, side by side, and records each attempt.
/// </summary>
/// <remarks>
/// Search order: <see cref="BnbRuntimeOptions.LibraryPaths"/>, then <c>BNB_LIBRARY_PATH</c>, then
/// <c>runtimes/&lt;rid&gt;/native/</c> under the application directory (NuGet layout), then the application
/// directory. Directories are scanned for <c>libbnb_*.so</c> (Linux), <c>bnb_*.dll</c> (Windows) or
/// <c>libbnb_*.dylib</c> (macOS). The first library of a given backend name wins. A missing file or a file that is
/// not a library never throws (unless it was demanded with <see cref="BnbRuntimeOptions.Strict"/>): it shows up in
/// <see cref="LoadAttempts"/>.
/// </remarks>
public sealed class BnbRuntime : IDisposable
{
    private readonly List<BnbBackend> _backends = [];
    private readonly List<LoadAttempt> _attempts = [];
    private bool _disposed;

    /// <summary>Loads backends with default options (environment variables and the application directory).</summary>
    public BnbRuntime()
        : this(new BnbRuntimeOptions())
    {
    }

    /// <summary>Loads backends as <paramref name="options"/> say.</summary>
    /// <exception cref="BnbLoadException">Strict mode and an explicit path could not be loaded.</exception>
    /// <exception cref="BnbAbiMismatchException">Strict mode and an explicit path implements another ABI major.</exception>
    public BnbRuntime(BnbRuntimeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
        try
        {
            LoadAll();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public BnbRuntimeOptions Options { get; }

    /// <summary>Every load attempt, in search order.</summary>
    public IReadOnlyList<LoadAttempt> LoadAttempts => _attempts;

    /// <summary>Loaded backends, in search order.</summary>
    public IReadOnlyList<BnbBackend> Backends => _backends;

    /// <summary>Every device of every loaded backend.</summary>
    public IReadOnlyList<BnbDevice> Devices => [.. _backends.SelectMany(b => b.Devices)];

    /// <summary>The available backend with the highest probe score (first found on ties), or null.</summary>
    public BnbBackend? DefaultBackend =>
        _backends.Where(b => b.IsAvailable).OrderByDescending(b => b.ProbeScore).FirstOrDefault();

    /// <summary>The runtime identifier used for the NuGet layout (<c>linux-x64</c>, <c>win-arm64</c>, ...).</summary>
    public static string RuntimeIdentifier
    {
        get
        {
            string os = OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux";
            string arch = RuntimeInformation.ProcessArchitecture switch
            {
                Architecture.X64 => "x64",
                Architecture.X86 => "x86",
                Architecture.Arm64 => "arm64",
                Architecture.Arm => "arm",
                var other => other.ToString().ToLowerInvariant(),
            };
            return $"{os}-{arch}";
        }
    }

    /// <summary>A backend by name.</summary>
    /// <exception cref="KeyNotFoundException">No loaded backend has that name; the message lists what loaded.</exception>
    public BnbBackend GetBackend(string name)
    {
        ThrowIfDisposed();
        return _backends.FirstOrDefault(b => b.Name == name)
            ?? throw new KeyNotFoundException($"backend '{name}' is not loaded (loaded: {string.Join(", ", _backends.Select(b => b.Name).DefaultIfEmpty("none"))}); see LoadAttempts or `bnb info`");
    }

    /// <summary>Creates a context on <paramref name="device"/> (<c>"cpu_ref:0"</c>), or on device 0 of <see cref="DefaultBackend"/>.</summary>
    public BnbContext CreateContext(string? device = null, int? numThreads = null, NonFinitePolicy? nonFinitePolicy = null)
    {
        ThrowIfDisposed();
        if (device is null)
        {
            var backend = DefaultBackend ?? throw new BnbDeviceException(BnbStatus.NoDevice, "no Bnb backend that can run on this machine was loaded; see LoadAttempts or `bnb info`");
            return backend.CreateContext(0, numThreads, nonFinitePolicy);
        }

        var (name, index) = BnbDevice.Parse(device);
        return GetBackend(name).CreateContext(index, numThreads, nonFinitePolicy);
    }

    /// <summary>
    /// Releases the runtime's hold on the libraries. A library stays mapped until its last context is disposed too.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var b in _backends)
        {
            b.Native.Library.Dispose();
        }
    }

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>The backend name a file name implies: <c>libbnb_cpu_ref.so</c> → <c>cpu_ref</c>.</summary>
    internal static string? BackendNameFromFile(string path)
    {
        string file = Path.GetFileName(path);
        string stem = file;
        foreach (string ext in new[] { ".so", ".dll", ".dylib" })
        {
            if (stem.EndsWith(ext, StringComparison.OrdinalIgnoreCase))
            {
                stem = stem[..^ext.Length];
                break;
            }
        }

        if (stem.StartsWith("lib", StringComparison.Ordinal))
        {
            stem = stem[3..];
        }

        return stem.StartsWith("bnb_", StringComparison.Ordinal) && stem.Length > 4 ? stem[4..] : null;
    }

    private static string LibraryPattern =>
        OperatingSystem.IsWindows() ? "bnb_*.dll" : OperatingSystem.IsMacOS() ? "libbnb_*.dylib" : "libbnb_*.so";

    private void LoadAll()
    {
        var allowed = AllowedBackends();
        var seenPaths = new HashSet<string>(OperatingSystem.IsWindows() ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal);
        foreach (var (path, source, demanded) in Candidates())
        {
            string full = Path.GetFullPath(path);
            if (!seenPaths.Add(full))
            {
                continue;
            }

            LoadOne(full, source, demanded, allowed);
        }
    }

    private IEnumerable<(string Path, LoadSource Source, bool Demanded)> Candidates()
    {
        foreach (string p in Options.LibraryPaths)
        {
            foreach (var c in Expand(p, LoadSource.Explicit, Options.Strict))
            {
                yield return c;
            }
        }

        string? env = Options.UseEnvironment ? Environment.GetEnvironmentVariable(BnbRuntimeOptions.LibraryPathVariable) : null;
        if (!string.IsNullOrWhiteSpace(env))
        {
            foreach (string p in env.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                foreach (var c in Expand(p, LoadSource.Environment, demanded: false))
                {
                    yield return c;
                }
            }
        }

        if (Options.SearchApplicationDirectory)
        {
            string app = AppContext.BaseDirectory;
            string nuget = Path.Combine(app, "runtimes", RuntimeIdentifier, "native");
            if (Directory.Exists(nuget))
            {
                foreach (var c in Expand(nuget, LoadSource.NuGetRuntimes, demanded: false))
                {
                    yield return c;
                }
            }

            foreach (var c in Expand(app, LoadSource.ApplicationDirectory, demanded: false))
            {
                yield return c;
            }
        }
    }

    /// <summary>A file stands for itself; a directory for its backend files; anything else is a NotFound entry.</summary>
    private IEnumerable<(string, LoadSource, bool)> Expand(string path, LoadSource source, bool demanded)
    {
        if (Directory.Exists(path))
        {
            return Directory.EnumerateFiles(path, LibraryPattern).Order(StringComparer.Ordinal).Select(f => (f, source, demanded));
        }

        return [(path, source, demanded)];
    }

    private HashSet<string>? AllowedBackends()
    {
        IEnumerable<string>? names = Options.Backends;
        if (names is null && Options.UseEnvironment)
        {
            string? env = Environment.GetEnvironmentVariable(BnbRuntimeOptions.BackendsVariable);
            if (!string.IsNullOrWhiteSpace(env))
            {
                names = env.Split([',', ';', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            }
        }

        return names is null ? null : new HashSet<string>(names, StringComparer.Ordinal);
    }

    private unsafe void LoadOne(string path, LoadSource source, bool demanded, HashSet<string>? allowed)
    {
        string? fileName = BackendNameFromFile(path);
        if (allowed is not null && (fileName is null || !allowed.Contains(fileName)))
        {
            Record(new LoadAttempt(path, source, LoadStage.Excluded, $"not in {BnbRuntimeOptions.BackendsVariable} ({string.Join(",", allowed)})", BackendName: fileName), demanded);
            return;
        }

        if (fileName is not null && _backends.Any(b => b.Name == fileName))
        {
            Record(new LoadAttempt(path, source, LoadStage.Duplicate, $"backend '{fileName}' already loaded from an earlier path", BackendName: fileName), demanded);
            return;
        }

        LoadedLibrary loaded = NativeLoader.Load(path, Options.RequestedAbiMajor);
        if (loaded.Library is null)
        {
            Record(new LoadAttempt(path, source, loaded.Stage, loaded.Message, loaded.Probe, loaded.AbiMajor, loaded.AbiMinor, fileName), demanded);
            return;
        }

        if (loaded.Stage == LoadStage.ProbeZero && !Options.IncludeUnavailable)
        {
            loaded.Library.Dispose();
            Record(new LoadAttempt(path, source, LoadStage.ProbeZero, loaded.Message, loaded.Probe, loaded.AbiMajor, loaded.AbiMinor, fileName), demanded);
            return;
        }

        BnbBackend backend;
        try
        {
            backend = new BnbBackend(this, new NativeBackend(loaded.Api, loaded.Library, fileName ?? Path.GetFileName(path)), path, loaded.Probe ?? 0, loaded.AbiMajor ?? 0, loaded.AbiMinor ?? 0);
        }
        catch (BnbException e)
        {
            loaded.Library.Dispose();
            Record(new LoadAttempt(path, source, LoadStage.LoadFailed, e.Message, loaded.Probe, loaded.AbiMajor, loaded.AbiMinor, fileName), demanded);
            return;
        }

        if (_backends.Any(b => b.Name == backend.Name))
        {
            loaded.Library.Dispose();
            Record(new LoadAttempt(path, source, LoadStage.Duplicate, $"backend '{backend.Name}' already loaded from an earlier path", loaded.Probe, loaded.AbiMajor, loaded.AbiMinor, backend.Name), demanded);
            return;
        }

        _backends.Add(backend);
        Record(new LoadAttempt(path, source, loaded.Stage, loaded.Message, loaded.Probe, loaded.AbiMajor, loaded.AbiMinor, backend.Name), demanded: false);
    }

    private void Record(LoadAttempt attempt, bool demanded)
    {
        _attempts.Add(attempt);
        if (!demanded)
        {
            return;
        }

        switch (attempt.Stage)
        {
            case LoadStage.AbiMismatch:
                throw new BnbAbiMismatchException($"{attempt.Path}: {attempt.Message}", attempt.BackendName);
            case LoadStage.NotFound or LoadStage.LoadFailed or LoadStage.MissingExport or LoadStage.Excluded:
                throw new BnbLoadException($"cannot load Bnb backend '{attempt.Path}' ({attempt.Stage}): {attempt.Message}", attempt.Path);
            default:
                break;
        }
    }
}
