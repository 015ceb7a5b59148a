using Bnb.Errors;
using Bnb.Interop;
using Bnb.Runtime;

namespace Bnb.Memory;

/// <summary>
/// The paging allocator of one <see cref="BnbContext"/>: <see cref="PagedBuffer"/>s live in a budget of fast memory
/// (RAM on CPU backends) and spill to a temp file when the budget is full, least recently used first. A buffer is
/// usable only while mapped (<see cref="PagedBuffer.Map"/>), which loads it back if needed and pins it; ops receive
/// the mapped address. See docs/memory.md for the full contract.
/// </summary>
/// <remarks>
/// The pager belongs to the native context: every <c>PagedAllocator</c> over the same context shares one budget, one
/// spill file and one set of counters. Like the context, it is externally synchronized (one thread at a time).
/// <example>
/// A paged optimizer step, parameter by parameter:
/// <code>
/// using (var s1 = state1[i].Map())
/// using (var s2 = state2[i].Map())
/// {
///     kernels.Update8Bit(..., s1.Tensor, s2.Tensor, ...);   // ops get the pinned addresses
/// }
/// state1[i + 1].Prefetch();                                 // load the next parameter's state ahead
/// </code>
/// </example>
/// </remarks>
public sealed class PagedAllocator
{
    /// <summary>
    /// Creates the allocator view of <paramref name="context"/>'s pager, configuring it when a budget or a directory
    /// is given (otherwise the pager keeps its current settings: unlimited and the temp directory for a new context).
    /// </summary>
    /// <param name="context">The context whose pager (budget, spill file, counters) is used.</param>
    /// <param name="budgetBytes">Fast memory for paged buffers; 0 = unlimited (nothing is ever evicted by maps); null = keep.</param>
    /// <param name="spillDirectory">Directory of the spill file; null = keep (the system temp directory by default).</param>
    /// <exception cref="BnbNotSupportedException">The backend has no pager (capability <see cref="BackendOps.Pager"/>).</exception>
    public PagedAllocator(BnbContext context, long? budgetBytes = null, string? spillDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!context.Backend.Capabilities.Ops.HasFlag(BackendOps.Pager))
        {
            throw new BnbNotSupportedException(
                $"{context.Backend.Name}: pager_configure: this backend has no paging allocator (ops bit PAGER clear)",
                context.Backend.Name,
                "pager_configure");
        }

        Context = context;
        if (budgetBytes.HasValue || spillDirectory is not null)
        {
            Configure(budgetBytes ?? BudgetBytes, spillDirectory);
        }
    }

    public BnbContext Context { get; }

    /// <summary>The configured budget in bytes (0 = unlimited).</summary>
    public long BudgetBytes => GetStats().BudgetBytes;

    /// <summary>The spill directory this allocator configured last (null = not set here: the temp directory unless another allocator of the context set one).</summary>
    public string? SpillDirectory { get; private set; }

    internal NativeBackend Native => Context.Native;

    /// <summary>
    /// Sets the budget (0 = unlimited) and the spill directory. A smaller budget evicts unmapped buffers down to it.
    /// </summary>
    /// <exception cref="BnbOutOfMemoryException">The mapped buffers alone exceed the new budget (nothing changes).</exception>
    /// <exception cref="BnbInvalidArgumentException">The directory does not exist, or data already lives in the spill file of another directory.</exception>
    public void Configure(long budgetBytes, string? spillDirectory = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(budgetBytes);
        Native.PagingConfigure(Context.Handle, (ulong)budgetBytes, spillDirectory);
        SpillDirectory = spillDirectory;
    }

    /// <summary>The pager's counters now.</summary>
    public PagedMemoryStats GetStats() => PagedMemoryStats.From(Native.PagingStats(Context.Handle));

    /// <summary>A paged buffer of <paramref name="bytes"/> bytes, reading as zeros. Memory is committed at the first map.</summary>
    public PagedBuffer Allocate(long bytes) => Allocate(DType.U8, bytes);

    /// <summary>A paged buffer holding a zero tensor of <paramref name="dtype"/> and <paramref name="shape"/>.</summary>
    public PagedBuffer Allocate(DType dtype, params ReadOnlySpan<long> shape)
    {
        TensorShape s = TensorShape.Create(shape);
        long bytes = checked(s.ElementCount * dtype.SizeOf());
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes, nameof(shape));
        nint buffer = Native.PagingAlloc(Context.Handle, (ulong)bytes);
        return new PagedBuffer(this, new PagedBufferHandle(buffer, Native, Context.Handle), bytes, dtype, s);
    }
}

/// <summary>
/// Counters of a context's paging allocator (<c>bnb_memory_stats</c>). Sizes are bytes rounded up to 64 per buffer;
/// the "cumulative" counters only grow.
/// </summary>
/// <param name="BudgetBytes">Configured budget (0 = unlimited).</param>
/// <param name="PagedBytes">Live paged buffers, resident or not.</param>
/// <param name="ResidentBytes">Paged buffers in fast memory now.</param>
/// <param name="PinnedBytes">Of which mapped.</param>
/// <param name="PeakResidentBytes">High-water mark of <paramref name="ResidentBytes"/>.</param>
/// <param name="EvictedBytes">Cumulative bytes moved out of fast memory.</param>
/// <param name="WrittenBytes">Cumulative bytes written to the spill file (dirty write-backs only).</param>
/// <param name="LoadedBytes">Cumulative bytes read back from the spill file.</param>
/// <param name="Evictions">Cumulative buffers evicted.</param>
/// <param name="Loads">Cumulative buffers read back.</param>
/// <param name="SpillFileBytes">Bytes of the spill file in use.</param>
public sealed record PagedMemoryStats(
    long BudgetBytes,
    long PagedBytes,
    long ResidentBytes,
    long PinnedBytes,
    long PeakResidentBytes,
    long EvictedBytes,
    long WrittenBytes,
    long LoadedBytes,
    long Evictions,
    long Loads,
    long SpillFileBytes)
{
    internal static PagedMemoryStats From(in BnbMemoryStats s) => new(
        (long)s.BudgetBytes,
        (long)s.PagedBytes,
        (long)s.ResidentBytes,
        (long)s.PinnedBytes,
        (long)s.PeakResidentBytes,
        (long)s.EvictedBytes,
        (long)s.WrittenBytes,
        (long)s.LoadedBytes,
        (long)s.Evictions,
        (long)s.Loads,
        (long)s.SpillFileBytes);
}
