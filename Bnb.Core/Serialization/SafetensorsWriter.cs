using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Bnb.Memory;

namespace Bnb.Serialization;

/// <summary>What a tensor of a file being written will hold: name, dtype and shape.</summary>
public sealed record SafetensorsTensorSpec(string Name, SafetensorsDType DType, long[] Shape)
{
    /// <summary>Element count × element size.</summary>
    public long ByteLength => checked(Shape.Aggregate(1L, (a, d) => checked(a * d)) * DType.SizeOf());
}

/// <summary>A tensor with its bytes, for <see cref="SafetensorsWriter.Save"/>.</summary>
public sealed record SafetensorsEntry(string Name, SafetensorsDType DType, long[] Shape, ReadOnlyMemory<byte> Data)
{
    /// <summary>An entry holding a copy of the bytes of <paramref name="values"/> with the given shape (default 1-D).</summary>
    public static SafetensorsEntry Of<T>(string name, ReadOnlySpan<T> values, params long[] shape)
        where T : unmanaged =>
        new(name, SafetensorsFile.ElementType<T>(), shape.Length == 0 ? [values.Length] : shape, MemoryMarshal.AsBytes(values).ToArray());
}

/// <summary>
/// Writes a safetensors file. The header (and so every tensor's offset) is fixed when the writer is created; tensor
/// bytes are then written in any order from spans or <see cref="TensorRef"/>s, and <see cref="Commit"/> moves the
/// finished file into place. Everything goes to a temporary file in the target directory first, so an exception or
/// a missing <see cref="Commit"/> never damages an existing file at the target path.
/// </summary>
/// <remarks>
/// The header is compact JSON (<c>{"__metadata__":{...},"name":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},...}</c>,
/// keys in data order, like the reference writer) padded with spaces so the data section starts at a multiple of 8.
/// Tensors are laid out in the order given; pass <c>alignTensors: true</c> to sort them as the reference writer does
/// (by dtype in safetensors' enum order, descending — which orders element sizes largest first — then by name), so
/// every tensor starts at a multiple of its element size and the file matches Python's <c>save_file</c> byte for byte.
/// </remarks>
public sealed class SafetensorsWriter : IDisposable
{
    private readonly string _path;
    private readonly string _tempPath;
    private readonly FileStream _stream;
    private readonly Dictionary<string, (SafetensorsTensorSpec Spec, long Offset)> _layout = new(StringComparer.Ordinal);
    private readonly HashSet<string> _written = new(StringComparer.Ordinal);
    private readonly long _dataStart;
    private bool _done;

    private SafetensorsWriter(string path, IReadOnlyList<SafetensorsTensorSpec> tensors, IReadOnlyList<KeyValuePair<string, string>>? metadata)
    {
        _path = Path.GetFullPath(path);
        byte[] header = BuildHeader(tensors, metadata, out var offsets);
        for (int i = 0; i < tensors.Count; i++)
        {
            _layout[tensors[i].Name] = (tensors[i], offsets[i]);
        }

        _dataStart = 8 + header.Length;
        long total = _dataStart + (tensors.Count == 0 ? 0 : offsets[^1] + tensors[^1].ByteLength);
        string directory = Path.GetDirectoryName(_path) ?? ".";
        _tempPath = Path.Combine(directory, "." + Path.GetFileName(_path) + "." + Guid.NewGuid().ToString("N")[..12] + ".tmp");
        _stream = new FileStream(_tempPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        try
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            _stream.Write(length);
            _stream.Write(header);
            _stream.SetLength(total);
        }
        catch
        {
            Abort();
            throw;
        }
    }

    /// <summary>The target path.</summary>
    public string TargetPath => _path;

