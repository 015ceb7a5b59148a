using System.Runtime.InteropServices;

namespace Bnb.Models.Onnx;

/// <summary>ONNX TensorProto.DataType values this reader knows by name.</summary>
public enum OnnxDataType
{
    Undefined = 0,
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    UInt16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    String = 8,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    UInt32 = 12,
    UInt64 = 13,
    BFloat16 = 16,
}

/// <summary>
/// A tensor stored in the model (an initializer or a Constant node's value). Raw data stays a slice of the file's
/// bytes (no copy) until <see cref="ToFloats"/> / <see cref="ToInt64s"/> is called.
/// </summary>
public sealed class OnnxTensor
{
    internal OnnxTensor(string name, OnnxDataType dataType, long[] dims, ReadOnlyMemory<byte> raw, float[]? floatData, long[]? int64Data, int[]? int32Data)
    {
        Name = name;
        DataType = dataType;
        Dims = dims;
        _raw = raw;
        _floats = floatData;
        _int64s = int64Data;
        _int32s = int32Data;
    }

    private readonly ReadOnlyMemory<byte> _raw;
    private readonly float[]? _floats;
    private readonly long[]? _int64s;
    private readonly int[]? _int32s;

    public string Name { get; }

    public OnnxDataType DataType { get; }

    public IReadOnlyList<long> Dims { get; }

    public long ElementCount => Dims.Aggregate(1L, (a, d) => a * d);

    public string ShapeText => "[" + string.Join(", ", Dims) + "]";

    /// <summary>The values as float32 (FLOAT tensors only).</summary>
    /// <exception cref="OnnxFormatException">Another data type, or a data size that does not match the shape.</exception>
    public float[] ToFloats()
    {
        if (DataType != OnnxDataType.Float)
        {
            throw new OnnxFormatException($"tensor '{Name}' is {DataType}, expected Float");
        }

        long n = ElementCount;
        if (_floats is { Length: > 0 } f)
        {
            return f.LongLength == n ? (float[])f.Clone() : throw SizeError(f.LongLength * 4, n * 4);
        }

        return _raw.Length == n * 4 ? MemoryMarshal.Cast<byte, float>(_raw.Span).ToArray() : throw SizeError(_raw.Length, n * 4);
    }

    /// <summary>The values as int64 (INT64 or INT32 tensors).</summary>
    public long[] ToInt64s()
    {
        long n = ElementCount;
        switch (DataType)
        {
            case OnnxDataType.Int64 when _int64s is { Length: > 0 } l:
                return l.LongLength == n ? (long[])l.Clone() : throw SizeError(l.LongLength * 8, n * 8);
            case OnnxDataType.Int64:
                return _raw.Length == n * 8 ? MemoryMarshal.Cast<byte, long>(_raw.Span).ToArray() : throw SizeError(_raw.Length, n * 8);
            case OnnxDataType.Int32 when _int32s is { Length: > 0 } i:
                return i.LongLength == n ? [.. i.Select(v => (long)v)] : throw SizeError(i.LongLength * 4, n * 4);
            case OnnxDataType.Int32:
                return _raw.Length == n * 4 ? [.. MemoryMarshal.Cast<byte, int>(_raw.Span).ToArray().Select(v => (long)v)] : throw SizeError(_raw.Length, n * 4);
            default:
                throw new OnnxFormatException($"tensor '{Name}' is {DataType}, expected an integer type");
        }
    }

    internal OnnxTensor WithName(string name) => new(name, DataType, [.. Dims], _raw, _floats, _int64s, _int32s);

    private OnnxFormatException SizeError(long have, long want) =>
        new($"tensor '{Name}' {ShapeText} {DataType} holds {have} bytes of data, its shape needs {want}");

