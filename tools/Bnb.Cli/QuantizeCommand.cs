using System.Globalization;
using System.Text.Json;
using Bnb.Memory;
using Bnb.Quantization;
using Bnb.Runtime;
using Bnb.Serialization;
using Spectre.Console;

namespace Bnb.Cli;

/// <summary>Arguments of <c>bnb quantize</c>.</summary>
internal sealed record QuantizeArgs(
    string Input, string Output, string Format, bool DoubleQuant, int Blocksize, IReadOnlyList<string> Skip, bool NoDefaultSkip,
    string ComputeDType, double Threshold, string Backend, bool Json, IReadOnlyList<string> Libraries, bool Onnx = false);

/// <summary>
/// <c>bnb quantize</c>: turns a safetensors model's linear weights into a bitsandbytes-layout checkpoint
/// (<see cref="CheckpointQuantizer"/>) with a progress bar and a summary table.
/// </summary>
internal static class QuantizeCommand
{
    public static int Run(QuantizeArgs args)
    {
        var options = new BnbRuntimeOptions();
        foreach (string l in args.Libraries)
        {
            options.LibraryPaths.Add(l);
        }

        using var runtime = new BnbRuntime(options);
        BnbBackend? backend = args.Backend == "best" ? runtime.DefaultBackend : runtime.Backends.FirstOrDefault(b => b.Name == args.Backend && b.IsAvailable);
        if (backend is null)
        {
            Console.Error.WriteLine(args.Backend == "best" ? "No Bnb backend could be loaded; run `bnb info` to see why, or set BNB_LIBRARY_PATH." : $"Backend '{args.Backend}' is not loaded or not available; run `bnb info`.");
            return 1;
        }

        var quantizeOptions = new CheckpointQuantizeOptions
        {
            Format = args.Format switch { "int8" => CheckpointFormat.Int8, "fp4" => CheckpointFormat.Fp4, _ => CheckpointFormat.Nf4 },
            DoubleQuant = args.DoubleQuant,
            Blocksize = args.Blocksize,
            Skip = args.Skip,
            UseDefaultSkips = !args.NoDefaultSkip,
            ComputeDType = args.ComputeDType switch { "f16" => DType.F16, "bf16" => DType.BF16, _ => DType.F32 },
            Int8Threshold = args.Threshold,
        };

        using var context = backend.CreateContext();
        var quantizer = new Quantizer(context);
        CheckpointQuantizeResult result;
        string? onnxTemp = null;
        try
        {
            if (args.Onnx)
            {
                // ONNX: initializers → a temporary safetensors file with PyTorch names, then the same path as safetensors.
                onnxTemp = Directory.CreateTempSubdirectory("bnb-onnx-").FullName;
                string converted = Path.Combine(onnxTemp, "model.safetensors");
                int linear = OnnxInput.Convert(OnnxInput.Load(args.Input), Path.GetFileName(args.Input), converted);
                if (!args.Json)
                {
                    AnsiConsole.MarkupLine($"ONNX: {linear} MatMul weights named through their bias Adds, transposed to [out, in].");
                }

                args = args with { Input = converted };
            }

            if (args.Json || Console.IsOutputRedirected)
            {
                result = CheckpointQuantizer.Quantize(quantizer, args.Input, args.Output, quantizeOptions);
            }
            else
            {
                result = null!;
                AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask("quantizing", maxValue: 1);
                        var progress = new Progress(task);
                        result = CheckpointQuantizer.Quantize(quantizer, args.Input, args.Output, quantizeOptions, progress);
                        task.Value = task.MaxValue;
                    });
            }
        }
        catch (Exception e) when (e is FormatException or IOException or ArgumentException or UnauthorizedAccessException or InvalidOperationException)
        {
            Console.Error.WriteLine($"bnb quantize: {e.Message}");
            return 1;
        }
        finally
        {
            if (onnxTemp is not null)
            {
                Directory.Delete(onnxTemp, recursive: true);
            }
        }

        if (args.Json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                output = result.SafetensorsPath,
                config = result.ConfigPath,
                backend = backend.Name,
                bytes_before = result.BytesBefore,
                bytes_after = result.BytesAfter,
                tensors = result.Tensors.Select(t => new
                {
                    name = t.Name,
                    shape = t.Shape,
                    dtype = t.DType.Name(),
                    action = t.Action,
                    bytes_before = t.BytesBefore,
                    bytes_after = t.BytesAfter,
                    mean_abs_error = t.MeanAbsError,
                    relative_error = t.RelativeError,
                }),
            }));
            return 0;
        }

        PrintSummary(result, backend.Name);
        return 0;
    }

    private static void PrintSummary(CheckpointQuantizeResult result, string backend)
    {
        var table = new Table().AddColumns("tensor", "shape", "dtype", "action", "bytes before", "bytes after", "mean abs err", "rel err");
        foreach (var t in result.Tensors)
        {
            bool q = t.Action is not ("copied" or "skipped");
            table.AddRow(
                Markup.Escape(t.Name), Markup.Escape("[" + string.Join(", ", t.Shape) + "]"), t.DType.Name(), q ? $"[green]{t.Action}[/]" : t.Action,
                t.BytesBefore.ToString("N0", CultureInfo.InvariantCulture), t.BytesAfter.ToString("N0", CultureInfo.InvariantCulture),
                q ? t.MeanAbsError.ToString("E2", CultureInfo.InvariantCulture) : "", q ? t.RelativeError.ToString("P2", CultureInfo.InvariantCulture) : "");
        }

        table.AddEmptyRow();
        table.AddRow(
            $"[bold]{result.Tensors.Count} tensors, {result.QuantizedCount} quantized[/]", "", "", "",
            $"[bold]{result.BytesBefore.ToString("N0", CultureInfo.InvariantCulture)}[/]", $"[bold]{result.BytesAfter.ToString("N0", CultureInfo.InvariantCulture)}[/]",
            "", $"{(double)result.BytesAfter / Math.Max(result.BytesBefore, 1):P1} of the input");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"Wrote [bold]{Markup.Escape(result.SafetensorsPath)}[/] and [bold]{Markup.Escape(result.ConfigPath)}[/] (backend {backend}); reloaded and verified byte for byte.");
    }

    /// <summary>Moves the progress bar as tensors finish.</summary>
    private sealed class Progress(ProgressTask task) : IProgress<(int Done, int Total, string Name)>
    {
        public void Report((int Done, int Total, string Name) value)
        {
            task.MaxValue = Math.Max(value.Total, 1);
            task.Value = value.Done;
            task.Description = Markup.Escape(value.Name.Length > 48 ? "…" + value.Name[^47..] : value.Name);
        }
    }
}