    /// <summary>Starts writing <paramref name="path"/> with the given tensors (their bytes follow through <c>Write</c>).</summary>
    /// <param name="path">Target file; replaced only by <see cref="Commit"/>.</param>
    /// <param name="tensors">Names (unique, not <c>__metadata__</c>), dtypes and shapes.</param>
    /// <param name="metadata">Optional <c>__metadata__</c> entries, written in the given order.</param>
    /// <param name="alignTensors">Sort tensors like the reference writer (see remarks on the class).</param>
    public static SafetensorsWriter Create(string path, IEnumerable<SafetensorsTensorSpec> tensors, IEnumerable<KeyValuePair<string, string>>? metadata = null, bool alignTensors = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        List<SafetensorsTensorSpec> list = [.. tensors];
        if (alignTensors)
        {
            list = [.. list.OrderByDescending(t => t.DType).ThenBy(t => t.Name, StringComparer.Ordinal)];
        }

        return new SafetensorsWriter(path, list, metadata?.ToList());
    }

    /// <summary>Writes a complete file from in-memory entries (temp file + rename).</summary>
    public static void Save(string path, IEnumerable<SafetensorsEntry> entries, IEnumerable<KeyValuePair<string, string>>? metadata = null, bool alignTensors = false)
    {
        ArgumentNullException.ThrowIfNull(entries);
        List<SafetensorsEntry> list = [.. entries];
        using var writer = Create(path, list.Select(e => new SafetensorsTensorSpec(e.Name, e.DType, e.Shape)), metadata, alignTensors);
        foreach (var e in list)
        {
            writer.Write(e.Name, e.Data.Span);
        }

        writer.Commit();
    }

    /// <summary>Writes the bytes of tensor <paramref name="name"/>; their length must match its dtype and shape.</summary>
    public void Write(string name, ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(_done, this);
        if (!_layout.TryGetValue(name, out var entry))
        {
            throw new ArgumentException($"tensor '{name}' was not declared when the writer was created", nameof(name));
        }

        if (data.Length != entry.Spec.ByteLength)
        {
            throw new ArgumentException($"tensor '{name}' is {entry.Spec.DType.Name()} [{string.Join(", ", entry.Spec.Shape)}] = {entry.Spec.ByteLength} bytes, but {data.Length} bytes were given", nameof(data));
        }

        if (!_written.Add(name))
        {
            throw new InvalidOperationException($"tensor '{name}' was already written");
        }

        _stream.Position = _dataStart + entry.Offset;
        _stream.Write(data);
    }

    /// <summary>Writes tensor <paramref name="name"/> from typed values (<typeparamref name="T"/> must match its dtype).</summary>
    public void Write<T>(string name, ReadOnlySpan<T> values)
        where T : unmanaged
    {
        if (_layout.TryGetValue(name, out var entry) && entry.Spec.DType != SafetensorsFile.ElementType<T>())
        {
            throw new ArgumentException($"tensor '{name}' is declared {entry.Spec.DType.Name()}, but {typeof(T).Name} values were given", nameof(values));
        }

        Write(name, MemoryMarshal.AsBytes(values));
    }

    /// <summary>Writes tensor <paramref name="name"/> from a contiguous host <see cref="TensorRef"/> of the declared dtype and shape.</summary>
    public void Write(string name, TensorRef tensor)
    {
        if (!tensor.IsPresent || tensor.Device is not null || !tensor.IsContiguous)
        {
            throw new ArgumentException($"tensor '{name}': only present, contiguous host tensors can be written ({tensor.ToString()})", nameof(tensor));
        }

        if (_layout.TryGetValue(name, out var entry))
        {
            if (SafetensorsDTypes.FromDType(tensor.DType) != entry.Spec.DType || !tensor.Shape.ToArray().SequenceEqual(entry.Spec.Shape))
            {
                throw new ArgumentException($"tensor '{name}' is declared {entry.Spec.DType.Name()} [{string.Join(", ", entry.Spec.Shape)}], but {tensor.ToString()} was given", nameof(tensor));
            }
        }

        long bytes = tensor.ElementCount * tensor.DType.SizeOf();
        if (bytes > int.MaxValue)
        {
            throw new ArgumentException($"tensor '{name}' has {bytes} bytes; write it in one span of at most 2 GiB", nameof(tensor));
        }

        Write(name, MemoryMarshal.CreateReadOnlySpan(ref tensor.GetPinnableReference(), (int)bytes));
    }