    internal static OnnxTensor Read(ProtoReader r)
    {
        string name = "";
        int dataType = 0;
        var dims = new List<long>();
        var floats = new List<float>();
        var int64s = new List<long>();
        var int32s = new List<long>();
        ReadOnlyMemory<byte> raw = default;
        bool external = false;
        while (r.Next(out int field, out int wt))
        {
            switch (field)
            {
                case 1: r.ReadInt64s(wt, dims); break;
                case 2: r.Expect(wt, 0, "TensorProto.data_type"); dataType = r.ReadInt32(); break;
                case 4: r.ReadFloats(wt, floats); break;
                case 5: r.ReadInt64s(wt, int32s); break;
                case 7: r.ReadInt64s(wt, int64s); break;
                case 8: r.Expect(wt, 2, "TensorProto.name"); name = r.ReadString(); break;
                case 9: r.Expect(wt, 2, "TensorProto.raw_data"); raw = r.ReadBytes(); break;
                case 14: r.Expect(wt, 0, "TensorProto.data_location"); external = r.ReadInt64() == 1; break;
                default: r.Skip(wt); break;
            }
        }

        if (external)
        {
            throw new OnnxFormatException($"tensor '{name}' keeps its data in an external file, which this reader does not support (save the model with all tensors inside the .onnx file)");
        }

        if (dims.Any(d => d < 0))
        {
            throw new OnnxFormatException($"tensor '{name}' has a negative dimension [{string.Join(", ", dims)}]");
        }

        return new OnnxTensor(name, (OnnxDataType)dataType, [.. dims], raw, floats.Count > 0 ? [.. floats] : null, int64s.Count > 0 ? [.. int64s] : null,
                              int32s.Count > 0 ? [.. int32s.Select(v => (int)v)] : null);
    }
}

/// <summary>One node attribute: the scalar, list or tensor members that are set.</summary>
public sealed record OnnxAttribute(string Name, long? Int, float? Float, string? String, IReadOnlyList<long> Ints, IReadOnlyList<float> Floats, OnnxTensor? Tensor)
{
    internal static OnnxAttribute Read(ProtoReader r)
    {
        string name = "";
        long? i = null;
        float? f = null;
        string? s = null;
        OnnxTensor? t = null;
        var ints = new List<long>();
        var floats = new List<float>();
        while (r.Next(out int field, out int wt))
        {
            switch (field)
            {
                case 1: r.Expect(wt, 2, "AttributeProto.name"); name = r.ReadString(); break;
                case 2: r.Expect(wt, 5, "AttributeProto.f"); f = r.ReadFixedFloat(); break;
                case 3: r.Expect(wt, 0, "AttributeProto.i"); i = r.ReadInt64(); break;
                case 4: r.Expect(wt, 2, "AttributeProto.s"); s = r.ReadString(); break;
                case 5: r.Expect(wt, 2, "AttributeProto.t"); t = OnnxTensor.Read(r.ReadMessage("AttributeProto.t")); break;
                case 7: r.ReadFloats(wt, floats); break;
                case 8: r.ReadInt64s(wt, ints); break;
                default: r.Skip(wt); break;
            }
        }

        return new OnnxAttribute(name, i, f, s, ints, floats, t);
    }
}

/// <summary>One graph node: operator, input and output value names, attributes.</summary>
public sealed record OnnxNode(string Name, string OpType, string Domain, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, IReadOnlyList<OnnxAttribute> Attributes)
{
    public OnnxAttribute? Attribute(string name) => Attributes.FirstOrDefault(a => a.Name == name);

    internal static OnnxNode Read(ProtoReader r)
    {
        string name = "", op = "", domain = "";
        var inputs = new List<string>();
        var outputs = new List<string>();
        var attributes = new List<OnnxAttribute>();
        while (r.Next(out int field, out int wt))
        {
            switch (field)
            {
                case 1: r.Expect(wt, 2, "NodeProto.input"); inputs.Add(r.ReadString()); break;
                case 2: r.Expect(wt, 2, "NodeProto.output"); outputs.Add(r.ReadString()); break;
                case 3: r.Expect(wt, 2, "NodeProto.name"); name = r.ReadString(); break;
                case 4: r.Expect(wt, 2, "NodeProto.op_type"); op = r.ReadString(); break;
                case 5: r.Expect(wt, 2, "NodeProto.attribute"); attributes.Add(OnnxAttribute.Read(r.ReadMessage("AttributeProto"))); break;
                case 7: r.Expect(wt, 2, "NodeProto.domain"); domain = r.ReadString(); break;
                default: r.Skip(wt); break;
            }
        }

        if (op.Length == 0)
        {
            throw new OnnxFormatException($"node '{name}' has no op_type");
        }

        return new OnnxNode(name, op, domain, inputs, outputs, attributes);
    }
}

/// <summary>
/// An ONNX model read from its protobuf bytes: the main graph's nodes (in file order, which ONNX requires to be
/// topological), initializers, inputs and outputs. Subgraphs, sparse initializers and external data are not read.
/// </summary>
public sealed class OnnxModel
{
    private OnnxModel(long irVersion, string producer, IReadOnlyList<OnnxNode> nodes, IReadOnlyDictionary<string, OnnxTensor> initializers,
                      IReadOnlyList<string> inputs, IReadOnlyList<string> outputs, IReadOnlyList<(string Domain, long Version)> opsets)
    {
        IrVersion = irVersion;
        Producer = producer;
        Nodes = nodes;
        Initializers = initializers;
        Inputs = inputs;
        Outputs = outputs;
        Opsets = opsets;
    }

