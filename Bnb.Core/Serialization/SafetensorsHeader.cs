using System.Buffers.Binary;
using System.Text.Json;

namespace Bnb.Serialization;

/// <summary>One tensor of a safetensors file: name, dtype, shape and its byte range inside the data section.</summary>
/// <param name="Name">The header key.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions (empty for a scalar).</param>
/// <param name="DataOffset">Start of the tensor's bytes, relative to the start of the data section.</param>
/// <param name="ByteLength">Number of bytes (= element count × element size).</param>
public sealed record SafetensorsTensorInfo(string Name, SafetensorsDType DType, long[] Shape, long DataOffset, long ByteLength)
{
    /// <summary>Product of the dimensions (1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);

    /// <summary>The shape as <c>[a, b]</c>, for messages.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// The parsed and validated header of a safetensors file.
/// </summary>
/// <remarks>
/// File layout:
/// <code>
///   bytes 0..8        u64 little-endian N = header length
///   bytes 8..8+N      UTF-8 JSON object, starts with '{', may be padded with trailing spaces
///                       { "__metadata__": {"k": "v", ...},            (optional, string → string)
///                         "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ... }
///   bytes 8+N..EOF    data section; every tensor's [begin, end) is relative to its start
/// </code>
/// Validation follows the reference implementation: offsets sorted by begin must tile the data section exactly
/// (first begins at 0, each begins where the previous ends, the last ends at the end of the file), and each range
/// is exactly element count × element size bytes.
/// </remarks>
public sealed class SafetensorsHeader
{
    /// <summary>The reference implementation refuses headers above 100 MB; so do we.</summary>
    public const long MaxHeaderLength = 100_000_000;

    /// <summary>The reserved header key for the string → string metadata map.</summary>
    public const string MetadataKey = "__metadata__";

    private readonly Dictionary<string, SafetensorsTensorInfo> _byName;

    private SafetensorsHeader(long headerLength, long dataLength, List<SafetensorsTensorInfo> tensors, List<KeyValuePair<string, string>> metadata, bool hasMetadata)
    {
        HeaderLength = headerLength;
        DataLength = dataLength;
        Tensors = tensors;
        MetadataEntries = metadata;
        HasMetadata = hasMetadata;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        Metadata = metadata.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
    }

    /// <summary>N, the JSON length in bytes (including padding).</summary>
    public long HeaderLength { get; }

    /// <summary>Offset of the data section from the start of the file (8 + N).</summary>
    public long DataStart => 8 + HeaderLength;

    /// <summary>Length of the data section.</summary>
    public long DataLength { get; }

    /// <summary>Tensors in data order (ascending offsets).</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors { get; }

    /// <summary>The <c>__metadata__</c> map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The <c>__metadata__</c> entries in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> MetadataEntries { get; }

    /// <summary>True when the header has a <c>__metadata__</c> entry (possibly empty).</summary>
    public bool HasMetadata { get; }

    /// <summary>The tensor named <paramref name="name"/>, if present.</summary>
    public bool TryGetTensor(string name, out SafetensorsTensorInfo info) => _byName.TryGetValue(name, out info!);

    /// <summary>
    /// Reads the 8-byte length, then parses and validates the header in <paramref name="file"/> (at least the first
    /// 8 + N bytes of the file) for a file of <paramref name="fileLength"/> bytes.
    /// </summary>
    /// <param name="file">The start of the file (the whole file is fine).</param>
    /// <param name="fileLength">Total file length in bytes.</param>
    /// <param name="source">File name for messages.</param>
    /// <exception cref="CheckpointFormatException">Anything malformed; the message names the tensor and the problem.</exception>
    public static SafetensorsHeader Parse(ReadOnlySpan<byte> file, long fileLength, string source)
    {
        if (fileLength < 8 || file.Length < 8)
        {
            throw Error($"file is {fileLength} bytes; a safetensors file starts with an 8-byte header length (truncated?)", null, source);
        }

        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(file);
        if (n > (ulong)(fileLength - 8))
        {
            throw Error($"header length {n} exceeds the {fileLength - 8} bytes after the length field (truncated or not a safetensors file)", null, source);
        }

        if (n > MaxHeaderLength)
        {
            throw Error($"header length {n} exceeds the {MaxHeaderLength}-byte limit", null, source);
        }

        if (n < 2)
        {
            throw Error($"header length {n} is too short for a JSON object", null, source);
        }

        if (file.Length < 8 + (long)n)
        {
            throw new ArgumentException($"only {file.Length} bytes given; the header needs {8 + (long)n}", nameof(file));
        }

        ReadOnlySpan<byte> json = file.Slice(8, (int)n);
        if (json[0] != (byte)'{')
        {
            throw Error($"header does not start with '{{' (first byte 0x{json[0]:x2})", null, source);
        }

        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            throw Error("header is not valid UTF-8", null, source);
        }

        long dataLength = fileLength - 8 - (long)n;
        var tensors = new List<SafetensorsTensorInfo>();
        var metadata = new List<KeyValuePair<string, string>>();
        bool hasMetadata = false;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw Error($"header is not valid JSON: {e.Message}", null, source, e);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw Error("header is not a JSON object", null, source);
            }

            foreach (JsonProperty p in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(p.Name))
                {
                    throw Error("appears twice in the header", p.Name, source);
                }

                if (p.Name == MetadataKey)
                {
                    hasMetadata = true;
                    ReadMetadata(p.Value, metadata, source);
                    continue;
                }