    /// <summary>Checks that every tensor was written, flushes to disk and atomically replaces the target file.</summary>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_done, this);
        string? missing = _layout.Keys.FirstOrDefault(k => !_written.Contains(k));
        if (missing is not null)
        {
            throw new InvalidOperationException($"tensor '{missing}' was declared but never written; the file was not committed");
        }

        _stream.Flush(flushToDisk: true);
        _stream.Dispose();
        File.Move(_tempPath, _path, overwrite: true);
        _done = true;
    }

    /// <summary>Discards the temporary file unless <see cref="Commit"/> succeeded.</summary>
    public void Dispose()
    {
        if (!_done)
        {
            Abort();
        }
    }

    /// <summary>The header bytes (JSON + space padding) and each tensor's data offset.</summary>
    internal static byte[] BuildHeader(IReadOnlyList<SafetensorsTensorSpec> tensors, IReadOnlyList<KeyValuePair<string, string>>? metadata, out long[] offsets)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var sb = new StringBuilder("{");
        if (metadata is not null)
        {
            var keys = new HashSet<string>(StringComparer.Ordinal);
            sb.Append("\"__metadata__\":{");
            for (int i = 0; i < metadata.Count; i++)
            {
                ArgumentNullException.ThrowIfNull(metadata[i].Key, "metadata key");
                ArgumentNullException.ThrowIfNull(metadata[i].Value, $"metadata value of '{metadata[i].Key}'");
                if (!keys.Add(metadata[i].Key))
                {
                    throw new ArgumentException($"metadata key '{metadata[i].Key}' appears twice", nameof(metadata));
                }

                sb.Append(i == 0 ? "" : ",");
                AppendString(sb, metadata[i].Key).Append(':');
                AppendString(sb, metadata[i].Value);
            }

            sb.Append('}');
        }

        offsets = new long[tensors.Count];
        long offset = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            SafetensorsTensorSpec t = tensors[i] ?? throw new ArgumentException($"tensor spec {i} is null", nameof(tensors));
            if (string.IsNullOrEmpty(t.Name) || t.Name == SafetensorsHeader.MetadataKey)
            {
                throw new ArgumentException($"'{t.Name}' is not a valid tensor name", nameof(tensors));
            }

            if (!names.Add(t.Name))
            {
                throw new ArgumentException($"tensor '{t.Name}' appears twice", nameof(tensors));
            }

            if (t.Shape is null || t.Shape.Any(d => d < 0))
            {
                throw new ArgumentException($"tensor '{t.Name}' has an invalid shape", nameof(tensors));
            }

            _ = t.DType.Name();
            offsets[i] = offset;
            long end = checked(offset + t.ByteLength);
            sb.Append(sb.Length == 1 ? "" : ",");
            AppendString(sb, t.Name);
            sb.Append(":{\"dtype\":\"").Append(t.DType.Name()).Append("\",\"shape\":[");
            sb.AppendJoin(',', t.Shape.Select(d => d.ToString(CultureInfo.InvariantCulture)));
            sb.Append("],\"data_offsets\":[").Append(offset.ToString(CultureInfo.InvariantCulture)).Append(',').Append(end.ToString(CultureInfo.InvariantCulture)).Append("]}");
            offset = end;
        }

        sb.Append('}');
        int length = Encoding.UTF8.GetByteCount(sb.ToString());
        sb.Append(' ', (8 - (length % 8)) % 8);
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>JSON string as serde_json writes it: escapes quote, backslash and control characters only.</summary>
    private static StringBuilder AppendString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case < ' ': sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture)); break;
                default: sb.Append(c); break;
            }
        }

        return sb.Append('"');
    }

    private void Abort()
    {
        _done = true;
        _stream.Dispose();
        try
        {
            File.Delete(_tempPath);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp file never replaces the target.
        }
    }
}
