namespace Bnb.InteropGen;

/// <summary>Entry point shared by the tool and the up-to-date test.</summary>
public static class InteropGenerator
{
    public const string HeaderRelativePath = "native/include/bnb/bnb.h";
    public const string OutputRelativePath = "Bnb.Core/Interop/BnbNative.g.cs";

    /// <summary>The generated C# for the header text (LF line endings).</summary>
    public static string Generate(string headerText) =>
        CSharpEmitter.Emit(HeaderParser.Parse(headerText), HeaderRelativePath);

    /// <summary>Walks up from <paramref name="start"/> to the directory holding Bnb.sln.</summary>
    public static string? FindRepositoryRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Bnb.sln")))
            {
                return dir.FullName;
            }
        }

        return null;
    }
}
