namespace Bnb.InteropGen;

/// <summary>An integer <c>#define BNB_... value</c>.</summary>
public sealed record HeaderConstant(string Name, long Value);

/// <summary>A C type as written in the header: base name, pointer depth and const-ness of the pointee.</summary>
public sealed record CType(string BaseName, int PointerDepth)
{
    public override string ToString() => BaseName + new string('*', PointerDepth);
}

/// <summary>A struct field; <see cref="ArrayLength"/> is set for fixed arrays (<c>int64_t shape[4]</c>).</summary>
public sealed record HeaderField(string Name, CType Type, int? ArrayLength);

public sealed record HeaderParameter(string Name, CType Type);

/// <summary>A function-pointer signature (a table slot or a <c>typedef ... (BNB_CALL* name)(...)</c>).</summary>
public sealed record FunctionSignature(string Name, CType ReturnType, IReadOnlyList<HeaderParameter> Parameters);

public sealed record HeaderStruct(string Name, IReadOnlyList<HeaderField> Fields, IReadOnlyList<FunctionSignature> Slots);

/// <summary>Everything the generator needs from bnb.h, in header order.</summary>
public sealed record HeaderModel(
    IReadOnlyList<HeaderConstant> Constants,
    IReadOnlyList<HeaderStruct> Structs,
    IReadOnlyList<string> OpaqueTypes,
    IReadOnlyList<FunctionSignature> FunctionTypedefs,
    IReadOnlyDictionary<string, string> ScalarTypedefs);
