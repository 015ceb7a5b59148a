using Bnb.InteropGen;

// Usage: Bnb.InteropGen [--check] [repo-root]
//   writes Bnb.Core/Interop/BnbNative.g.cs from native/include/bnb/bnb.h; --check only reports whether it is stale.
bool check = args.Contains("--check");
string? root = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal))
    ?? InteropGenerator.FindRepositoryRoot(Environment.CurrentDirectory)
    ?? InteropGenerator.FindRepositoryRoot(AppContext.BaseDirectory);
if (root is null)
{
    Console.Error.WriteLine("error: cannot find the repository root (the directory holding Bnb.sln); pass it as an argument");
    return 2;
}

string header = Path.Combine(root, InteropGenerator.HeaderRelativePath);
string output = Path.Combine(root, InteropGenerator.OutputRelativePath);
string generated;
try
{
    generated = InteropGenerator.Generate(File.ReadAllText(header));
}
catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"error: {header}: {e.Message}");
    return 1;
}

string current = File.Exists(output) ? File.ReadAllText(output).ReplaceLineEndings("\n") : "";
if (check)
{
    Console.WriteLine(current == generated ? $"{output} is up to date" : $"{output} is stale");
    return current == generated ? 0 : 1;
}

if (current != generated)
{
    File.WriteAllText(output, generated);
    Console.WriteLine($"wrote {output}");
}
else
{
    Console.WriteLine($"{output} is up to date");
}

return 0;