    public long IrVersion { get; }

    public string Producer { get; }

    public IReadOnlyList<OnnxNode> Nodes { get; }

    /// <summary>Initializers by name (Constant nodes' tensors are added under their output name).</summary>
    public IReadOnlyDictionary<string, OnnxTensor> Initializers { get; }

    /// <summary>Graph input names that are not initializers.</summary>
    public IReadOnlyList<string> Inputs { get; }

    public IReadOnlyList<string> Outputs { get; }

    public IReadOnlyList<(string Domain, long Version)> Opsets { get; }

    /// <summary>Reads an .onnx file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="OnnxFormatException">Not a readable ONNX model; the message names what and where.</exception>
    public static OnnxModel Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"ONNX model not found: {path}", path);
        }

        try
        {
            return Parse(File.ReadAllBytes(path));
        }
        catch (OnnxFormatException e)
        {
            throw new OnnxFormatException($"{path}: not a valid ONNX model ({e.Message})", e);
        }
    }

    /// <summary>Parses ModelProto bytes; initializer data stays a view of <paramref name="bytes"/>.</summary>
    public static OnnxModel Parse(ReadOnlyMemory<byte> bytes)
    {
        var r = new ProtoReader(bytes, 0, "ModelProto");
        long ir = 0;
        string producer = "";
        ProtoReader? graph = null;
        var opsets = new List<(string, long)>();
        while (r.Next(out int field, out int wt))
        {
            switch (field)
            {
                case 1: r.Expect(wt, 0, "ModelProto.ir_version"); ir = r.ReadInt64(); break;
                case 2: r.Expect(wt, 2, "ModelProto.producer_name"); producer = r.ReadString(); break;
                case 7: r.Expect(wt, 2, "ModelProto.graph"); graph = r.ReadMessage("GraphProto"); break;
                case 8:
                    r.Expect(wt, 2, "ModelProto.opset_import");
                    var o = r.ReadMessage("OperatorSetIdProto");
                    string domain = "";
                    long version = 0;
                    while (o.Next(out int f2, out int w2))
                    {
                        if (f2 == 1 && w2 == 2) domain = o.ReadString();
                        else if (f2 == 2 && w2 == 0) version = o.ReadInt64();
                        else o.Skip(w2);
                    }

                    opsets.Add((domain, version));
                    break;
                default: r.Skip(wt); break;
            }
        }

        if (graph is not { } g)
        {
            throw new OnnxFormatException("ModelProto has no graph (not an ONNX model, or an empty file)");
        }

        if (ir <= 0)
        {
            throw new OnnxFormatException("ModelProto has no ir_version (not an ONNX model?)");
        }

        var nodes = new List<OnnxNode>();
        var initializers = new Dictionary<string, OnnxTensor>(StringComparer.Ordinal);
        var inputs = new List<string>();
        var outputs = new List<string>();
        while (g.Next(out int field, out int wt))
        {
            switch (field)
            {
                case 1: g.Expect(wt, 2, "GraphProto.node"); nodes.Add(OnnxNode.Read(g.ReadMessage("NodeProto"))); break;
                case 5:
                    g.Expect(wt, 2, "GraphProto.initializer");
                    var t = OnnxTensor.Read(g.ReadMessage("TensorProto"));
                    initializers[t.Name] = t;
                    break;
                case 11: g.Expect(wt, 2, "GraphProto.input"); inputs.Add(ValueInfoName(g.ReadMessage("ValueInfoProto"))); break;
                case 12: g.Expect(wt, 2, "GraphProto.output"); outputs.Add(ValueInfoName(g.ReadMessage("ValueInfoProto"))); break;
                default: g.Skip(wt); break;
            }
        }

        // Constant nodes are initializers in all but name: index their tensors under the output name.
        foreach (var n in nodes)
        {
            if (n.OpType == "Constant" && n.Outputs.Count == 1 && n.Attribute("value")?.Tensor is { } value)
            {
                initializers[n.Outputs[0]] = value.WithName(n.Outputs[0]);
            }
        }

        return new OnnxModel(ir, producer, nodes, initializers, [.. inputs.Where(i => !initializers.ContainsKey(i))], outputs, opsets);
    }

    private static string ValueInfoName(ProtoReader r)
    {
        string name = "";
        while (r.Next(out int field, out int wt))
        {
            if (field == 1 && wt == 2) name = r.ReadString();
            else r.Skip(wt);
        }

        return name;
    }
}
