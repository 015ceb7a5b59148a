// Bnb build orchestration (Cake 7). Orchestration only: compiler flags live in CMake (CMakeLists.txt, cmake/,
// CMakePresets.json) and MSBuild (Directory.Build.props); this file only runs the steps in order.
//
//   ./build.sh [target] [--configuration=Release] [--cross=linux-arm64-release,win-x64-release|none]
//
// Targets: Deps, Native, NativeTest, Asan, Cross, Managed, ManagedTest, CrossManagedTest, Pack, Smoke, BenchSmoke,
//          Test (default), Demo, Bench.
// Test = Deps → Native → NativeTest → Asan → Cross → Managed → ManagedTest → CrossManagedTest → Pack → Smoke → BenchSmoke.
//   CrossManagedTest: the xunit suite (packaging/crosstest, a self-contained xunit.v3 exe built from tests/Bnb.Core.Tests)
//   under qemu-aarch64-static (linux-arm64) and wine (win-x64). Smoke: a clean consumer restores Bnb.Core +
//   Bnb.Runtime.Cpu from artifacts/packages and runs an NF4 round trip on linux-x64, linux-arm64 (qemu), win-x64 (wine).
//   Bench: BenchmarkDotNet (--bench-args="..." to choose; default every benchmark, short job); BenchSmoke: one class, Dry.
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
// GPU backends compiled into the host build (no GPU needed: their no-device tests run in ctest): --gpu=cuda,hip
// (default), a subset, or none. Environment default: BNB_GPU. Deps installs the toolkits (root only).
var gpuArg = Argument("gpu", EnvironmentVariable("BNB_GPU") ?? "cuda,hip");
var gpuBackends = gpuArg.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
    .Where(g => g == "cuda" || g == "hip").Distinct().ToList();

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
string arm64DotnetSkip = null; // why .NET linux-arm64 programs cannot run under qemu here (null = they can)
var gpuSkip = new Dictionary<string, string>(); // "cuda"/"hip" -> reason the backend is not built

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
// emulated: tests run under qemu / wine. An emulator occasionally fails to start a process at all (seen under
// wine with -j 2: a test "fails" in 0.00 s with no output); such tests get up to two more attempts. Our own bugs
// are deterministic (same inputs, same bytes for every thread count) and still fail every attempt.
void RunCtest(string preset, IDictionary<string, string> env = null, bool emulated = false)
{
    var junit = resultsDir.Combine("native").CombineWithFilePath($"{preset}.xml");
    EnsureDirectoryExists(junit.GetDirectory());
    if (FileExists(junit)) DeleteFile(junit);
    var jobs = System.Environment.ProcessorCount;
    var retry = emulated ? " --repeat until-pass:3" : "";
    var rc = Run("ctest", $"--preset {preset} -j {jobs}{retry} --output-junit \"{junit.FullPath}\"", env, check: false);
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

// Counts a TRX file (or a failure when the run left none) under `what`.
// Upper bound for one emulated xunit run (qemu arm64 takes a few minutes on 2 cores; wine less).
const int EmulatedXunitLimitSeconds = 1200;

void RecordTrx(string what, FilePath trx, int rc)
{
    if (!FileExists(trx))
    {
        Record(what, 0, 1, 0);
        failedSteps.Add($"{what} exited {rc} without TRX results");
        return;
    }
    var r = ParseTrx(trx);
    Record(what, r.passed, r.failed == 0 && rc != 0 ? 1 : r.failed, r.skipped);
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

// CMake switches for the GPU backends of the host build (spec/toolchain.md §1a/1b/2a): ON where the toolkit is
// installed and wanted, OFF (with a recorded reason) otherwise.
string GpuCmakeArgs()
{
    var args = new List<string>();
    foreach (var (name, option, tool) in new[] { ("cuda", "BNB_CUDA", "nvcc"), ("hip", "BNB_HIP", "hipcc") })
    {
        string why = null;
        if (!gpuBackends.Contains(name)) why = $"not selected (--gpu={gpuArg})";
        else if (gpuSkip.TryGetValue(name, out var reason)) why = reason;
        else if (Which(tool) == null) why = $"{tool} not found (run ./build.sh deps as root)";
        args.Add($"-D{option}={(why == null ? "ON" : "OFF")}");
        if (why != null) Skip($"bnb_{name} build and no-device tests", why);
    }
    return string.Join(" ", args);
}

void BuildPreset(string preset, string extraArgs = "")
{
    Run("cmake", $"--preset {preset} {extraArgs}".TrimEnd());
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

// .NET programs under emulation. W^X double mapping must be off: qemu-user does not see code written through the
// second (writable) mapping and runs stale translations (random SIGILL/SIGSEGV/"Internal CLR error"); under wine it
// crashes the finalizer of dynamic methods. mscoree must NOT be overridden for .NET under wine (IL-only assemblies
// such as System.Runtime.dll then fail with "Module not found"). Invariant globalization: no ICU needed.
Dictionary<string, string> EmulatedDotnetEnv(string rid)
{
    var env = rid.StartsWith("win-") ? WineEnv() : new Dictionary<string, string>();
    env.Remove("WINEDLLOVERRIDES");
    env["DOTNET_EnableWriteXorExecute"] = "0";
    env["DOTNET_SYSTEM_GLOBALIZATION_INVARIANT"] = "1";
    env["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
    env["BNB_TEST_EMULATED"] = "1"; // tests shrink their largest workloads (e.g. the 8-bit optimizer suite) under emulation
    return env;
}

// How a program built for `rid` runs here: (tool, argument prefix), or null when it cannot (reason in `why`).
(string tool, string prefix)? Emulator(string rid, out string why)
{
    why = null;
    switch (rid)
    {
        case "linux-x64": return ("", "");
        case "linux-arm64":
            if (Which("qemu-aarch64-static") == null) { why = "qemu-aarch64-static not installed"; return null; }
            if (arm64DotnetSkip != null) { why = arm64DotnetSkip; return null; }
            if (!FileExists("/lib/ld-linux-aarch64.so.1")) { why = "no arm64 multiarch libc (dpkg --add-architecture arm64 && apt-get install libssl3:arm64 libicu72:arm64)"; return null; }
            return ("qemu-aarch64-static", ""); // WITHOUT -L: multiarch libc6:arm64 is found at /lib (toolchain.md 4a')
        case "win-x64":
            if (Which("wine") == null) { why = "wine not installed"; return null; }
            return ("wine", "");
        default: why = $"no way to run {rid} programs here"; return null;
    }
}

void EnsureWinePrefix()
{
    var env = WineEnv();
    if (!DirectoryExists(env["WINEPREFIX"])) Run("wine", "wineboot --init", env, check: false);
}

string WinePath(string unixPath) => "Z:" + unixPath.Replace('/', '\\');

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
    // OpenCL for bnb_xpu (toolchain.md 3a/3e): headers, the ICD loader, PoCL (the CPU as an OpenCL device: runs the
    // conformance suite) and intel-opencl-icd (ocloc: compile-checks the kernels for Intel GPUs). Optional: without
    // them bnb_xpu is not built / its ocloc tests are skipped with the reason.
    var opencl = new (string probe, string pkg)[]
    {
        ("/usr/include/CL/cl.h", "opencl-headers"), ("/usr/lib/x86_64-linux-gnu/libOpenCL.so", "ocl-icd-opencl-dev"),
        ("/etc/OpenCL/vendors/pocl.icd", "pocl-opencl-icd"), ("clinfo", "clinfo"), ("ocloc", "intel-opencl-icd"),
    };
    var missingOpencl = opencl.Where(t => t.probe.StartsWith("/") ? !System.IO.File.Exists(t.probe) : Which(t.probe) == null)
        .Select(t => t.pkg).ToList();
    // GPU toolkits (optional: a failed install skips that backend). nvidia-cuda-toolkit is in non-free; the gcc
    // package gives nvcc its supported host compiler (g++-11); HIP needs HIP_PLATFORM=amd (set by the CMake rules).
    var gpuPackages = new (string backend, string path, string pkg)[]
    {
        ("cuda", "/usr/bin/nvcc", "nvidia-cuda-toolkit"), ("cuda", "/usr/bin/g++-11", "nvidia-cuda-toolkit-gcc"),
        ("hip", "/usr/bin/hipcc", "hipcc"), ("hip", "/usr/include/hip/hip_runtime.h", "libamdhip64-dev"),
    };
    var missingGpu = gpuPackages.Where(t => gpuBackends.Contains(t.backend) && !FileExists(t.path)).ToList();
    var missingCross = installCross ? cross.Where(t => Which(t.cmd) == null).Select(t => t.pkg).Distinct().ToList() : new List<string>();
    // .NET linux-arm64 programs under qemu (xunit suite, packaging smoke) need the multiarch arm64 libc, libssl
    // and libicu (toolchain.md 4a'); the native ctest keeps working either way (the toolchain file drops -L).
    bool arm64Wanted = installCross && crossPresets.Contains("linux-arm64-release");
    bool needArm64Libs = arm64Wanted && (Capture("dpkg-query", "-W -f=${Status} libssl3:arm64") ?? "").Contains("ok installed") == false;
    // Optional tools: their absence only skips the tests that need them (patchelf: the TorchSharp adapter tests patch
    // TorchSharp 0.107's libLibTorchSharp.so for Debian 12's libstdc++, tests/Bnb.TorchSharp.Tests).
    var missingOptional = new (string cmd, string pkg)[] { ("patchelf", "patchelf") }.Where(t => Which(t.cmd) == null).Select(t => t.pkg).ToList();
    missingOptional.AddRange(missingOpencl);
    var all = missing.Concat(missingCross).Concat(missingGpu.Select(t => t.pkg)).ToList();
    if (all.Count == 0 && !needArm64Libs && missingOptional.Count == 0) { Information("Deps: all toolchains present"); return; }

    var aptCmd = $"apt-get install -y --no-install-recommends {string.Join(" ", all)}";
    if (!IsRoot())
    {
        Warning("Deps: not root; install the missing toolchains with:");
        Warning("  sudo sed -i -E 's/^Components: .*/Components: main contrib non-free non-free-firmware/' /etc/apt/sources.list.d/debian.sources");
        Warning($"  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive {aptCmd}");
        if (missingOptional.Count > 0) Warning($"  optional: sudo apt-get install -y {string.Join(" ", missingOptional)}");
        if (needArm64Libs)
        {
            Warning("  sudo dpkg --add-architecture arm64 && sudo apt-get update && sudo apt-get install -y libssl3:arm64 libicu72:arm64");
            arm64DotnetSkip = "arm64 multiarch libssl3/libicu72 not installed and not root";
        }
        missingRequired.AddRange(missing);
        foreach (var t in missingGpu) gpuSkip[t.backend] = $"{t.pkg} not installed and not root";
        if (missingCross.Count > 0)
            foreach (var p in new[] { "linux-arm64-release", "win-x64-release" })
                crossSkip[p] = $"cross toolchain packages not installed ({string.Join(" ", missingCross)})";
        return;
    }

    var env = new Dictionary<string, string> { ["DEBIAN_FRONTEND"] = "noninteractive" };
    var sources = "/etc/apt/sources.list.d/debian.sources";
    if (FileExists(sources)) // non-free (CUDA, later issues); idempotent
        Run("sed", $"-i -E \"s/^Components: .*/Components: main contrib non-free non-free-firmware/\" {sources}", env);
    if (needArm64Libs) Run("dpkg", "--add-architecture arm64", env, check: false);
    Run("apt-get", "update -q", env);
    if (missing.Count > 0)
        Run("apt-get", $"install -y -q --no-install-recommends {string.Join(" ", missing)}", env);
    if (missingOptional.Count > 0)
        Run("apt-get", $"install -y -q --no-install-recommends {string.Join(" ", missingOptional)}", env, check: false);
    if (missingCross.Count > 0)
    {
        // Optional: a failure here skips the cross presets instead of failing the build.
        var rc = Run("apt-get", $"install -y -q --no-install-recommends {string.Join(" ", missingCross)}", env, check: false);
        if (rc != 0)
            foreach (var p in new[] { "linux-arm64-release", "win-x64-release" })
                crossSkip[p] = $"apt-get install of {string.Join(" ", missingCross)} failed ({rc})";
    }
    foreach (var backend in missingGpu.Select(t => t.backend).Distinct())
    {
        var pkgs = string.Join(" ", missingGpu.Where(t => t.backend == backend).Select(t => t.pkg));
        var rc = Run("apt-get", $"install -y -q --no-install-recommends {pkgs}", env, check: false);
        if (rc != 0) gpuSkip[backend] = $"apt-get install of {pkgs} failed ({rc})";
    }
    if (needArm64Libs)
    {
        var rc = Run("apt-get", "install -y -q --no-install-recommends libssl3:arm64 libicu72:arm64", env, check: false);
        if (rc != 0) arm64DotnetSkip = $"apt-get install libssl3:arm64 libicu72:arm64 failed ({rc})";
    }
});

Task("Native")
    .Description("Configure and build the host natives (preset linux-x64-release)")
    .IsDependentOn("Deps")
    .Does(() =>
{
    if (!NativeBuildable($"native build ({hostPreset})")) return;
    BuildPreset(hostPreset, GpuCmakeArgs());
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
            EnsureWinePrefix();
        }
        RunCtest(preset, env, emulated: true);
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

Task("CrossManagedTest")
    .Description("The xunit suite as a self-contained exe (packaging/crosstest) under qemu (linux-arm64) and wine (win-x64)")
    .IsDependentOn("Cross")
    .IsDependentOn("Managed")
    .Does(() =>
{
    if (!crossEnabled) { Skip("xunit under emulation", $"--cross={crossArg}"); return; }
    var proj = root.CombineWithFilePath("packaging/crosstest/Bnb.Core.CrossTests.csproj");
    foreach (var (preset, rid) in new[] { ("linux-arm64-release", "linux-arm64"), ("win-x64-release", "win-x64") })
    {
        var what = $"xunit {rid} ({(rid == "win-x64" ? "wine" : "qemu")})";
        if (!crossPresets.Contains(preset)) { Skip(what, $"not selected (--cross={crossArg})"); continue; }
        var natives = nativeOut.Combine(rid);
        if (!DirectoryExists(natives) || GetFiles($"{natives.FullPath}/*bnb_cpu_ref*").Count == 0) { Skip(what, $"no {rid} natives built in {natives}"); continue; }
        var emu = Emulator(rid, out var why);
        if (emu == null) { Skip(what, why); continue; }
        var outDir = artifacts.Combine("crosstest").Combine(rid);
        if (DirectoryExists(outDir)) DeleteDirectory(outDir, new DeleteDirectorySettings { Recursive = true, Force = true });
        try
        {
            Run("dotnet", $"publish \"{proj.FullPath}\" -c {configuration} -nologo -p:BnbCrossRid={rid} -o \"{outDir.FullPath}\"");
        }
        catch (Exception e) when (deferTestFailures)
        {
            Record(what, 0, 1, 0);
            failedSteps.Add($"{what}: publish failed: {e.Message}");
            continue;
        }
        var trx = resultsDir.Combine("managed-cross").CombineWithFilePath($"{rid}.trx");
        EnsureDirectoryExists(trx.GetDirectory());
        if (FileExists(trx)) DeleteFile(trx);
        var env = EmulatedDotnetEnv(rid);
        string tool, args;
        if (rid == "win-x64")
        {
            EnsureWinePrefix();
            env["BNB_LIBRARY_PATH"] = WinePath(natives.FullPath);
            (tool, args) = ("wine", $"\"{outDir.FullPath}/Bnb.Core.Tests.exe\" -noColor -trx \"{WinePath(trx.FullPath)}\"");
        }
        else
        {
            env["BNB_LIBRARY_PATH"] = natives.FullPath;
            (tool, args) = (emu.Value.tool, $"\"{outDir.FullPath}/Bnb.Core.Tests\" -noColor -trx \"{trx.FullPath}\"");
        }
        // The emulated runtime itself can fail: under wine the CLR occasionally aborts with "Internal CLR error"
        // (SuspendThread failed during a GC suspension) and the process then hangs. A time limit turns a hang into a
        // failed attempt; an attempt that produced no TRX (crash, hang) is retried once. An attempt with a TRX is a
        // real result (our failures are deterministic) and is never retried.
        int rc = 0;
        for (int attempt = 1; attempt <= 2; attempt++)
        {
            if (FileExists(trx)) DeleteFile(trx);
            rc = Run("timeout", $"--kill-after=30 {EmulatedXunitLimitSeconds} {(tool.Contains('/') ? tool : Tool(tool))} {args}", env, check: false);
            if (FileExists(trx)) break;
            Warning($"{what}: attempt {attempt} ended with exit code {rc}{(rc == 124 || rc == 137 ? $" (time limit {EmulatedXunitLimitSeconds} s)" : "")} and no TRX");
        }
        RecordTrx(what, trx, rc);
    }
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
    .IsDependentOn("CrossManagedTest")
    .IsDependentOn("Smoke")
    .IsDependentOn("BenchSmoke")
    .Does(() =>
{
    if (failedTotal > 0 || failedSteps.Count > 0) throw new Exception($"{failedTotal} test(s) failed");
    if (passedTotal == 0) throw new Exception("no tests ran");
});

Task("Demo")
    .Description("all-MiniLM-L6-v2 end to end: fp32, then int8 / NF4 / FP4 linear layers on every loaded backend; size, accuracy, speed table (tools/Bnb.Cli demo)")
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
    foreach (var proj in new[] { "Bnb.Core/Bnb.Core.csproj", "tools/Bnb.Cli/Bnb.Cli.csproj", "bindings/Bnb.TorchSharp/Bnb.TorchSharp.csproj", "bindings/Bnb.Silk/Bnb.Silk.csproj" })
    {
        var path = root.CombineWithFilePath(proj);
        if (!FileExists(path)) { Skip($"pack {proj}", "project does not exist yet"); continue; }
        Run("dotnet", $"pack \"{path.FullPath}\" -c {configuration} -nologo -o \"{packagesDir.FullPath}\"");
    }
    var template = root.CombineWithFilePath("packaging/Bnb.Runtime.csproj");
    var packedRids = new List<string>();
    foreach (var rid in new[] { "linux-x64", "linux-arm64", "win-x64", "osx-arm64" })
    {
        var dir = nativeOut.Combine(rid);
        var libs = DirectoryExists(dir) ? GetFiles($"{dir.FullPath}/*bnb_cpu*") : new FilePathCollection();
        if (libs.Count == 0) { Skip($"pack Bnb.Runtime.Cpu.{rid}", $"no CPU backend built in {dir}"); continue; }
        Information($"Bnb.Runtime.Cpu.{rid}: {string.Join(", ", libs.Select(l => l.GetFilename().ToString()))}");
        Run("dotnet", $"pack \"{template.FullPath}\" -c {configuration} -nologo -p:BnbFlavor=Cpu -p:BnbRid={rid} -o \"{packagesDir.FullPath}\"");
        packedRids.Add(rid);
    }
    // The Bnb.Runtime.Cpu meta package: one dependency per RID package packed above (same template, BnbRid=meta).
    if (packedRids.Count > 0)
        Run("dotnet", $"pack \"{template.FullPath}\" -c {configuration} -nologo -p:BnbFlavor=Cpu -p:BnbRid=meta \"-p:BnbMetaRids=\\\"{string.Join(",", packedRids)}\\\"\" -o \"{packagesDir.FullPath}\"");
    // GPU runtime packages (linux-x64 only: a Windows CUDA build needs the Windows CUDA toolkit, which this Linux
    // toolchain cannot provide; docs/backends.md). Same template, flavor Cuda / Hip, plus the flavor's meta package.
    foreach (var flavor in new[] { "Cuda", "Hip" })
    {
        var dir = nativeOut.Combine(hostRid);
        var stem = $"bnb_{flavor.ToLowerInvariant()}";
        if (!DirectoryExists(dir) || GetFiles($"{dir.FullPath}/lib{stem}.so").Count == 0)
        {
            Skip($"pack Bnb.Runtime.{flavor}.{hostRid}", $"lib{stem}.so was not built");
            continue;
        }
        Run("dotnet", $"pack \"{template.FullPath}\" -c {configuration} -nologo -p:BnbFlavor={flavor} -p:BnbRid={hostRid} -o \"{packagesDir.FullPath}\"");
        Run("dotnet", $"pack \"{template.FullPath}\" -c {configuration} -nologo -p:BnbFlavor={flavor} -p:BnbRid=meta \"-p:BnbMetaRids=\\\"{hostRid}\\\"\" -o \"{packagesDir.FullPath}\"");
    }
    foreach (var nupkg in GetFiles($"{packagesDir.FullPath}/*.nupkg")) Information($"  {nupkg.GetFilename()}");
});

Task("Smoke")
    .Description("A clean consumer restores Bnb.Core + Bnb.Runtime.Cpu from artifacts/packages only and runs an NF4 round trip (linux-x64; linux-arm64 under qemu, win-x64 under wine, self-contained)")
    .IsDependentOn("Pack")
    .Does(() =>
{
    var core = GetFiles($"{packagesDir.FullPath}/Bnb.Core.*.nupkg").FirstOrDefault();
    var meta = GetFiles($"{packagesDir.FullPath}/Bnb.Runtime.Cpu.*.nupkg").FirstOrDefault(f => System.Text.RegularExpressions.Regex.IsMatch(f.GetFilename().ToString(), @"^Bnb\.Runtime\.Cpu\.\d"));
    if (core == null || meta == null) { Skip("smoke", "Bnb.Core or the Bnb.Runtime.Cpu meta package was not packed"); return; }
    var version = core.GetFilenameWithoutExtension().ToString().Substring("Bnb.Core.".Length);
    var dir = artifacts.Combine("smoke");
    if (DirectoryExists(dir)) DeleteDirectory(dir, new DeleteDirectorySettings { Recursive = true, Force = true });
    CopyDirectory(root.Combine("packaging/smoke"), dir);

    // NuGet.config: Bnb.* only from artifacts/packages; everything else (CommunityToolkit, runtime packs) from the
    // sources this machine already has configured (package source mapping: no Bnb.* from anywhere else).
    var keys = new List<string>();
    foreach (var line in (Capture("dotnet", "nuget list source --format Detailed") ?? "").Split('\n'))
    {
        var m = System.Text.RegularExpressions.Regex.Match(line, @"^\s*\d+\.\s+(.+?)\s+\[Enabled\]");
        if (m.Success) keys.Add(m.Groups[1].Value);
    }
    var config = new System.Text.StringBuilder();
    config.AppendLine("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration>\n  <packageSources>");
    config.AppendLine($"    <add key=\"bnb-local\" value=\"{packagesDir.FullPath}\" />\n  </packageSources>\n  <packageSourceMapping>");
    config.AppendLine("    <packageSource key=\"bnb-local\"><package pattern=\"Bnb.*\" /></packageSource>");
    foreach (var k in keys.Where(k => k != "bnb-local")) config.AppendLine($"    <packageSource key=\"{System.Security.SecurityElement.Escape(k)}\"><package pattern=\"*\" /></packageSource>");
    config.AppendLine("  </packageSourceMapping>\n</configuration>");
    System.IO.File.WriteAllText(dir.CombineWithFilePath("NuGet.config").FullPath, config.ToString());

    var proj = dir.CombineWithFilePath("Bnb.Smoke.csproj").FullPath;
    var common = $"-c Release -nologo -p:BnbPackageVersion={version} -p:RestorePackagesPath=\"{dir.FullPath}/packages\"";
    var clean = new Dictionary<string, string> { ["BNB_LIBRARY_PATH"] = "", ["BNB_BACKENDS"] = "" };

    // linux-x64: framework-dependent, natives from runtimes/linux-x64/native of the restored package.
    var rc = Run("dotnet", $"run --project \"{proj}\" {common}", clean, check: false);
    Record("packaging smoke linux-x64", rc == 0 ? 1 : 0, rc == 0 ? 0 : 1, 0);

    foreach (var rid in new[] { "linux-arm64", "win-x64" })
    {
        var what = $"packaging smoke {rid} ({(rid == "win-x64" ? "wine" : "qemu")})";
        if (!crossEnabled) { Skip(what, $"--cross={crossArg}"); continue; }
        if (GetFiles($"{packagesDir.FullPath}/Bnb.Runtime.Cpu.{rid}.*.nupkg").Count == 0) { Skip(what, $"no Bnb.Runtime.Cpu.{rid} package"); continue; }
        var emu = Emulator(rid, out var why);
        if (emu == null) { Skip(what, why); continue; }
        var outDir = dir.Combine("publish").Combine(rid);
        rc = Run("dotnet", $"publish \"{proj}\" {common} -r {rid} --self-contained -o \"{outDir.FullPath}\"", clean, check: false);
        if (rc == 0)
        {
            var env = EmulatedDotnetEnv(rid);
            env["BNB_LIBRARY_PATH"] = "";
            if (rid == "win-x64") EnsureWinePrefix();
            var exe = rid == "win-x64" ? $"{outDir.FullPath}/Bnb.Smoke.exe" : $"{outDir.FullPath}/Bnb.Smoke";
            rc = Run(emu.Value.tool, $"\"{exe}\"", env, check: false);
        }
        Record(what, rc == 0 ? 1 : 0, rc == 0 ? 0 : 1, 0);
    }
});

Task("BenchSmoke")
    .Description("BenchmarkDotNet smoke: one benchmark class, --job Dry, every loaded backend (counts as one test)")
    .IsDependentOn("Native")
    .IsDependentOn("Managed")
    .Does(() =>
{
    var dll = root.CombineWithFilePath($"benchmarks/Bnb.Benchmarks/bin/{configuration}/net10.0/Bnb.Benchmarks.dll");
    if (!FileExists(dll)) { Skip("benchmark smoke", $"{dll} not built"); return; }
    var rc = Run("dotnet", $"\"{dll.FullPath}\" --filter *DequantizeBenchmarks* --job Dry --artifacts \"{artifacts.Combine("benchmarkdotnet-smoke").FullPath}\"", NativeEnv(), check: false);
    Record("benchmark smoke (Dry)", rc == 0 ? 1 : 0, rc == 0 ? 0 : 1, 0);
});

Task("Bench")
    .Description("BenchmarkDotNet (benchmarks/Bnb.Benchmarks): --bench-args=\"...\" (default: every benchmark, short job)")
    .IsDependentOn("Native")
    .Does(() =>
{
    var proj = root.CombineWithFilePath("benchmarks/Bnb.Benchmarks/Bnb.Benchmarks.csproj");
    if (!FileExists(proj)) { Information("Bench: benchmarks arrive with the CPU issue (benchmarks/Bnb.Benchmarks); nothing to run"); return; }
    // Default: every benchmark, short job (~minutes). Full job: --bench-args="--filter * --job Default".
    var benchArgs = Argument("bench-args", "--filter * --job short");
    Run("dotnet", $"run --project \"{proj.FullPath}\" -c Release -- {benchArgs} --artifacts \"{artifacts.Combine("benchmarkdotnet").FullPath}\"", NativeEnv());
});

Task("Default").IsDependentOn("Test");

RunTarget(target);
