using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using Bnb.Memory;

namespace Bnb.Serialization;

/// <summary>
/// A safetensors file opened for zero-copy reading: the file is memory-mapped read-only and every accessor returns a
/// view into the mapping (no copy). The header is validated completely when the file is opened (see
/// <see cref="SafetensorsHeader"/>), so later reads cannot run out of bounds.
/// </summary>
/// <remarks>
/// Views (<see cref="ReadOnlySpan{T}"/>, <see cref="TensorRef"/>) are valid until <see cref="Dispose"/>; using one
/// afterwards reads unmapped memory, so copy what must outlive the file (<see cref="ToArray{T}(string)"/>).
/// Not thread-safe for Dispose concurrent with reads; concurrent reads are fine.
/// </remarks>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private GCHandle _pin;
    private byte* _base;

    private SafetensorsFile(string source, long length, MemoryMappedFile? map, MemoryMappedViewAccessor? view, GCHandle pin, byte* basePointer)
    {
        Source = source;
        FileLength = length;
        _map = map;
        _view = view;
        _pin = pin;
        _base = basePointer;
        try
        {
            Header = SafetensorsHeader.Parse(new ReadOnlySpan<byte>(basePointer, (int)Math.Min(length, int.MaxValue)), length, source);
        }
        catch
        {
            Release();
            throw;
        }
    }

    /// <summary>The file path (or the name given to <see cref="FromBytes"/>), as used in messages.</summary>
    public string Source { get; }

    public long FileLength { get; }

    public SafetensorsHeader Header { get; }

    /// <summary>Tensors in data order.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors => Header.Tensors;

    /// <summary>The <c>__metadata__</c> map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata => Header.Metadata;

    /// <summary>Memory-maps <paramref name="path"/> and validates its header.</summary>
    /// <exception cref="CheckpointFormatException">The file is not a valid safetensors file.</exception>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    public static SafetensorsFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        long length = stream.Length;
        if (length < 8)
        {
            stream.Dispose();
            throw new CheckpointFormatException($"file is {length} bytes; a safetensors file starts with an 8-byte header length (truncated?)", null, path);
        }

        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            return new SafetensorsFile(path, length, map, view, default, p + view.PointerOffset);
        }
        catch (CheckpointFormatException)
        {
            throw;
        }
        catch
        {
            view?.Dispose();
            map?.Dispose();
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Reads a safetensors image held in memory (the array is pinned until <see cref="Dispose"/>).</summary>
    public static SafetensorsFile FromBytes(byte[] bytes, string source = "<memory>")
    {
        ArgumentNullException.ThrowIfNull(bytes);
        var pin = GCHandle.Alloc(bytes, GCHandleType.Pinned);
        return new SafetensorsFile(source, bytes.Length, null, null, pin, (byte*)pin.AddrOfPinnedObject());
    }

    public bool Contains(string name) => Header.TryGetTensor(name, out _);

    public bool TryGetInfo(string name, out SafetensorsTensorInfo info) => Header.TryGetTensor(name, out info);

    /// <summary>The header entry of <paramref name="name"/>.</summary>
    /// <exception cref="CheckpointFormatException">No such tensor.</exception>
    public SafetensorsTensorInfo GetInfo(string name) =>
        Header.TryGetTensor(name, out var info) ? info : throw new CheckpointFormatException("is missing from the file", name, Source);

    /// <summary>The raw bytes of <paramref name="name"/> (a view into the mapping).</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var info = GetInfo(name);
        if (info.ByteLength > int.MaxValue)
        {
            throw new CheckpointFormatException($"is {info.ByteLength} bytes, too large for a span; use GetTensorRef", name, Source);
        }

        return new ReadOnlySpan<byte>(DataPointer(info), (int)info.ByteLength);
    }

    /// <summary>The elements of <paramref name="name"/> as <typeparamref name="T"/>, which must match its dtype.</summary>
    /// <exception cref="CheckpointFormatException">The tensor is missing or has another dtype.</exception>
    public ReadOnlySpan<T> GetSpan<T>(string name)
        where T : unmanaged
    {
        var info = GetInfo(name);
        SafetensorsDType expected = ElementType<T>();
        if (info.DType != expected)
        {
            throw new CheckpointFormatException($"has dtype {info.DType.Name()} {info.ShapeText}, but {expected.Name()} ({typeof(T).Name}) was requested", name, Source);
        }

        if (info.ElementCount > int.MaxValue)
        {
            throw new CheckpointFormatException($"has {info.ElementCount} elements, too many for a span; use GetTensorRef", name, Source);
        }

        return new ReadOnlySpan<T>(DataPointer(info), (int)info.ElementCount);
    }

    /// <summary>A copy of the elements of <paramref name="name"/>.</summary>
    public T[] ToArray<T>(string name)
        where T : unmanaged => GetSpan<T>(name).ToArray();

    /// <summary>A read-only zero-copy <see cref="TensorRef"/> of <paramref name="name"/> (dtypes with a Bnb <see cref="DType"/>, rank ≤ 4).</summary>
    public TensorRef GetTensorRef(string name)
    {
        var info = GetInfo(name);
        DType dtype = info.DType.ToDType()
            ?? throw new CheckpointFormatException($"has dtype {info.DType.Name()}, which has no Bnb dtype", name, Source);
        if (info.Shape.Length > TensorShape.MaxRank)
        {
            throw new CheckpointFormatException($"has {info.Shape.Length} dimensions {info.ShapeText}; a TensorRef holds at most {TensorShape.MaxRank}", name, Source);
        }

        return TensorRef.FromValidated(DataPointer(info), dtype, TensorShape.Create(info.Shape), default, readOnly: true, device: null);
    }

    /// <summary>The safetensors dtype that <typeparamref name="T"/> reads.</summary>
    public static SafetensorsDType ElementType<T>()
        where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return SafetensorsDType.F32;
        if (typeof(T) == typeof(Half)) return SafetensorsDType.F16;
        if (typeof(T) == typeof(BFloat16)) return SafetensorsDType.BF16;
        if (typeof(T) == typeof(byte)) return SafetensorsDType.U8;
        if (typeof(T) == typeof(sbyte)) return SafetensorsDType.I8;
        if (typeof(T) == typeof(short)) return SafetensorsDType.I16;
        if (typeof(T) == typeof(ushort)) return SafetensorsDType.U16;
        if (typeof(T) == typeof(int)) return SafetensorsDType.I32;
        if (typeof(T) == typeof(uint)) return SafetensorsDType.U32;
        if (typeof(T) == typeof(long)) return SafetensorsDType.I64;
        if (typeof(T) == typeof(ulong)) return SafetensorsDType.U64;
        if (typeof(T) == typeof(double)) return SafetensorsDType.F64;
        throw new ArgumentException($"element type {typeof(T).Name} has no safetensors dtype", nameof(T));
    }

    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    private byte* DataPointer(SafetensorsTensorInfo info)
    {
        ObjectDisposedException.ThrowIf(_base is null, this);
        return _base + Header.DataStart + info.DataOffset;
    }

    private void Release()
    {
        if (_base is null)
        {
            return;
        }

        _base = null;
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }

        _map?.Dispose();
        if (_pin.IsAllocated)
        {
            _pin.Free();
        }
    }
}
