// Bnb build orchestration (Cake 7). Orchestration only: compiler flags live in CMake (CMakeLists.txt, cmake/,
// CMakePresets.json) and MSBuild (Directory.Build.props); this file only runs the steps in order.
//
//   ./build.sh [target] [--configuration=Release] [--cross=linux-arm64-release,win-x64-release|none]
//
// Targets: Deps, Native, NativeTest, Asan, Cross, Managed, ManagedTest, Pack, Smoke, Test (default), Demo, Bench.
// Test = Deps → Native → NativeTest → Asan → Cross → Managed → ManagedTest → Pack → Smoke.
// Test prints one plain line "N passed, N failed" (ctest + xunit) at the end and writes it to
// artifacts/test-summary.txt; .ci/run prints that file's line last.

using System.Xml.Linq;

var target = Argument("target", "Test");
var configuration = Argument("configuration", "Release");
// Cross presets built and tested (when their toolchains exist): --cross=linux-arm64-release,win-x64-release (default),
// a subset, or none/false. Environment default: BNB_CROSS.
var crossArg = Argument("cross", EnvironmentVariable("BNB_CROSS") ?? "linux-arm64-release,win-x64-release");
var crossPresets = crossArg.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
    .Where(p => p != "none" && p != "false").Select(p => p == "true" ? "linux-arm64-release,win-x64-release" : p)
    .SelectMany(p => p.Split(',')).Distinct().ToList();
var crossEnabled = crossPresets.Count > 0;
var installCross = Argument("install-cross", crossEnabled); // let Deps install the cross toolchains (root only)

var root = MakeAbsolute(Directory("."));
var artifacts = root.Combine("artifacts");
var nativeOut = artifacts.Combine("native");
var packagesDir = artifacts.Combine("packages");
var resultsDir = artifacts.Combine("test-results");
var summaryFile = artifacts.CombineWithFilePath("test-summary.txt");
var solution = root.CombineWithFilePath("Bnb.sln");
var hostRid = "linux-x64";
var hostPreset = "linux-x64-release";
var asanPreset = "linux-x64-asan";
bool deferTestFailures = string.Equals(target, "Test", StringComparison.OrdinalIgnoreCase);

// ─── bookkeeping ────────────────────────────────────────────────────────────────────────────────────────
int passedTotal = 0, failedTotal = 0, skippedTotal = 0;
var counts = new List<string>();    // "ctest linux-x64-release: 12 passed, 0 failed, 1 skipped"
var skips = new List<string>();     // "<what>: <reason>"
var failedSteps = new List<string>();
var missingRequired = new List<string>(); // apt packages the native build needs and that are not installed
var crossSkip = new Dictionary<string, string>(); // preset -> reason it is skipped

void Skip(string what, string reason)
{
    skips.Add($"{what}: {reason}");
    Warning($"SKIPPED {what}: {reason}");
}

void Record(string what, int passed, int failed, int skipped)
{
    passedTotal += passed; failedTotal += failed; skippedTotal += skipped;
    counts.Add($"{what}: {passed} passed, {failed} failed, {skipped} skipped");
    Information($"{what}: {passed} passed, {failed} failed, {skipped} skipped");
    if (failed > 0 && !deferTestFailures)
        throw new Exception($"{what}: {failed} test(s) failed");
}

