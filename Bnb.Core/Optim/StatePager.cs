using Bnb.Memory;
using Bnb.Runtime;

namespace Bnb.Optim;

/// <summary>Allocates paged state buffers (the paging allocator behind paged optimizers).</summary>
internal abstract class StatePager : IDisposable
{
    public abstract StateBuffer Allocate(BnbContext context, string name, DType dtype, long[] shape);

    public abstract void Dispose();
}

public abstract partial class Optimizer
{
    private StatePager CreateDefaultPager() =>
        throw new NotSupportedException("paged optimizer state needs the paging allocator (Bnb.Memory.PagedAllocator), which this build does not have yet");
}
