using System.Diagnostics;
using System.Runtime.Intrinsics;

namespace Bnb.Cli.Bench;

/// <summary>
/// A STREAM-like read-bandwidth probe, the anchor for "% of bandwidth": T threads each sum their contiguous slice of
/// one buffer much larger than the last-level cache with 4 independent vector accumulators (the loop is memory-bound
/// by a wide margin). Bandwidth = buffer bytes / wall time of the slowest thread, median over repeats.
/// </summary>
internal static unsafe class Stream
{
    public static long BufferBytes(long llcBytes) => Math.Max(512L << 20, 16 * llcBytes);

    public static double ReadSeconds(NativeBuffer buffer, int threads)
    {
        long chunk = buffer.Bytes / threads / 256 * 256;
        var sums = new ulong[threads];
        byte* basePtr = (byte*)buffer.Pointer;
        if (threads == 1)
        {
            long t0 = Stopwatch.GetTimestamp();
            sums[0] = Sum(basePtr, chunk);
            double single = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            GC.KeepAlive(sums);
            return single;
        }

        // Dedicated threads, started before the clock and released together (thread start-up is not timed).
        using var ready = new CountdownEvent(threads);
        using var go = new ManualResetEventSlim(false);
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int index = t;
            workers[t] = new Thread(() =>
            {
                ready.Signal();
                go.Wait();
                sums[index] = Sum(basePtr + (index * chunk), chunk);
            });
            workers[t].Start();
        }

        ready.Wait();
        var sw = Stopwatch.StartNew();
        go.Set();
        foreach (var w in workers)
        {
            w.Join();
        }

        double s = sw.Elapsed.TotalSeconds;
        GC.KeepAlive(sums.Aggregate(0UL, (a, b) => a ^ b));
        return s;
    }

    public static long BytesRead(NativeBuffer buffer, int threads) => buffer.Bytes / threads / 256 * 256 * threads;

    private static ulong Sum(byte* p, long bytes)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<ulong> a0 = default, a1 = default, a2 = default, a3 = default;
            for (long i = 0; i < bytes; i += 256)
            {
                a0 += Vector512.Load((ulong*)(p + i));
                a1 += Vector512.Load((ulong*)(p + i + 64));
                a2 += Vector512.Load((ulong*)(p + i + 128));
                a3 += Vector512.Load((ulong*)(p + i + 192));
            }

            return Vector512.Sum(a0 + a1 + a2 + a3);
        }

        Vector256<ulong> b0 = default, b1 = default, b2 = default, b3 = default;
        for (long i = 0; i < bytes; i += 128)
        {
            b0 += Vector256.Load((ulong*)(p + i));
            b1 += Vector256.Load((ulong*)(p + i + 32));
            b2 += Vector256.Load((ulong*)(p + i + 64));
            b3 += Vector256.Load((ulong*)(p + i + 96));
        }

        return Vector256.Sum(b0 + b1 + b2 + b3);
    }
}
