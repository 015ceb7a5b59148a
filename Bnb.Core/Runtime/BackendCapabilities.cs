namespace Bnb.Runtime;

/// <summary>The capability bit sets of <c>bnb_backend_info</c>, decoded.</summary>
/// <param name="Ops">Ops implemented natively (others return NOT_SUPPORTED).</param>
/// <param name="FloatDTypes">Float dtypes accepted as activations/weights.</param>
/// <param name="QuantTypes">4-bit types.</param>
/// <param name="WeightFormats">Packed 4-bit layouts for weight_pack/gemm.</param>
/// <param name="MemoryKinds">Kinds accepted by buffer_alloc.</param>
/// <param name="Optimizers">Optimizer kinds.</param>
public sealed record BackendCapabilities(
    BackendOps Ops,
    DTypeFlags FloatDTypes,
    QuantTypeFlags QuantTypes,
    WeightFormatFlags WeightFormats,
    MemoryKindFlags MemoryKinds,
    OptimizerFlags Optimizers);
