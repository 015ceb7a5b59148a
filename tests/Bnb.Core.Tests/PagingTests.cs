using Bnb.Errors;
using Bnb.Memory;
using Bnb.Quantization;
using Bnb.Runtime;

namespace Bnb.Tests;

/// <summary>
/// The C# paging wrapper over the cpu_ref pager: data survives eviction, ops run on mapped tensors, counters, errors.
/// Each test gets its own context and spill directory (the pager belongs to the context).
/// </summary>
public sealed class PagingTests : IDisposable
{
    private readonly string _spill = Path.Combine(Path.GetTempPath(), $"bnb-paging-test-{Guid.NewGuid():N}");
    private BnbRuntime? _runtime;
    private BnbContext? _context;

    public PagingTests() => Directory.CreateDirectory(_spill);

    public void Dispose()
    {
        _context?.Dispose();
        _runtime?.Dispose();
        if (Directory.Exists(_spill))
        {
            Directory.Delete(_spill, recursive: true);
        }
    }

    [BackendFact("cpu_ref")]
    public void Data_survives_eviction_and_the_counters_show_the_traffic()
    {
        var pager = new PagedAllocator(Context(), budgetBytes: 4096, _spill);
        var buffers = Enumerable.Range(0, 4).Select(_ => pager.Allocate(DType.F32, 512)).ToArray(); // 2 KiB each
        for (int b = 0; b < buffers.Length; b++)
        {
            using PagedMapping m = buffers[b].Map();
            Span<float> s = m.AsSpan<float>();
            for (int i = 0; i < s.Length; i++)
            {
                s[i] = (b * 1000) + i;
            }
        }

        PagedMemoryStats afterWrites = pager.GetStats();
        Assert.Equal(4096, afterWrites.BudgetBytes);
        Assert.Equal(4 * 2048, afterWrites.PagedBytes);
        Assert.Equal(2, afterWrites.Evictions);      // buffers 0 and 1 made room for 2 and 3
        Assert.Equal(2 * 2048, afterWrites.WrittenBytes);
        Assert.Equal(4096, afterWrites.PeakResidentBytes);

        for (int b = 0; b < buffers.Length; b++)
        {
            using PagedMapping m = buffers[b].Map(PagedAccess.Read);
            ReadOnlySpan<float> s = m.AsReadOnlySpan<float>();
            for (int i = 0; i < s.Length; i++)
            {
                Assert.Equal((b * 1000) + i, s[i]);
            }
        }

        PagedMemoryStats end = pager.GetStats();
        Assert.Equal(4, end.Loads);
        Assert.Equal(4 * 2048, end.LoadedBytes);
        Assert.Equal(0, end.PinnedBytes);
        Assert.True(end.SpillFileBytes >= 4 * 2048, $"spill file {end.SpillFileBytes} bytes");
        foreach (PagedBuffer b in buffers)
        {
            b.Dispose();
        }

        Assert.Equal(0, pager.GetStats().PagedBytes);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_spill)); // the spill file never shows (unlinked / delete-on-close)
    }

    [BackendFact("cpu_ref")]
    public void Ops_write_mapped_tensors_and_the_results_survive_eviction()
    {
        var ctx = Context();
        var quantizer = new Quantizer(ctx);
        var pager = new PagedAllocator(ctx, budgetBytes: 8192, _spill);
        var rng = new Random(7);
        float[] input = [.. Enumerable.Range(0, 4096).Select(_ => (float)((rng.NextDouble() * 2) - 1))];
        byte[] codes = new byte[4096];
        float[] absmax = new float[16];
        quantizer.QuantizeBlockwise(TensorRef.FromReadOnlySpan<float>(input), TensorRef.FromSpan<byte>(codes), TensorRef.FromSpan<float>(absmax), blocksize: 256);

        using PagedBuffer pagedCodes = pager.Allocate(DType.U8, 4096);
        using PagedBuffer pagedAbsmax = pager.Allocate(DType.F32, 16);
        using (PagedMapping c = pagedCodes.Map())
        using (PagedMapping a = pagedAbsmax.Map())
        {
            quantizer.QuantizeBlockwise(TensorRef.FromReadOnlySpan<float>(input), c.Tensor, a.Tensor, blocksize: 256);
        }

        using (PagedBuffer filler = pager.Allocate(8192)) // evicts both
        using (PagedMapping f = filler.Map())
        {
            f.AsSpan<byte>().Fill(0xEE);
        }

        Assert.True(pager.GetStats().Evictions >= 2);
        using (PagedMapping c = pagedCodes.Map(PagedAccess.Read))
        using (PagedMapping a = pagedAbsmax.Map(PagedAccess.Read))
        {
            Assert.Equal(codes, c.AsReadOnlySpan<byte>().ToArray());
            Assert.Equal(absmax, a.AsReadOnlySpan<float>().ToArray());
            Assert.True(c.Tensor.IsReadOnly);
            Assert.Throws<ArgumentException>(() => quantizer.QuantizeBlockwise(TensorRef.FromReadOnlySpan<float>(input), c.Tensor, TensorRef.FromSpan<float>(absmax), blocksize: 256));
        }
    }

    [BackendFact("cpu_ref")]
    public void A_map_beyond_the_budget_names_budget_request_and_pinned_bytes()
    {
        var pager = new PagedAllocator(Context(), budgetBytes: 2048, _spill);
        using PagedBuffer a = pager.Allocate(1024);
        using PagedBuffer b = pager.Allocate(1024);
        using PagedBuffer c = pager.Allocate(1024);
        using PagedMapping ma = a.Map();
        using PagedMapping mb = b.Map();
        var e = Assert.Throws<BnbOutOfMemoryException>(() => c.Map());
        Assert.Contains("budget = 2048", e.Message, StringComparison.Ordinal);
        Assert.Contains("request = 1024", e.Message, StringComparison.Ordinal);
        Assert.Contains("pinned) = 2048", e.Message, StringComparison.Ordinal);
        Assert.Equal(2048, pager.GetStats().PinnedBytes);
        Assert.Throws<BnbOutOfMemoryException>(() => pager.Configure(1024, _spill));
        Assert.Equal(2048, pager.GetStats().BudgetBytes);
        var host = Assert.Throws<BnbInvalidArgumentException>(() => a.Prefetch(PrefetchTarget.Host));
        Assert.Contains("mapped", host.Message, StringComparison.Ordinal);
    }

    [BackendFact("cpu_ref")]
    public void Allocators_of_one_context_share_its_pager_and_keep_its_settings_unless_told()
    {
        var ctx = Context();
        var first = new PagedAllocator(ctx, budgetBytes: 4096, _spill);
        var second = new PagedAllocator(ctx); // no settings: keeps the budget the first one set
        Assert.Equal(4096, second.BudgetBytes);
        using PagedBuffer a = second.Allocate(1000);
        Assert.Equal(1024, first.GetStats().PagedBytes);
        second.Configure(0);
        Assert.Equal(0, first.BudgetBytes);
    }

    [BackendFact("cpu_ref")]
    public void Disposing_a_mapped_buffer_frees_it_when_the_last_mapping_closes()
    {
        var pager = new PagedAllocator(Context(), budgetBytes: 0);
        PagedBuffer buffer = pager.Allocate(DType.F32, 64);
        PagedMapping m = buffer.Map();
        m.AsSpan<float>()[3] = 42f;
        buffer.Dispose();
        Assert.True(buffer.IsDisposed);
        Assert.Equal(256, pager.GetStats().PagedBytes); // still alive: the mapping holds it
        Assert.Equal(42f, m.AsSpan<float>()[3]);
        m.Dispose();
        m.Dispose(); // idempotent
        Assert.Equal(0, pager.GetStats().PagedBytes);
        Assert.Throws<ObjectDisposedException>(() => buffer.Map());
        Assert.Throws<ObjectDisposedException>(() => m.AsSpan<float>());
    }

    [BackendFact("cpu_ref")]
    public void Read_only_maps_stay_clean_and_refuse_writable_views()
    {
        var pager = new PagedAllocator(Context(), budgetBytes: 1024, _spill);
        using PagedBuffer a = pager.Allocate(1024);
        using PagedBuffer b = pager.Allocate(1024);
        using (PagedMapping m = a.Map(PagedAccess.Read))
        {
            Assert.True(m.IsReadOnly);
            Assert.Throws<InvalidOperationException>(() => m.AsSpan<byte>());
            Assert.All(m.AsReadOnlySpan<byte>().ToArray(), x => Assert.Equal(0, x)); // fresh buffers read as zeros
        }

        b.Prefetch(); // evicts a, which was never written: no write-back
        PagedMemoryStats s = pager.GetStats();
        Assert.Equal(1, s.Evictions);
        Assert.Equal(0, s.WrittenBytes);
        Assert.Equal(0, s.PinnedBytes);
        Assert.Equal(1024, s.ResidentBytes);
    }

    [BackendFact("cpu_ref")]
    public void Bad_configuration_and_io_failures_are_clear_and_keep_the_data()
    {
        var ctx = Context();
        string missing = Path.Combine(_spill, "missing");
        var bad = Assert.Throws<BnbInvalidArgumentException>(() => new PagedAllocator(ctx, 1024, missing));
        Assert.Contains("not an existing directory", bad.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => new PagedAllocator(ctx, -1));

        string vanishing = Path.Combine(_spill, "vanishing");
        Directory.CreateDirectory(vanishing);
        var pager = new PagedAllocator(ctx, 1024, vanishing);
        using PagedBuffer a = pager.Allocate(1024);
        using PagedBuffer b = pager.Allocate(1024);
        using (PagedMapping m = a.Map())
        {
            m.AsSpan<byte>().Fill(0x3C);
        }

        Directory.Delete(vanishing);
        var io = Assert.Throws<BnbException>(() => b.Map());
        Assert.Equal(BnbStatus.Io, io.Status);
        Assert.Contains("vanishing", io.Message, StringComparison.Ordinal);
        using (PagedMapping m = a.Map(PagedAccess.Read))
        {
            Assert.All(m.AsReadOnlySpan<byte>().ToArray(), x => Assert.Equal(0x3C, x));
        }
    }

    private BnbContext Context()
    {
        _runtime = TestEnvironment.CreateRuntime(false, "cpu_ref");
        _context = _runtime.GetBackend("cpu_ref").CreateContext();
        return _context;
    }
}