// ─── process helpers ────────────────────────────────────────────────────────────────────────────────────
string Which(string name)
{
    foreach (var dir in (System.Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
    {
        var p = System.IO.Path.Combine(dir, name);
        if (System.IO.File.Exists(p)) return p;
    }
    return null;
}

string Tool(string name) => Which(name) ?? throw new Exception($"'{name}' not found on PATH (run ./build.sh deps as root)");

int Run(string tool, string args, IDictionary<string, string> env = null, bool check = true, DirectoryPath workDir = null)
{
    var exe = tool.Contains('/') ? tool : Tool(tool);
    Information($"> {tool} {args}");
    var rc = StartProcess(exe, new ProcessSettings
    {
        Arguments = args,
        WorkingDirectory = workDir ?? root,
        EnvironmentVariables = env,
    });
    if (check && rc != 0) throw new Exception($"'{tool} {args}' failed with exit code {rc}");
    return rc;
}

string Capture(string tool, string args)
{
    var exe = tool.Contains('/') ? tool : Which(tool);
    if (exe == null) return null;
    var rc = StartProcess(exe, new ProcessSettings { Arguments = args, RedirectStandardOutput = true, RedirectStandardError = true },
                          out IEnumerable<string> stdout);
    return rc == 0 ? string.Join("\n", stdout).Trim() : null;
}

bool IsRoot() => Capture("id", "-u") == "0";

// ─── ctest / TRX result parsing ─────────────────────────────────────────────────────────────────────────
void RunCtest(string preset, IDictionary<string, string> env = null)
{
    var junit = resultsDir.Combine("native").CombineWithFilePath($"{preset}.xml");
    EnsureDirectoryExists(junit.GetDirectory());
    if (FileExists(junit)) DeleteFile(junit);
    var jobs = System.Environment.ProcessorCount;
    var rc = Run("ctest", $"--preset {preset} -j {jobs} --output-junit \"{junit.FullPath}\"", env, check: false);
    if (!FileExists(junit))
    {
        Record($"ctest {preset}", 0, 1, 0);
        failedSteps.Add($"ctest {preset} exited {rc} without results");
        if (deferTestFailures) return;
        throw new Exception($"ctest {preset} exited {rc} without results");
    }
    int passed = 0, failed = 0, skipped = 0;
    foreach (var tc in XDocument.Load(junit.FullPath).Descendants("testcase"))
    {
        switch ((string)tc.Attribute("status"))
        {
            case "run": passed++; break;
            case "fail": failed++; break;
            default: skipped++; break; // notrun (SKIP_RETURN_CODE / missing), disabled
        }
    }
    if (rc != 0 && failed == 0) failed = 1; // ctest failed for a reason the report does not show
    Record($"ctest {preset}", passed, failed, skipped);
}

(int passed, int failed, int skipped) ParseTrx(FilePath trx)
{
    XNamespace ns = "http://microsoft.com/schemas/VisualStudio/TeamTest/2010";
    var c = XDocument.Load(trx.FullPath).Descendants(ns + "Counters").FirstOrDefault();
    if (c == null) return (0, 1, 0);
    int A(string n) => int.TryParse((string)c.Attribute(n), out var v) ? v : 0;
    var failed = A("failed") + A("error") + A("timeout") + A("aborted");
    var passed = A("passed");
    var skipped = Math.Max(0, A("total") - passed - failed);
    return (passed, failed, skipped);
}

Dictionary<string, string> NativeEnv() => new Dictionary<string, string>
{
    ["BNB_LIBRARY_PATH"] = nativeOut.Combine(hostRid).FullPath,
};

bool HaveSolution()
{
    if (FileExists(solution)) return true;
    Skip("managed build/test", "Bnb.sln does not exist yet");
    return false;
}

bool NativeBuildable(string what)
{
    if (missingRequired.Count == 0) return true;
    Skip(what, $"missing toolchain packages: {string.Join(" ", missingRequired)} (install: apt-get install -y --no-install-recommends {string.Join(" ", missingRequired)})");
    return false;
}

void BuildPreset(string preset)
{
    Run("cmake", $"--preset {preset}");
    Run("cmake", $"--build --preset {preset}");
}

// Under Test, a failed secondary build (ASan, cross) is counted as a failure and the pipeline goes on, so the
// managed tests still run; Test fails at the end. Run alone, the target fails at once.
bool TryBuildPreset(string preset)
{
    try { BuildPreset(preset); return true; }
    catch (Exception e) when (deferTestFailures)
    {
        Error($"{preset}: {e.Message}");
        failedSteps.Add($"build {preset}: {e.Message}");
        Record($"build {preset}", 0, 1, 0);
        return false;
    }
}

Dictionary<string, string> WineEnv() => new Dictionary<string, string>
{
    ["WINEPREFIX"] = root.Combine(".wine").FullPath,
    ["WINEDEBUG"] = "-all",
    ["WINEDLLOVERRIDES"] = "mscoree,mshtml=",
};

// ─── Setup / Teardown ───────────────────────────────────────────────────────────────────────────────────
TaskTeardown(ctx =>
{
    if (ctx.ThrownException != null && ctx.Task.Name != "Test") failedSteps.Add($"step {ctx.Task.Name} failed");
});

Teardown(ctx =>
{
    if (skips.Count > 0)
    {
        Information("Skipped (with reason):");
        foreach (var s in skips) Information($"  - {s}");
    }
    if (!deferTestFailures && counts.Count == 0) return;
    foreach (var c in counts) Information($"  {c}");
    var stepFailures = failedSteps.Count(s => s.StartsWith("step "));
    var line = $"{passedTotal} passed, {failedTotal + stepFailures} failed";
    if (failedSteps.Count > 0) foreach (var f in failedSteps) Error($"FAILED: {f}");
    EnsureDirectoryExists(artifacts);
    System.IO.File.WriteAllText(summaryFile.FullPath,
        string.Join("\n", counts) + (skippedTotal > 0 ? $"\n{skippedTotal} skipped" : "") + "\n" + line + "\n");
    Information(line);
});

// ─── Tasks ──────────────────────────────────────────────────────────────────────────────────────────────
Task("Deps")
    .Description("Install missing toolchains with apt (root), else print the command and mark backends skipped")
    .Does(() =>
{
    if (!IsRunningOnLinux()) { Information("Deps: not Linux; install CMake, Ninja and a C/C++ compiler yourself"); return; }

    // command -> apt package
    var required = new (string cmd, string pkg)[] { ("cmake", "cmake"), ("ninja", "ninja-build"), ("gcc", "gcc"), ("g++", "g++"), ("nm", "binutils") };
    var cross = new (string cmd, string pkg)[]
    {
        ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"), ("aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu"),
        ("qemu-aarch64-static", "qemu-user-static"),
        ("x86_64-w64-mingw32-gcc-posix", "gcc-mingw-w64-x86-64-posix"), ("x86_64-w64-mingw32-g++-posix", "g++-mingw-w64-x86-64-posix"),
        ("wine", "wine"), ("wine64", "wine64"),
    };
    var missing = required.Where(t => Which(t.cmd) == null).Select(t => t.pkg).Distinct().ToList();
    var missingCross = installCross ? cross.Where(t => Which(t.cmd) == null).Select(t => t.pkg).Distinct().ToList() : new List<string>();
    var all = missing.Concat(missingCross).ToList();
    if (all.Count == 0) { Information("Deps: all toolchains present"); return; }

    var aptCmd = $"apt-get install -y --no-install-recommends {string.Join(" ", all)}";
    if (!IsRoot())
    {
        Warning("Deps: not root; install the missing toolchains with:");
        Warning("  sudo sed -i -E 's/^Components: .*/Components: main contrib non-free non-free-firmware/' /etc/apt/sources.list.d/debian.sources");
        Warning($"  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive {aptCmd}");
        missingRequired.AddRange(missing);
        if (missingCross.Count > 0)
            foreach (var p in new[] { "linux-arm64-release", "win-x64-release" })
                crossSkip[p] = $"cross toolchain packages not installed ({string.Join(" ", missingCross)})";
        return;
    }

    var env = new Dictionary<string, string> { ["DEBIAN_FRONTEND"] = "noninteractive" };
    var sources = "/etc/apt/sources.list.d/debian.sources";
    if (FileExists(sources)) // non-free (CUDA, later issues); idempotent
        Run("sed", $"-i -E \"s/^Components: .*/Components: main contrib non-free non-free-firmware/\" {sources}", env);
    Run("apt-get", "update -q", env);
    if (missing.Count > 0)
        Run("apt-get", $"install -y -q --no-install-recommends {string.Join(" ", missing)}", env);
    if (missingCross.Count > 0)
    {
        // Optional: a failure here skips the cross presets instead of failing the build.
        var rc = Run("apt-get", $"install -y -q --no-install-recommends {string.Join(" ", missingCross)}", env, check: false);
        if (rc != 0)
            foreach (var p in new[] { "linux-arm64-release", "win-x64-release" })
                crossSkip[p] = $"apt-get install of {string.Join(" ", missingCross)} failed ({rc})";
    }
});

Task("Native")
    .Description("Configure and build the host natives (preset linux-x64-release)")
    .IsDependentOn("Deps")
    .Does(() =>
{
    if (!NativeBuildable($"native build ({hostPreset})")) return;
    BuildPreset(hostPreset);
});

Task("NativeTest")
    .Description("ctest --preset linux-x64-release")
    .IsDependentOn("Native")
    .Does(() =>
{
    if (!NativeBuildable($"native tests ({hostPreset})")) return;
    RunCtest(hostPreset);
});

Task("Asan")
    .Description("Configure, build and ctest the ASan+UBSan preset (linux-x64-asan)")
    .IsDependentOn("Deps")
    .Does(() =>
{
    if (!NativeBuildable($"ASan/UBSan build ({asanPreset})")) return;
    if (TryBuildPreset(asanPreset)) RunCtest(asanPreset);
});

Task("Cross")
    .Description("Build and test linux-arm64 (qemu) and win-x64 (mingw + wine) when their toolchains are present")
    .IsDependentOn("Deps")
    .Does(() =>
{
    if (!crossEnabled) { Skip("cross presets", $"--cross={crossArg}"); return; }
    if (!NativeBuildable("cross presets")) return;
    var presets = new (string preset, string[] tools)[]
    {
        ("linux-arm64-release", new[] { "aarch64-linux-gnu-gcc", "qemu-aarch64-static" }),
        ("win-x64-release", new[] { "x86_64-w64-mingw32-gcc-posix", "wine" }),
    };
    foreach (var (preset, tools) in presets)
    {
        if (!crossPresets.Contains(preset)) { Skip(preset, $"not selected (--cross={crossArg})"); continue; }
        if (crossSkip.TryGetValue(preset, out var why)) { Skip(preset, why); continue; }
        var missing = tools.Where(t => Which(t) == null).ToList();
        if (missing.Count > 0) { Skip(preset, $"toolchain not found: {string.Join(", ", missing)}"); continue; }
        if (!TryBuildPreset(preset)) continue;
        Dictionary<string, string> env = null;
        if (preset.StartsWith("win-"))
        {
            env = WineEnv();
            if (!DirectoryExists(env["WINEPREFIX"])) Run("wine", "wineboot --init", env, check: false);
        }
        RunCtest(preset, env);
    }
});

Task("Managed")
    .Description("dotnet build Bnb.sln -c Release -warnaserror")
    .Does(() =>
{
    if (!HaveSolution()) return;
    Run("dotnet", $"build \"{solution.FullPath}\" -c {configuration} -warnaserror -nologo");
});

Task("ManagedTest")
    .Description("dotnet test with BNB_LIBRARY_PATH=artifacts/native/linux-x64; counts from TRX")
    .IsDependentOn("Managed")
    .Does(() =>
{
    if (!FileExists(solution)) return; // Managed already reported the skip
    var dir = resultsDir.Combine("managed");
    if (DirectoryExists(dir)) DeleteDirectory(dir, new DeleteDirectorySettings { Recursive = true, Force = true });
    EnsureDirectoryExists(dir);
    var rc = Run("dotnet", $"test \"{solution.FullPath}\" -c {configuration} --no-build --nologo --logger trx --results-directory \"{dir.FullPath}\"",
                 NativeEnv(), check: false);
    var trxs = GetFiles($"{dir.FullPath}/**/*.trx");
    if (trxs.Count == 0)
    {
        if (rc != 0)
        {
            Record("xunit", 0, 1, 0);
            failedSteps.Add($"dotnet test exited {rc} without TRX results");
            if (!deferTestFailures) throw new Exception($"dotnet test exited {rc} without TRX results");
        }
        else Skip("xunit", "no test projects in Bnb.sln yet");
        return;
    }
    int p = 0, f = 0, s = 0;
    foreach (var trx in trxs) { var r = ParseTrx(trx); p += r.passed; f += r.failed; s += r.skipped; }
    if (rc != 0 && f == 0) f = 1;
    Record($"xunit ({trxs.Count} assemblies)", p, f, s);
});

Task("Test")
    .Description("Everything CI runs; ends with 'N passed, N failed'")
    .IsDependentOn("Deps")
    .IsDependentOn("Native")
    .IsDependentOn("NativeTest")
    .IsDependentOn("Asan")
    .IsDependentOn("Cross")
    .IsDependentOn("Managed")
    .IsDependentOn("ManagedTest")
    .IsDependentOn("Smoke")
    .Does(() =>
{
    if (failedTotal > 0 || failedSteps.Count > 0) throw new Exception($"{failedTotal} test(s) failed");
    if (passedTotal == 0) throw new Exception("no tests ran");
});

Task("Demo")
    .Description("Quantize a built-in sample through every loaded backend (tools/Bnb.Cli demo)")
    .IsDependentOn("Deps")
    .IsDependentOn("Native")
    .IsDependentOn("Managed")
    .Does(() =>
{
    var cli = root.CombineWithFilePath("tools/Bnb.Cli/Bnb.Cli.csproj");
    if (!FileExists(cli)) { Skip("demo", "tools/Bnb.Cli does not exist yet"); return; }
    Run("dotnet", $"run --project \"{cli.FullPath}\" -c {configuration} -- demo", NativeEnv());
});

Task("Pack")
    .Description("dotnet pack Bnb.Core + bnb tool; Bnb.Runtime.Cpu.<rid> for every built RID -> artifacts/packages")
    .IsDependentOn("Native")
    .IsDependentOn("Cross")
    .IsDependentOn("Managed")
    .Does(() =>
{
    EnsureDirectoryExists(packagesDir);
    CleanDirectory(packagesDir);
    foreach (var proj in new[] { "Bnb.Core/Bnb.Core.csproj", "tools/Bnb.Cli/Bnb.Cli.csproj" })
    {
        var path = root.CombineWithFilePath(proj);
        if (!FileExists(path)) { Skip($"pack {proj}", "project does not exist yet"); continue; }
        Run("dotnet", $"pack \"{path.FullPath}\" -c {configuration} -nologo -o \"{packagesDir.FullPath}\"");
    }
    var template = root.CombineWithFilePath("packaging/Bnb.Runtime.csproj");
    foreach (var rid in new[] { "linux-x64", "linux-arm64", "win-x64", "osx-arm64" })
    {
        var dir = nativeOut.Combine(rid);
        var libs = DirectoryExists(dir) ? GetFiles($"{dir.FullPath}/*bnb_cpu*") : new FilePathCollection();
        if (libs.Count == 0) { Skip($"pack Bnb.Runtime.Cpu.{rid}", $"no CPU backend built in {dir}"); continue; }
        Run("dotnet", $"pack \"{template.FullPath}\" -c {configuration} -nologo -p:BnbFlavor=Cpu -p:BnbRid={rid} -o \"{packagesDir.FullPath}\"");
    }
    foreach (var nupkg in GetFiles($"{packagesDir.FullPath}/*.nupkg")) Information($"  {nupkg.GetFilename()}");
});

Task("Smoke")
    .Description("A clean consumer app restores Bnb.Runtime.Cpu.linux-x64 from artifacts/packages and calls bnb_probe")
    .IsDependentOn("Pack")
    .Does(() =>
{
    var pkg = GetFiles($"{packagesDir.FullPath}/Bnb.Runtime.Cpu.{hostRid}.*.nupkg").FirstOrDefault();
    if (pkg == null) { Skip("smoke", $"no Bnb.Runtime.Cpu.{hostRid} package"); return; }
    var version = pkg.GetFilenameWithoutExtension().ToString().Substring($"Bnb.Runtime.Cpu.{hostRid}.".Length);
    var dir = artifacts.Combine("smoke");
    if (DirectoryExists(dir)) DeleteDirectory(dir, new DeleteDirectorySettings { Recursive = true, Force = true });
    CopyDirectory(root.Combine("packaging/smoke"), dir);
    var rc = Run("dotnet", $"run --project \"{dir.FullPath}/Bnb.Smoke.csproj\" -c Release -p:BnbPackageVersion={version} " +
                           $"-p:BnbPackageSource=\"{packagesDir.FullPath}\" -p:RestorePackagesPath=\"{dir.FullPath}/packages\"",
                 check: false);
    Record("packaging smoke", rc == 0 ? 1 : 0, rc == 0 ? 0 : 1, 0);
});

Task("Bench")
    .Description("BenchmarkDotNet (benchmarks/Bnb.Benchmarks) when it exists")
    .IsDependentOn("Native")
    .Does(() =>
{
    var proj = root.CombineWithFilePath("benchmarks/Bnb.Benchmarks/Bnb.Benchmarks.csproj");
    if (!FileExists(proj)) { Information("Bench: benchmarks arrive with the CPU issue (benchmarks/Bnb.Benchmarks); nothing to run"); return; }
    var benchArgs = Argument("bench-args", "--filter *");
    Run("dotnet", $"run --project \"{proj.FullPath}\" -c Release -- {benchArgs}", NativeEnv());
});

Task("Default").IsDependentOn("Test");

RunTarget(target);
