using System.Runtime.CompilerServices;

namespace Bnb.Memory;

/// <summary>Up to <see cref="MaxRank"/> dimensions (shape or strides), stored inline so views stay allocation-free.</summary>
public readonly struct TensorShape : IEquatable<TensorShape>
{
    /// <summary>BNB_MAX_DIMS.</summary>
    public const int MaxRank = Interop.BnbNative.BNB_MAX_DIMS;

    private readonly Dims _dims;

    private TensorShape(ReadOnlySpan<long> dims)
    {
        Rank = dims.Length;
        for (int i = 0; i < dims.Length; i++)
        {
            _dims[i] = dims[i];
        }
    }

    /// <summary>Number of dimensions (0 = scalar).</summary>
    public int Rank { get; }

    public long this[int index] => (uint)index < (uint)Rank ? _dims[index] : throw new ArgumentOutOfRangeException(nameof(index));

    /// <summary>Product of the dimensions (1 for a scalar).</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            for (int i = 0; i < Rank; i++)
            {
                n = checked(n * _dims[i]);
            }

            return n;
        }
    }

    /// <summary>A shape from 0 to 4 non-negative dimensions.</summary>
    /// <exception cref="ArgumentException">More than 4 dimensions or a negative one.</exception>
    public static TensorShape Create(params ReadOnlySpan<long> dims)
    {
        if (dims.Length > MaxRank)
        {
            throw new ArgumentException($"shape has {dims.Length} dimensions; at most {MaxRank} are supported", nameof(dims));
        }

        foreach (long d in dims)
        {
            if (d < 0)
            {
                throw new ArgumentException($"shape dimension {d} is negative", nameof(dims));
            }
        }

        return new TensorShape(dims);
    }

    internal static TensorShape CreateUnchecked(ReadOnlySpan<long> dims) => new(dims);

    public long[] ToArray()
    {
        var a = new long[Rank];
        for (int i = 0; i < Rank; i++)
        {
            a[i] = _dims[i];
        }

        return a;
    }

    public bool Equals(TensorShape other)
    {
        if (Rank != other.Rank)
        {
            return false;
        }

        for (int i = 0; i < Rank; i++)
        {
            if (_dims[i] != other._dims[i])
            {
                return false;
            }
        }

        return true;
    }

    public override bool Equals(object? obj) => obj is TensorShape s && Equals(s);

    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(Rank);
        for (int i = 0; i < Rank; i++)
        {
            h.Add(_dims[i]);
        }

        return h.ToHashCode();
    }

    public static bool operator ==(TensorShape left, TensorShape right) => left.Equals(right);

    public static bool operator !=(TensorShape left, TensorShape right) => !left.Equals(right);

    public override string ToString() => "[" + string.Join(", ", ToArray()) + "]";

    [InlineArray(MaxRank)]
    private struct Dims
    {
        private long _element0;
    }
}