                tensors.Add(ReadTensor(p.Name, p.Value, dataLength, source));
            }
        }

        CheckTiling(tensors, dataLength, source);
        return new SafetensorsHeader((long)n, dataLength, tensors, metadata, hasMetadata);
    }

    private static void ReadMetadata(JsonElement value, List<KeyValuePair<string, string>> metadata, string source)
    {
        if (value.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Error($"__metadata__ must be an object of strings, not {value.ValueKind}", null, source);
        }

        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (JsonProperty m in value.EnumerateObject())
        {
            if (!keys.Add(m.Name))
            {
                throw Error($"__metadata__ key '{m.Name}' appears twice", null, source);
            }

            if (m.Value.ValueKind != JsonValueKind.String)
            {
                throw Error($"__metadata__ value of '{m.Name}' must be a string, not {m.Value.ValueKind}", null, source);
            }

            metadata.Add(new(m.Name, m.Value.GetString()!));
        }
    }

    private static SafetensorsTensorInfo ReadTensor(string name, JsonElement value, long dataLength, string source)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Error($"entry must be an object with dtype, shape and data_offsets, not {value.ValueKind}", name, source);
        }

        string? dtypeName = null;
        long[]? shape = null, offsets = null;
        foreach (JsonProperty f in value.EnumerateObject())
        {
            switch (f.Name)
            {
                case "dtype" when dtypeName is null:
                    dtypeName = f.Value.ValueKind == JsonValueKind.String ? f.Value.GetString() : throw Error($"dtype must be a string, not {f.Value.ValueKind}", name, source);
                    break;
                case "shape" when shape is null:
                    shape = ReadCounts(f.Value, "shape", name, source);
                    break;
                case "data_offsets" when offsets is null:
                    offsets = ReadCounts(f.Value, "data_offsets", name, source);
                    break;
                case "dtype" or "shape" or "data_offsets":
                    throw Error($"field '{f.Name}' appears twice", name, source);
                default:
                    throw Error($"unknown field '{f.Name}' (expected dtype, shape, data_offsets)", name, source);
            }
        }

        if (dtypeName is null || shape is null || offsets is null)
        {
            string missing = dtypeName is null ? "dtype" : shape is null ? "shape" : "data_offsets";
            throw Error($"missing field '{missing}'", name, source);
        }

        SafetensorsDType dtype = SafetensorsDTypes.TryParse(dtypeName)
            ?? throw Error($"unknown or unsupported dtype '{dtypeName}'", name, source);
        if (offsets.Length != 2)
        {
            throw Error($"data_offsets must hold exactly [begin, end], got {offsets.Length} values", name, source);
        }

        long begin = offsets[0], end = offsets[1];
        if (end < begin)
        {
            throw Error($"data_offsets [{begin}, {end}] end before they begin", name, source);
        }

        if (end > dataLength)
        {
            throw Error($"data_offsets [{begin}, {end}] reach past the {dataLength}-byte data section (file truncated?)", name, source);
        }

        long bytes;
        try
        {
            long elements = 1;
            foreach (long d in shape)
            {
                elements = checked(elements * d);
            }

            bytes = checked(elements * dtype.SizeOf());
        }
        catch (OverflowException)
        {
            throw Error($"shape [{string.Join(", ", shape)}] overflows a 64-bit byte count", name, source);
        }

        if (bytes != end - begin)
        {
            throw Error($"shape [{string.Join(", ", shape)}] of {dtype.Name()} ({dtype.SizeOf()} bytes each) needs {bytes} bytes but data_offsets [{begin}, {end}] span {end - begin}", name, source);
        }

        return new SafetensorsTensorInfo(name, dtype, shape, begin, bytes);
    }

    private static long[] ReadCounts(JsonElement value, string field, string name, string source)
    {
        if (value.ValueKind != JsonValueKind.Array)
        {
            throw Error($"{field} must be a list of non-negative integers, not {value.ValueKind}", name, source);
        }

        var result = new long[value.GetArrayLength()];
        int i = 0;
        foreach (JsonElement e in value.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v) || v < 0)
            {
                throw Error($"{field} must be a list of non-negative integers; element {i} is {e.GetRawText()}", name, source);
            }

            result[i++] = v;
        }

        return result;
    }

    /// <summary>Sorted by offset, the ranges must cover [0, dataLength) exactly once.</summary>
    private static void CheckTiling(List<SafetensorsTensorInfo> tensors, long dataLength, string source)
    {
        tensors.Sort((a, b) => a.DataOffset != b.DataOffset ? a.DataOffset.CompareTo(b.DataOffset) : a.ByteLength.CompareTo(b.ByteLength));
        long expected = 0;
        SafetensorsTensorInfo? previous = null;
        foreach (SafetensorsTensorInfo t in tensors)
        {
            long end = t.DataOffset + t.ByteLength;
            if (t.DataOffset < expected)
            {
                throw Error($"data_offsets [{t.DataOffset}, {end}] overlap tensor '{previous!.Name}' (which ends at {expected})", t.Name, source);
            }

            if (t.DataOffset > expected)
            {
                throw Error($"data_offsets [{t.DataOffset}, {end}] leave a gap of {t.DataOffset - expected} bytes after {(previous is null ? "the header" : $"tensor '{previous.Name}'")}; tensors must be contiguous", t.Name, source);
            }

            expected = end;
            previous = t;
        }

        if (expected != dataLength)
        {
            throw Error($"the data section has {dataLength} bytes but the tensors cover {expected} (trailing bytes belong to no tensor)", null, source);
        }
    }

    private static CheckpointFormatException Error(string message, string? tensor, string source, Exception? inner = null) =>
        new(message, tensor, source, inner);
}
