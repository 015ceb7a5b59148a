using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Bnb.Cli;

/// <summary>One CPU feature: whether the CPU reports it and whether .NET (CPU + OS state support) can use it.</summary>
/// <param name="Name">Feature name as CPU vendors spell it.</param>
/// <param name="Cpu">The CPU reports it (CPUID); null where the CPU cannot be queried directly.</param>
/// <param name="Usable">CPU and OS support it (the runtime's IsSupported); null where .NET has no API for it.</param>
internal sealed record CpuFeature(string Name, bool? Cpu, bool? Usable)
{
    /// <summary>True when the CPU has it but the OS does not enable its register state.</summary>
    public bool BlockedByOs => Cpu == true && Usable == false;
}

internal static class CpuFeatures
{
    public static IReadOnlyList<CpuFeature> Detect()
    {
        if (RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86)
        {
            return DetectX86();
        }

        if (RuntimeInformation.ProcessArchitecture == Architecture.Arm64)
        {
            return
            [
                new("NEON (AdvSimd)", null, AdvSimd.Arm64.IsSupported),
                new("DotProd", null, Dp.IsSupported),
                new("RDM", null, Rdm.IsSupported),
                new("CRC32", null, Crc32.IsSupported),
            ];
        }

        return [];
    }

    private static List<CpuFeature> DetectX86()
    {
        // CPUID says what the CPU has; IsSupported additionally requires the OS to save the register state
        // (XSAVE/XCR0), so the pair tells "present" from "usable".
        var (_, _, ecx1, _) = X86Base.CpuId(1, 0);
        var (_, ebx7, ecx7, _) = X86Base.CpuId(7, 0);
        var (eax71, _, _, _) = X86Base.CpuId(7, 1);
        static bool Bit(int reg, int bit) => ((reg >> bit) & 1) != 0;
        bool zmm = Avx512F.IsSupported;
        return
        [
            new("AVX", Bit(ecx1, 28), Avx.IsSupported),
            new("AVX2", Bit(ebx7, 5), Avx2.IsSupported),
            new("FMA", Bit(ecx1, 12), Fma.IsSupported),
            // No .NET API for F16C: its VEX encodings need the same OS-saved YMM state as AVX.
            new("F16C", Bit(ecx1, 29), Bit(ecx1, 29) && Avx.IsSupported),
            new("AVX-512F", Bit(ebx7, 16), Avx512F.IsSupported),
            new("AVX-512BW", Bit(ebx7, 30), Avx512BW.IsSupported),
            new("AVX-512VL", Bit(ebx7, 31), Avx512F.VL.IsSupported),
            new("AVX-512DQ", Bit(ebx7, 17), Avx512DQ.IsSupported),
            new("AVX-512VBMI", Bit(ecx7, 1), Avx512Vbmi.IsSupported),

            // No .NET API for these two: usable when present and the OS enables AVX-512 state.
            new("AVX-512VNNI", Bit(ecx7, 11), Bit(ecx7, 11) && zmm),
            new("AVX-512BF16", Bit(eax71, 5), Bit(eax71, 5) && zmm),
            new("AVX-VNNI", Bit(eax71, 4), AvxVnni.IsSupported),
        ];
    }
}
