using System.Globalization;
using System.Text.RegularExpressions;

namespace Bnb.InteropGen;

/// <summary>
/// Parses the regular subset of C that bnb.h is written in: integer <c>#define</c>s, <c>typedef struct</c>s whose
/// fields are plain declarations, fixed arrays or <c>ret(BNB_CALL* name)(params)</c> slots, opaque struct typedefs,
/// scalar typedefs and function-pointer typedefs. Anything else in the header is ignored; anything malformed inside
/// a struct is an error, so the generator never silently drops a slot.
/// </summary>
public static partial class HeaderParser
{
    public static HeaderModel Parse(string headerText)
    {
        ArgumentNullException.ThrowIfNull(headerText);
        string text = StripComments(headerText);

        var constants = new List<HeaderConstant>();
        var constantValues = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (Match m in DefineRegex().Matches(text))
        {
            long value = long.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture);
            constants.Add(new HeaderConstant(m.Groups["name"].Value, value));
            constantValues[m.Groups["name"].Value] = value;
        }

        var scalarTypedefs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (Match m in ScalarTypedefRegex().Matches(text))
        {
            scalarTypedefs[m.Groups["name"].Value] = m.Groups["type"].Value;
        }

        var opaque = OpaqueRegex().Matches(text).Select(m => m.Groups["name"].Value).ToList();

        var functionTypedefs = FunctionTypedefRegex().Matches(text)
            .Select(m => ParseSignature(m.Groups["ret"].Value, m.Groups["name"].Value, m.Groups["params"].Value))
            .ToList();

        var structs = new List<HeaderStruct>();
        foreach (Match m in StructRegex().Matches(text))
        {
            structs.Add(ParseStruct(m.Groups["name"].Value, m.Groups["body"].Value, constantValues));
        }

        return new HeaderModel(constants, structs, opaque, functionTypedefs, scalarTypedefs);
    }

    private static HeaderStruct ParseStruct(string name, string body, Dictionary<string, long> constants)
    {
        var fields = new List<HeaderField>();
        var slots = new List<FunctionSignature>();
        foreach (string raw in body.Split(';'))
        {
            string decl = Normalize(raw);
            if (decl.Length == 0)
            {
                continue;
            }

            Match slot = SlotRegex().Match(decl);
            if (slot.Success)
            {
                var signature = ParseSignature(slot.Groups["ret"].Value, slot.Groups["name"].Value, slot.Groups["params"].Value);
                slots.Add(signature);
                fields.Add(new HeaderField(signature.Name, new CType("<slot>", 0), null));
                continue;
            }

            Match field = FieldRegex().Match(decl);
            if (!field.Success)
            {
                throw new FormatException($"struct {name}: cannot parse declaration '{decl}'");
            }

            int? length = null;
            if (field.Groups["len"].Success)
            {
                string len = field.Groups["len"].Value;
                length = checked((int)(constants.TryGetValue(len, out long v) ? v : long.Parse(len, CultureInfo.InvariantCulture)));
            }

            fields.Add(new HeaderField(field.Groups["name"].Value, ParseType(field.Groups["type"].Value), length));
        }

        return new HeaderStruct(name, fields, slots);
    }

    private static FunctionSignature ParseSignature(string returnType, string name, string parameters)
    {
        var list = new List<HeaderParameter>();
        string p = Normalize(parameters);
        if (p != "void" && p.Length > 0)
        {
            foreach (string part in p.Split(','))
            {
                Match m = ParameterRegex().Match(Normalize(part));
                if (!m.Success)
                {
                    throw new FormatException($"{name}: cannot parse parameter '{part.Trim()}'");
                }

                list.Add(new HeaderParameter(m.Groups["name"].Value, ParseType(m.Groups["type"].Value)));
            }
        }

        return new FunctionSignature(name, ParseType(returnType), list);
    }

    private static CType ParseType(string text)
    {
        string t = Normalize(text).Replace("const ", "", StringComparison.Ordinal).Replace(" const", "", StringComparison.Ordinal);
        int depth = t.Count(c => c == '*');
        string baseName = t.Replace("*", "", StringComparison.Ordinal).Trim();
        if (baseName.Length == 0 || baseName.Contains(' ', StringComparison.Ordinal))
        {
            throw new FormatException($"unsupported C type '{text.Trim()}'");
        }

        return new CType(baseName, depth);
    }

    private static string Normalize(string s) => WhitespaceRegex().Replace(s, " ").Trim();

    private static string StripComments(string s) => LineCommentRegex().Replace(BlockCommentRegex().Replace(s, " "), "");

    [GeneratedRegex(@"/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex BlockCommentRegex();

    [GeneratedRegex(@"//[^\n]*")]
    private static partial Regex LineCommentRegex();

    [GeneratedRegex(@"\s+")]
    private static partial Regex WhitespaceRegex();

    [GeneratedRegex(@"^[ \t]*#define[ \t]+(?<name>BNB_[A-Z0-9_]+)[ \t]+(?<value>-?\d+)[ \t]*$", RegexOptions.Multiline)]
    private static partial Regex DefineRegex();

    [GeneratedRegex(@"typedef\s+(?<type>u?int(8|16|32|64)_t)\s+(?<name>\w+)\s*;")]
    private static partial Regex ScalarTypedefRegex();

    [GeneratedRegex(@"typedef\s+struct\s+(?<name>\w+)\s+\k<name>\s*;")]
    private static partial Regex OpaqueRegex();

    [GeneratedRegex(@"typedef\s+(?<ret>[\w\s\*]+?)\s*\(\s*BNB_CALL\s*\*\s*(?<name>\w+)\s*\)\s*\((?<params>[^)]*)\)\s*;")]
    private static partial Regex FunctionTypedefRegex();

    [GeneratedRegex(@"typedef\s+struct\s+(?<name>\w+)\s*\{(?<body>.*?)\}\s*\k<name>\s*;", RegexOptions.Singleline)]
    private static partial Regex StructRegex();

    [GeneratedRegex(@"^(?<ret>[\w\s\*]+?)\s*\(\s*BNB_CALL\s*\*\s*(?<name>\w+)\s*\)\s*\((?<params>[^)]*)\)$")]
    private static partial Regex SlotRegex();

    [GeneratedRegex(@"^(?<type>[\w\s\*]+?)\s*\b(?<name>\w+)\s*(\[\s*(?<len>\w+)\s*\])?$")]
    private static partial Regex FieldRegex();

    [GeneratedRegex(@"^(?<type>[\w\s\*]+?)\s*\b(?<name>\w+)$")]
    private static partial Regex ParameterRegex();
}
