using Bnb.Interop;

namespace Bnb.Runtime;

/// <summary>What quantizers do with NaN/Inf input (<c>BNB_NONFINITE_*</c>).</summary>
public enum NonFinitePolicy
{
    /// <summary>Fail with <c>BNB_ERR_NON_FINITE</c> naming the first bad index (default).</summary>
    Error = BnbNative.BNB_NONFINITE_ERROR,

    /// <summary>Encode as bitsandbytes does (NaN → code 0, Inf makes its block's absmax Inf).</summary>
    Propagate = BnbNative.BNB_NONFINITE_PROPAGATE,
}

/// <summary>Kind of device a backend drives (<c>BNB_DEVICE_*</c>).</summary>
public enum DeviceKind
{
    Cpu = BnbNative.BNB_DEVICE_CPU,
    Gpu = BnbNative.BNB_DEVICE_GPU,
    Accelerator = BnbNative.BNB_DEVICE_ACCELERATOR,
}

/// <summary>Ops a backend implements natively (bit <c>BNB_OP_*</c> of <c>bnb_backend_info.ops</c>).</summary>
[Flags]
public enum BackendOps : ulong
{
    None = 0,
    QuantizeBlockwise = 1UL << BnbNative.BNB_OP_QUANTIZE_BLOCKWISE,
    DequantizeBlockwise = 1UL << BnbNative.BNB_OP_DEQUANTIZE_BLOCKWISE,
    QuantizeAbsmaxNested = 1UL << BnbNative.BNB_OP_QUANTIZE_ABSMAX_NESTED,
    Quantize4Bit = 1UL << BnbNative.BNB_OP_QUANTIZE_4BIT,
    Dequantize4Bit = 1UL << BnbNative.BNB_OP_DEQUANTIZE_4BIT,
    WeightPack = 1UL << BnbNative.BNB_OP_WEIGHT_PACK,
    Gemv4Bit = 1UL << BnbNative.BNB_OP_GEMV_4BIT,
    Gemm4Bit = 1UL << BnbNative.BNB_OP_GEMM_4BIT,
    Int8VectorwiseQuant = 1UL << BnbNative.BNB_OP_INT8_VECTORWISE_QUANT,
    Int8VectorwiseDequant = 1UL << BnbNative.BNB_OP_INT8_VECTORWISE_DEQUANT,
    Int8LinearMatmul = 1UL << BnbNative.BNB_OP_INT8_LINEAR_MATMUL,
    Int8MmDequant = 1UL << BnbNative.BNB_OP_INT8_MM_DEQUANT,
    Int8DoubleQuant = 1UL << BnbNative.BNB_OP_INT8_DOUBLE_QUANT,
    Optimizer32Bit = 1UL << BnbNative.BNB_OP_OPTIMIZER_32BIT,
    Optimizer8BitBlockwise = 1UL << BnbNative.BNB_OP_OPTIMIZER_8BIT_BLOCKWISE,
    OptimizerUnorm = 1UL << BnbNative.BNB_OP_OPTIMIZER_UNORM,
    PercentileClipping = 1UL << BnbNative.BNB_OP_PERCENTILE_CLIPPING,
    Buffers = 1UL << BnbNative.BNB_OP_BUFFERS,
    Streams = 1UL << BnbNative.BNB_OP_STREAMS,
    Pager = 1UL << BnbNative.BNB_OP_PAGER,
}

/// <summary>Float dtypes a backend accepts (bit <c>BNB_DTYPE_*</c>).</summary>
[Flags]
public enum DTypeFlags : uint
{
    None = 0,
    F32 = 1u << BnbNative.BNB_DTYPE_F32,
    F16 = 1u << BnbNative.BNB_DTYPE_F16,
    BF16 = 1u << BnbNative.BNB_DTYPE_BF16,
    U8 = 1u << BnbNative.BNB_DTYPE_U8,
    I8 = 1u << BnbNative.BNB_DTYPE_I8,
    I32 = 1u << BnbNative.BNB_DTYPE_I32,
    I64 = 1u << BnbNative.BNB_DTYPE_I64,
    F64 = 1u << BnbNative.BNB_DTYPE_F64,
}

