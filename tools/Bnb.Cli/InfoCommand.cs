using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Bnb.Runtime;
using Spectre.Console;

namespace Bnb.Cli;

/// <summary><c>bnb info</c>: what was tried, what loaded, what the CPU and OS offer.</summary>
internal static class InfoCommand
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter() },
    };

    public static int Run(bool json, IReadOnlyList<string> libraries)
    {
        var options = new BnbRuntimeOptions { IncludeUnavailable = true };
        foreach (string l in libraries)
        {
            options.LibraryPaths.Add(l);
        }

        using var runtime = new BnbRuntime(options);
        var report = Report(runtime);
        if (json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(report, Json));
            return 0;
        }

        Print(report);
        return 0;
    }

    private static InfoReport Report(BnbRuntime runtime)
    {
        var openCl = OpenClPlatform.Enumerate(out string? openClProblem);
        return Report(runtime, openCl, openClProblem);
    }

    private static InfoReport Report(BnbRuntime runtime, IReadOnlyList<OpenClPlatform> openCl, string? openClProblem) => new(
        RuntimeInformation.OSDescription,
        RuntimeInformation.ProcessArchitecture.ToString(),
        BnbRuntime.RuntimeIdentifier,
        RuntimeInformation.FrameworkDescription,
        Environment.GetEnvironmentVariable(BnbRuntimeOptions.LibraryPathVariable),
        Environment.GetEnvironmentVariable(BnbRuntimeOptions.BackendsVariable),
        CpuFeatures.Detect(),
        runtime.LoadAttempts,
        [.. runtime.Backends.Select(b => new BackendReport(
            b.Name, b.Description, b.Version, $"{b.AbiMajor}.{b.AbiMinor}", b.ProbeScore, b.IsAvailable, b.LibraryPath, b.DeviceKind,
            b.Capabilities.Ops.ToString(), b.Capabilities.FloatDTypes.ToString(), b.Capabilities.QuantTypes.ToString(),
            b.Capabilities.WeightFormats.ToString(), b.Capabilities.MemoryKinds.ToString(), b.Capabilities.Optimizers.ToString()))],
        [.. runtime.Devices.Select(d => new DeviceReport(d.Id, d.Name, d.Kind, d.ComputeUnits, d.TotalMemory, d.FreeMemory))],
        runtime.DefaultBackend?.Name,
        openCl,
        openClProblem);

    private static void Print(InfoReport r)
    {
        AnsiConsole.MarkupLine($"[bold]Bnb[/] on {Markup.Escape(r.Os)} ({r.Rid}), {Markup.Escape(r.Framework)}");
        AnsiConsole.MarkupLine($"BNB_LIBRARY_PATH = {Markup.Escape(r.LibraryPath ?? "(unset)")}; BNB_BACKENDS = {Markup.Escape(r.BackendsFilter ?? "(unset)")}");

        var cpu = new Table().Title("CPU features").AddColumns("feature", "CPU", "usable (CPU + OS)");
        foreach (var f in r.CpuFeatures)
        {
            cpu.AddRow(f.Name, YesNo(f.Cpu), f.BlockedByOs ? "[red]no: OS does not enable it[/]" : YesNo(f.Usable));
        }

        AnsiConsole.Write(cpu);

        var attempts = new Table().Title("Load attempts").AddColumns("stage", "path", "source", "probe", "ABI", "message");
        foreach (var a in r.LoadAttempts)
        {
            string color = a.Stage == LoadStage.Loaded ? "green" : a.Stage is LoadStage.ProbeZero or LoadStage.Excluded or LoadStage.Duplicate ? "yellow" : "red";
            attempts.AddRow($"[{color}]{a.Stage}[/]", Markup.Escape(a.Path), a.Source.ToString(), a.ProbeScore?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "", a.AbiMajor is null ? "" : $"{a.AbiMajor}.{a.AbiMinor}", Markup.Escape(a.Message));
        }

        if (r.LoadAttempts.Count == 0)
        {
            attempts.AddRow("[red]none[/]", "no backend library found", "", "", "", "set BNB_LIBRARY_PATH to the directory holding libbnb_*.so / bnb_*.dll");
        }

        AnsiConsole.Write(attempts);

        var backends = new Table().Title("Backends").AddColumns("name", "version", "ABI", "probe", "kind", "library");
        foreach (var b in r.Backends)
        {
            backends.AddRow(
                b.Name + (b.Name == r.DefaultBackend ? " [green](default)[/]" : b.Available ? "" : " [yellow](cannot run here)[/]"),
                Markup.Escape(b.Version), b.Abi, b.ProbeScore.ToString(System.Globalization.CultureInfo.InvariantCulture), b.DeviceKind.ToString(), Markup.Escape(b.LibraryPath));
        }

        AnsiConsole.Write(backends);
        foreach (var b in r.Backends)
        {
            AnsiConsole.MarkupLine($"[bold]{b.Name}[/] capabilities");
            AnsiConsole.MarkupLine($"  ops:        {Markup.Escape(b.Ops)}");
            AnsiConsole.MarkupLine($"  dtypes:     {b.FloatDTypes}; 4-bit: {b.QuantTypes}; weight formats: {b.WeightFormats}");
            AnsiConsole.MarkupLine($"  memory:     {b.MemoryKinds}; optimizers: {Markup.Escape(b.Optimizers)}");
        }

        var devices = new Table().Title("Devices").AddColumns("device", "name", "kind", "compute units", "memory");
        foreach (var d in r.Devices)
        {
            devices.AddRow(d.Id, Markup.Escape(d.Name), d.Kind.ToString(), d.ComputeUnits.ToString(System.Globalization.CultureInfo.InvariantCulture), d.TotalMemory == 0 ? "" : $"{d.TotalMemory / (1024.0 * 1024 * 1024):F1} GiB");
        }

        AnsiConsole.Write(devices);

        // OpenCL as the system's driver sees it (bnb_xpu lists the devices it can use under Devices above).
        var openCl = new Table().Title("OpenCL platforms and devices").AddColumns("platform", "device", "kind", "version", "compute units", "memory");
        foreach (var p in r.OpenClPlatforms)
        {
            if (p.Devices.Count == 0)
            {
                openCl.AddRow(Markup.Escape(p.Name), "[yellow](no devices)[/]", "", "", "", "");
            }

            foreach (var d in p.Devices)
            {
                openCl.AddRow(Markup.Escape(p.Name), Markup.Escape(d.Name), d.Kind, Markup.Escape(d.Version),
                    d.ComputeUnits.ToString(System.Globalization.CultureInfo.InvariantCulture), d.GlobalMemory == 0 ? "" : $"{d.GlobalMemory / (1024.0 * 1024 * 1024):F1} GiB");
            }
        }

        if (r.OpenClPlatforms.Count == 0)
        {
            openCl.AddRow("[yellow]none[/]", Markup.Escape(r.OpenClProblem ?? ""), "", "", "", "");
        }

        AnsiConsole.Write(openCl);
    }

    private static string YesNo(bool? value) => value switch
    {
        true => "[green]yes[/]",
        false => "no",
        null => "[grey]n/a[/]",
    };

    private sealed record InfoReport(
        string Os,
        string Architecture,
        string Rid,
        string Framework,
        string? LibraryPath,
        string? BackendsFilter,
        IReadOnlyList<CpuFeature> CpuFeatures,
        IReadOnlyList<LoadAttempt> LoadAttempts,
        IReadOnlyList<BackendReport> Backends,
        IReadOnlyList<DeviceReport> Devices,
        string? DefaultBackend,
        IReadOnlyList<OpenClPlatform> OpenClPlatforms,
        string? OpenClProblem);

    private sealed record BackendReport(
        string Name,
        string Description,
        string Version,
        string Abi,
        int ProbeScore,
        bool Available,
        string LibraryPath,
        DeviceKind DeviceKind,
        string Ops,
        string FloatDTypes,
        string QuantTypes,
        string WeightFormats,
        string MemoryKinds,
        string Optimizers);

    private sealed record DeviceReport(string Id, string Name, DeviceKind Kind, int ComputeUnits, ulong TotalMemory, ulong FreeMemory);
}
