using System.Globalization;
using System.Runtime.InteropServices;

namespace Bnb.Cli.Bench;

/// <summary>What the benchmark reports about the machine: CPU name, core count, last-level cache.</summary>
internal static class Machine
{
    private static readonly Lazy<string> CpuName = new(ReadCpuName);
    private static readonly Lazy<long> Llc = new(ReadLlcBytes);

    /// <summary>"AMD EPYC (2 logical CPUs, L3 32 MiB, avx512f avx512_vnni avx512_bf16)".</summary>
    public static string Cpu => CpuName.Value;

    /// <summary>Last-level cache size in bytes (sysfs), 32 MiB when unknown.</summary>
    public static long LlcBytes => Llc.Value;

    private static string ReadCpuName()
    {
        string model = RuntimeInformation.ProcessArchitecture.ToString();
        string flags = string.Empty;
        try
        {
            if (File.Exists("/proc/cpuinfo"))
            {
                foreach (string line in File.ReadLines("/proc/cpuinfo"))
                {
                    int colon = line.IndexOf(':', StringComparison.Ordinal);
                    if (colon < 0)
                    {
                        continue;
                    }

                    string key = line[..colon].Trim();
                    string value = line[(colon + 1)..].Trim();
                    if (key is "model name" or "Model" or "CPU part" && model == RuntimeInformation.ProcessArchitecture.ToString())
                    {
                        model = value;
                    }
                    else if (key is "flags" or "Features" && flags.Length == 0)
                    {
                        var wanted = new[] { "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "asimd", "asimddp", "bf16", "i8mm" };
                        flags = string.Join(' ', value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(wanted.Contains));
                    }
                }
            }
        }
        catch (IOException)
        {
        }

        long llc = LlcBytes;
        return $"{model} ({Environment.ProcessorCount} logical CPUs, LLC {llc >> 20} MiB{(flags.Length > 0 ? ", " + flags : string.Empty)})";
    }

    private static long ReadLlcBytes()
    {
        const long fallback = 32L << 20;
        try
        {
            string dir = "/sys/devices/system/cpu/cpu0/cache";
            if (!Directory.Exists(dir))
            {
                return fallback;
            }

            long best = 0;
            int bestLevel = 0;
            foreach (string index in Directory.EnumerateDirectories(dir, "index*"))
            {
                string levelFile = Path.Combine(index, "level"), sizeFile = Path.Combine(index, "size");
                if (!File.Exists(levelFile) || !File.Exists(sizeFile))
                {
                    continue;
                }

                int level = int.Parse(File.ReadAllText(levelFile).Trim(), CultureInfo.InvariantCulture);
                string size = File.ReadAllText(sizeFile).Trim();
                long mult = size.EndsWith('K') ? 1024 : size.EndsWith('M') ? 1 << 20 : 1;
                long bytes = long.Parse(size.TrimEnd('K', 'M'), CultureInfo.InvariantCulture) * mult;
                if (level > bestLevel || (level == bestLevel && bytes > best))
                {
                    bestLevel = level;
                    best = bytes;
                }
            }

            return best > 0 ? best : fallback;
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
        {
            return fallback;
        }
    }
}
