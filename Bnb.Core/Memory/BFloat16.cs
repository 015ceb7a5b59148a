using System.Globalization;
using System.Runtime.InteropServices;

namespace Bnb.Memory;

/// <summary>
/// bfloat16: the upper 16 bits of an IEEE binary32. Conversion from float rounds to nearest even
/// (<c>(u + 0x7FFF + ((u >> 16) &amp; 1)) >> 16</c>) and keeps NaN a quiet NaN, as the spec and PyTorch do.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = 2)]
public readonly struct BFloat16 : IEquatable<BFloat16>, IComparable<BFloat16>, IFormattable
{
    private readonly ushort _bits;

    private BFloat16(ushort bits) => _bits = bits;

    /// <summary>The raw 16 bits.</summary>
    public ushort RawValue => _bits;

    public static BFloat16 Zero => default;

    /// <summary>Reinterprets 16 bits as a bfloat16.</summary>
    public static BFloat16 FromBits(ushort bits) => new(bits);

    public static explicit operator BFloat16(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return new BFloat16((ushort)((u >> 16) | 0x0040));
        }

        return new BFloat16((ushort)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16));
    }

    public static explicit operator BFloat16(double value) => (BFloat16)(float)value;

    public static implicit operator float(BFloat16 value) => BitConverter.UInt32BitsToSingle((uint)value._bits << 16);

    public static explicit operator double(BFloat16 value) => (float)value;

    public static bool IsNaN(BFloat16 value) => float.IsNaN(value);

    public static bool operator ==(BFloat16 left, BFloat16 right) => (float)left == (float)right;

    public static bool operator !=(BFloat16 left, BFloat16 right) => !(left == right);

    public static bool operator <(BFloat16 left, BFloat16 right) => (float)left < (float)right;

    public static bool operator >(BFloat16 left, BFloat16 right) => (float)left > (float)right;

    public static bool operator <=(BFloat16 left, BFloat16 right) => (float)left <= (float)right;

    public static bool operator >=(BFloat16 left, BFloat16 right) => (float)left >= (float)right;

    /// <summary>IEEE equality (so +0 == -0 and NaN != NaN); use <see cref="RawValue"/> for bitwise comparison.</summary>
    public bool Equals(BFloat16 other) => this == other;

    public override bool Equals(object? obj) => obj is BFloat16 other && Equals(other);

    public override int GetHashCode() => ((float)this).GetHashCode();

    public int CompareTo(BFloat16 other) => ((float)this).CompareTo(other);

    public override string ToString() => ((float)this).ToString(CultureInfo.InvariantCulture);

    public string ToString(string? format, IFormatProvider? formatProvider) => ((float)this).ToString(format, formatProvider);
}
