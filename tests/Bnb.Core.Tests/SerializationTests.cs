using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Bnb.Memory;
using Bnb.Serialization;
using CsCheck;

namespace Bnb.Tests;

/// <summary>safetensors reader/writer: round trips, header validation, atomic writes and fuzzed headers.</summary>
public sealed class SerializationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bnb-st-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    private static SafetensorsEntry[] SampleEntries() =>
    [
        SafetensorsEntry.Of<float>("layer.weight", [1f, -2f, 3.5f, 4f, 5f, -6f], 2, 3),
        SafetensorsEntry.Of<byte>("layer.codes", [1, 2, 3, 4, 5], 5),
        SafetensorsEntry.Of<BFloat16>("scalar", [(BFloat16)0.75f]) with { Shape = [] },
        SafetensorsEntry.Of<float>("empty", [], 0, 4),
        SafetensorsEntry.Of<long>("ids", [long.MaxValue, -1, 7], 3),
        SafetensorsEntry.Of<sbyte>("cb", [-127, 0, 127, 5], 2, 2),
        SafetensorsEntry.Of<Half>("h", [(Half)1.5, (Half)(-2)], 2),
    ];

    private static readonly KeyValuePair<string, string>[] SampleMetadata = [new("format", "pt"), new("note", "quote \" backslash \\ newline \n tab \t ünïcode")];

    private byte[] SampleFile()
    {
        string path = PathOf("sample.safetensors");
        SafetensorsWriter.Save(path, SampleEntries(), SampleMetadata);
        return File.ReadAllBytes(path);
    }

    [Fact]
    public void Written_file_reads_back_every_tensor_and_the_metadata()
    {
        string path = PathOf("a.safetensors");
        SafetensorsWriter.Save(path, SampleEntries(), SampleMetadata);
        using var f = SafetensorsFile.Open(path);
        Assert.Equal(0, f.Header.DataStart % 8);
        Assert.Equal(SampleEntries().Select(e => e.Name), f.Tensors.Select(t => t.Name));
        foreach (var e in SampleEntries())
        {
            var info = f.GetInfo(e.Name);
            Assert.Equal(e.DType, info.DType);
            Assert.Equal(e.Shape, info.Shape);
            Assert.Equal(e.Data.ToArray(), f.GetBytes(e.Name).ToArray());
        }

        Assert.Equal([1f, -2f, 3.5f, 4f, 5f, -6f], f.ToArray<float>("layer.weight"));
        Assert.Equal(0.75f, (float)f.GetSpan<BFloat16>("scalar")[0]);
        Assert.Equal(SampleMetadata, f.Header.MetadataEntries);
        Assert.Equal("pt", f.Metadata["format"]);
    }

    [Fact]
    public void Rewriting_a_file_from_its_reader_is_byte_identical()
    {
        byte[] original = SampleFile();
        using var f = SafetensorsFile.FromBytes(original);
        string copy = PathOf("copy.safetensors");
        using (var w = SafetensorsWriter.Create(copy, f.Tensors.Select(t => new SafetensorsTensorSpec(t.Name, t.DType, t.Shape)), f.Header.HasMetadata ? f.Header.MetadataEntries : null))
        {
            foreach (var t in f.Tensors)
            {
                w.Write(t.Name, f.GetBytes(t.Name));
            }

            w.Commit();
        }

        Assert.Equal(original, File.ReadAllBytes(copy));
    }

    [Fact]
    public void A_file_in_the_reference_writers_layout_parses_and_rewrites_identically()
    {
        // What Python's safetensors.torch.save_file({"b": zeros(2, dtype=uint8), "a": [1., 2.]}) lays out: compact JSON,
        // tensors sorted by dtype (largest first), header padded with spaces to a multiple of 8.
        string json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]}}";
        json += new string(' ', (8 - (json.Length % 8)) % 8);
        byte[] file = [.. LengthPrefix(json.Length), .. Encoding.ASCII.GetBytes(json), .. MemoryMarshal.AsBytes<float>([1f, 2f]), 0, 0];
        using var f = SafetensorsFile.FromBytes(file);
        Assert.Equal([1f, 2f], f.ToArray<float>("a"));
        Assert.False(f.Header.HasMetadata);
        string copy = PathOf("ref.safetensors");
        SafetensorsWriter.Save(copy, f.Tensors.Select(t => new SafetensorsEntry(t.Name, t.DType, t.Shape, f.GetBytes(t.Name).ToArray())), alignTensors: true);
        Assert.Equal(file, File.ReadAllBytes(copy));
    }

    [Fact]
    public unsafe void Reads_are_zero_copy_views_of_the_mapping()
    {
        string path = PathOf("z.safetensors");
        SafetensorsWriter.Save(path, SampleEntries());
        using var f = SafetensorsFile.Open(path);
        TensorRef t = f.GetTensorRef("layer.weight");
        Assert.True(t.IsReadOnly);
        Assert.Equal(DType.F32, t.DType);
        Assert.Equal(TensorShape.Create(2, 3), t.Shape);
        ReadOnlySpan<float> span = f.GetSpan<float>("layer.weight");
        ReadOnlySpan<byte> bytes = f.GetBytes("layer.weight");
        Assert.True(Unsafe.AreSame(ref Unsafe.As<float, byte>(ref MemoryMarshal.GetReference(span)), ref MemoryMarshal.GetReference(bytes)));
        Assert.True(Unsafe.AreSame(ref t.GetPinnableReference(), ref MemoryMarshal.GetReference(bytes)));
    }

    [Fact]
    public void Accessors_name_the_tensor_on_missing_keys_and_wrong_types()
    {
        using var f = SafetensorsFile.FromBytes(SampleFile(), "s.safetensors");
        var missing = Assert.Throws<CheckpointFormatException>(() => f.GetInfo("nope"));
        Assert.Equal("nope", missing.TensorName);
        Assert.Contains("'nope'", missing.Message, StringComparison.Ordinal);
        Assert.Contains("s.safetensors", missing.Message, StringComparison.Ordinal);
        var wrong = Assert.Throws<CheckpointFormatException>(() => f.GetSpan<Half>("layer.weight"));
        Assert.Contains("F32", wrong.Message, StringComparison.Ordinal);
        Assert.Equal("layer.weight", wrong.TensorName);
        f.Dispose();
        Assert.Throws<ObjectDisposedException>(() => f.GetBytes("ids").Length);
    }

    public static TheoryData<string, string, string?> BadHeaders() => new()
    {
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", "needs 8 bytes", "a" },
        { "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", "unknown or unsupported dtype 'F33'", "a" },
        { "{\"a\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}}", "unsupported dtype 'F4'", "a" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "non-negative integers", "a" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", "non-negative integers", "a" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", "exactly [begin, end]", "a" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", "end before they begin", "a" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "appears twice", "a" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", "missing field 'data_offsets'", "a" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", "unknown field 'x'", "a" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}", "overlap tensor 'a'", "b" },
        { "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}", "gap of 4 bytes", "a" },
        { "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", "trailing bytes belong to no tensor", null },
        { "{\"a\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]}}", "reach past the 8-byte data section", "a" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", "overflows", "a" },
        { "{\"__metadata__\":{\"k\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "must be a string", null },
        { "{\"__metadata__\":[],\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "must be an object", null },
        { "{\"a\":[1,2]}", "must be an object with dtype", "a" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", "not valid JSON", null },
        { "[1, 2]", "does not start with '{'", null },
        { "{} trailing", "not valid JSON", null },
    };

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public void Malformed_headers_are_rejected_with_the_tensor_and_the_problem(string json, string expected, string? tensor)
    {
        // Every header here sits in front of 8 data bytes.
        byte[] file = [.. LengthPrefix(Encoding.UTF8.GetByteCount(json)), .. Encoding.UTF8.GetBytes(json), 1, 2, 3, 4, 5, 6, 7, 8];
        string path = PathOf("bad.safetensors");
        File.WriteAllBytes(path, file);
        var e = Assert.Throws<CheckpointFormatException>(() => SafetensorsFile.Open(path));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Equal(tensor, e.TensorName);
        Assert.StartsWith(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_and_tiny_files_are_rejected()
    {
        byte[] file = SampleFile();
        string path = PathOf("t.safetensors");
        File.WriteAllBytes(path, file[..^3]);
        var cut = Assert.Throws<CheckpointFormatException>(() => SafetensorsFile.Open(path));
        Assert.Contains("truncated", cut.Message, StringComparison.Ordinal);
        Assert.NotNull(cut.TensorName);

        File.WriteAllBytes(path, file[..20]);
        Assert.Contains("exceeds", Assert.Throws<CheckpointFormatException>(() => SafetensorsFile.Open(path)).Message, StringComparison.Ordinal);

        File.WriteAllBytes(path, []);
        Assert.Contains("0 bytes", Assert.Throws<CheckpointFormatException>(() => SafetensorsFile.Open(path)).Message, StringComparison.Ordinal);

        File.WriteAllBytes(path, [.. LengthPrefix(200_000_000), .. new byte[16]]);
        Assert.Contains("exceeds", Assert.Throws<CheckpointFormatException>(() => SafetensorsFile.Open(path)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_failed_or_abandoned_write_leaves_the_existing_file_untouched()
    {
        string path = PathOf("keep.safetensors");
        byte[] before = SampleFile();
        File.WriteAllBytes(path, before);

        // Abandoned: never committed.
        using (var w = SafetensorsWriter.Create(path, [new SafetensorsTensorSpec("x", SafetensorsDType.F32, [2])]))
        {
            w.Write<float>("x", [1f, 2f]);
        }

        // Failed: wrong byte count, then a commit with a tensor missing.
        using (var w = SafetensorsWriter.Create(path, [new SafetensorsTensorSpec("x", SafetensorsDType.F32, [2]), new SafetensorsTensorSpec("y", SafetensorsDType.U8, [1])]))
        {
            Assert.Throws<ArgumentException>(() => w.Write<float>("x", [1f]));
            Assert.Throws<ArgumentException>(() => w.Write<int>("x", [1, 2]));
            w.Write<float>("x", [1f, 2f]);
            Assert.Throws<InvalidOperationException>(() => w.Write<float>("x", [1f, 2f]));
            Assert.Contains("'y'", Assert.Throws<InvalidOperationException>(w.Commit).Message, StringComparison.Ordinal);
        }

        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Save(path, [SafetensorsEntry.Of<float>("x", [1f]), SafetensorsEntry.Of<float>("x", [1f])]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Save(path, [SafetensorsEntry.Of<float>("__metadata__", [1f])]));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(["keep.safetensors", "sample.safetensors"], Directory.GetFiles(_dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Committing_replaces_a_file_that_a_reader_still_maps_except_on_windows()
    {
        string path = PathOf("live.safetensors");
        SafetensorsWriter.Save(path, [SafetensorsEntry.Of<float>("x", [1f, 2f])]);
        using var old = SafetensorsFile.Open(path);
        if (OperatingSystem.IsWindows())
        {
            // Windows cannot replace a mapped file: the commit fails, and the old file and the reader stay intact.
            Assert.ThrowsAny<Exception>(() => SafetensorsWriter.Save(path, [SafetensorsEntry.Of<float>("x", [3f, 4f, 5f])]));
            Assert.Equal([1f, 2f], old.ToArray<float>("x"));
            Assert.Equal([path], Directory.GetFiles(_dir, "*live*"));
            return;
        }

        SafetensorsWriter.Save(path, [SafetensorsEntry.Of<float>("x", [3f, 4f, 5f])]);
        Assert.Equal([1f, 2f], old.ToArray<float>("x"));
        using var fresh = SafetensorsFile.Open(path);
        Assert.Equal([3f, 4f, 5f], fresh.ToArray<float>("x"));
    }

    [Fact]
    public void Fuzzed_files_either_load_consistently_or_fail_with_a_format_error()
    {
        byte[] valid = SampleFile();
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        var mutation = Gen.Select(Gen.Int[0, headerEnd - 1], Gen.Byte, Gen.Int[0, 2]);
        const string structural = "{}[],:\" 0";
        Gen.Select(mutation.Array[1, 6], Gen.Int[0, valid.Length], Gen.Bool).Sample((edits, keep, truncate) =>
        {
            byte[] file = (byte[])valid.Clone();
            foreach (var (at, value, kind) in edits)
            {
                // Mostly structural characters, sometimes digits, sometimes any byte.
                file[at] = kind switch { 0 => (byte)structural[value % structural.Length], 1 => (byte)('0' + (value % 10)), _ => value };
            }

            file = truncate ? file[..keep] : file;
            AssertLoadsConsistentlyOrRejects(file);
        }, iter: 3000);
    }

    private static void AssertLoadsConsistentlyOrRejects(byte[] file)
    {
        SafetensorsFile f;
        try
        {
            f = SafetensorsFile.FromBytes(file);
        }
        catch (CheckpointFormatException)
        {
            return;
        }

        using (f)
        {
            long covered = 0;
            foreach (var t in f.Tensors)
            {
                Assert.Equal(covered, t.DataOffset);
                Assert.Equal(t.ElementCount * t.DType.SizeOf(), t.ByteLength);
                covered += t.ByteLength;
                Assert.Equal(t.ByteLength, f.GetBytes(t.Name).Length);
            }

            Assert.Equal(file.Length, f.Header.DataStart + covered);
        }
    }

    private static byte[] LengthPrefix(long n)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(b, n);
        return b;
    }
}