/// <summary>4-bit types a backend supports (bit <c>BNB_QUANT_*</c>).</summary>
[Flags]
public enum QuantTypeFlags : uint
{
    None = 0,
    Fp4 = 1u << BnbNative.BNB_QUANT_FP4,
    Nf4 = 1u << BnbNative.BNB_QUANT_NF4,
}

/// <summary>Packed 4-bit weight layouts a backend accepts (bit <c>BNB_WEIGHT_*</c>).</summary>
[Flags]
public enum WeightFormatFlags : uint
{
    None = 0,
    Standard = 1u << BnbNative.BNB_WEIGHT_STANDARD,
    BnbCpu = 1u << BnbNative.BNB_WEIGHT_BNB_CPU,
    Backend = 1u << BnbNative.BNB_WEIGHT_BACKEND,
}

/// <summary>Memory kinds <c>buffer_alloc</c> accepts (bit <c>BNB_MEMORY_*</c>).</summary>
[Flags]
public enum MemoryKindFlags : uint
{
    None = 0,
    Device = 1u << BnbNative.BNB_MEMORY_DEVICE,
    HostPinned = 1u << BnbNative.BNB_MEMORY_HOST_PINNED,
    Paged = 1u << BnbNative.BNB_MEMORY_PAGED,
}

/// <summary>Optimizer kinds a backend implements (bit <c>BNB_OPTIM_*</c>).</summary>
[Flags]
public enum OptimizerFlags : uint
{
    None = 0,
    Adam = 1u << BnbNative.BNB_OPTIM_ADAM,
    Momentum = 1u << BnbNative.BNB_OPTIM_MOMENTUM,
    RmsProp = 1u << BnbNative.BNB_OPTIM_RMSPROP,
    Adagrad = 1u << BnbNative.BNB_OPTIM_ADAGRAD,
    Lion = 1u << BnbNative.BNB_OPTIM_LION,
    Lamb = 1u << BnbNative.BNB_OPTIM_LAMB,
    Lars = 1u << BnbNative.BNB_OPTIM_LARS,
    AdEMAMix = 1u << BnbNative.BNB_OPTIM_ADEMAMIX,
}

/// <summary>Where a load attempt got its path from.</summary>
public enum LoadSource
{
    /// <summary><see cref="BnbRuntimeOptions.LibraryPaths"/>.</summary>
    Explicit,

    /// <summary>The <c>BNB_LIBRARY_PATH</c> environment variable.</summary>
    Environment,

    /// <summary><c>runtimes/&lt;rid&gt;/native/</c> under the application directory (NuGet layout).</summary>
    NuGetRuntimes,

    /// <summary>The application directory itself.</summary>
    ApplicationDirectory,
}

/// <summary>How far a load attempt got.</summary>
public enum LoadStage
{
    /// <summary>No file (or directory) at the path.</summary>
    NotFound,

    /// <summary>The OS loader refused the file (not a library, wrong architecture, missing dependency).</summary>
    LoadFailed,

    /// <summary>The library lacks <c>bnb_probe</c> or <c>bnb_get_api</c>.</summary>
    MissingExport,

    /// <summary><c>bnb_probe</c> returned 0: the backend cannot run on this machine.</summary>
    ProbeZero,

    /// <summary><c>bnb_get_api</c> does not implement this SDK's ABI major (or its table is too short).</summary>
    AbiMismatch,

    /// <summary>Not loaded: its name is not in <c>BNB_BACKENDS</c> / <see cref="BnbRuntimeOptions.Backends"/>.</summary>
    Excluded,

    /// <summary>Not loaded: a backend of the same name was loaded from an earlier path.</summary>
    Duplicate,

    /// <summary>Loaded; the backend is in <see cref="BnbRuntime.Backends"/>.</summary>
    Loaded,
}
