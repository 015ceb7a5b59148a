namespace Bnb.Models.Onnx;

/// <summary>
/// Protocol Buffers wire format, read forward over a byte range (enough for ONNX's ModelProto; no reflection, no
/// schema). Every read checks the remaining length, so a truncated or corrupted file gives an
/// <see cref="OnnxFormatException"/> naming the message being read and the byte offset, never an out-of-range read.
/// </summary>
/// <remarks>
/// Wire format: each field is a varint key <c>(field_number &lt;&lt; 3) | wire_type</c> followed by its value:
/// wire type 0 = varint, 1 = 8 bytes little-endian, 2 = varint length + that many bytes (strings, bytes, nested
/// messages, packed repeated scalars), 5 = 4 bytes little-endian. Types 3/4 (groups) are obsolete and rejected.
/// </remarks>
internal struct ProtoReader(ReadOnlyMemory<byte> data, long baseOffset, string what)
{
    private readonly ReadOnlyMemory<byte> _data = data;
    private int _pos;

    public readonly bool End => _pos >= _data.Length;

    /// <summary>Reads the next field key; false at the end of the message.</summary>
    public bool Next(out int field, out int wireType)
    {
        if (End)
        {
            field = 0;
            wireType = 0;
            return false;
        }

        ulong key = ReadVarint();
        field = (int)(key >> 3);
        wireType = (int)(key & 7);
        if (field <= 0 || (key >> 3) > int.MaxValue)
        {
            throw Error($"invalid field number {key >> 3}");
        }

        return true;
    }

    public ulong ReadVarint()
    {
        ulong result = 0;
        var span = _data.Span;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (_pos >= span.Length)
            {
                throw Error("truncated varint");
            }

            byte b = span[_pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }
        }

        throw Error("varint longer than 10 bytes");
    }

    public long ReadInt64() => (long)ReadVarint();

    public int ReadInt32()
    {
        long v = ReadInt64();
        return v is < int.MinValue or > int.MaxValue ? throw Error($"value {v} out of int32 range") : (int)v;
    }

    public float ReadFixedFloat()
    {
        var bytes = Take(4);
        return BitConverter.ToSingle(bytes.Span);
    }

    /// <summary>A length-delimited field's bytes (wire type 2).</summary>
    public ReadOnlyMemory<byte> ReadBytes()
    {
        ulong length = ReadVarint();
        if (length > (ulong)(_data.Length - _pos))
        {
            throw Error($"field length {length} runs past the end ({_data.Length - _pos} bytes left)");
        }

        return Take((int)length);
    }

    public string ReadString() => System.Text.Encoding.UTF8.GetString(ReadBytes().Span);

    /// <summary>A nested message's reader; offsets in its errors stay absolute.</summary>
    public ProtoReader ReadMessage(string nestedWhat)
    {
        var bytes = ReadBytes();
        return new ProtoReader(bytes, baseOffset + _pos - bytes.Length, nestedWhat);
    }

    /// <summary>Repeated int64: packed (wire type 2) or one varint per key (wire type 0).</summary>
    public void ReadInt64s(int wireType, List<long> into)
    {
        if (wireType == 0)
        {
            into.Add(ReadInt64());
            return;
        }

        Expect(wireType, 2, "repeated int64");
        var inner = ReadMessage(what);
        while (!inner.End)
        {
            into.Add(inner.ReadInt64());
        }
    }

    /// <summary>Repeated float: packed (wire type 2) or one fixed32 per key (wire type 5).</summary>
    public void ReadFloats(int wireType, List<float> into)
    {
        if (wireType == 5)
        {
            into.Add(ReadFixedFloat());
            return;
        }

        Expect(wireType, 2, "repeated float");
        var bytes = ReadBytes();
        if (bytes.Length % 4 != 0)
        {
            throw Error($"packed float field of {bytes.Length} bytes is not a multiple of 4");
        }

        for (int i = 0; i < bytes.Length; i += 4)
        {
            into.Add(BitConverter.ToSingle(bytes.Span.Slice(i, 4)));
        }
    }

    public void Expect(int wireType, int expected, string field)
    {
        if (wireType != expected)
        {
            throw Error($"{field} has wire type {wireType}, expected {expected}");
        }
    }

    /// <summary>Skips a field this reader does not use.</summary>
    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case 0: ReadVarint(); break;
            case 1: Take(8); break;
            case 2: ReadBytes(); break;
            case 5: Take(4); break;
            default: throw Error($"unsupported wire type {wireType}");
        }
    }

    private ReadOnlyMemory<byte> Take(int count)
    {
        if (count > _data.Length - _pos)
        {
            throw Error($"needs {count} bytes, {_data.Length - _pos} left");
        }

        var r = _data.Slice(_pos, count);
        _pos += count;
        return r;
    }

    public readonly OnnxFormatException Error(string message) => new($"{what} at byte {baseOffset + _pos}: {message}");
}

/// <summary>The ONNX file is not a valid ModelProto (truncated, corrupted) or uses something this reader does not support.</summary>
public sealed class OnnxFormatException : Exception
{
    public OnnxFormatException()
    {
    }

    public OnnxFormatException(string message)
        : base(message)
    {
    }

    public OnnxFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
