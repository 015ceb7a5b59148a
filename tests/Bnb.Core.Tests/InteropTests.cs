using System.Runtime.CompilerServices;
using Bnb.Interop;
using Bnb.InteropGen;

namespace Bnb.Tests;

/// <summary>The generated interop matches bnb.h, and the ABI layout is pinned (frozen for ABI 1 on 64-bit).</summary>
public sealed unsafe class InteropTests
{
    [Fact]
    public void Generated_interop_is_up_to_date_with_the_header()
    {
        string root = TestEnvironment.RepoRoot;
        string header = File.ReadAllText(Path.Combine(root, InteropGenerator.HeaderRelativePath));
        string checkedIn = File.ReadAllText(Path.Combine(root, InteropGenerator.OutputRelativePath)).ReplaceLineEndings("\n");
        Assert.True(
            InteropGenerator.Generate(header) == checkedIn,
            $"{InteropGenerator.OutputRelativePath} is stale: run `dotnet run --project tools/Bnb.InteropGen`");
    }

    [Fact]
    public void Parser_reads_multi_line_slots_and_the_const_char_slot()
    {
        var model = HeaderParser.Parse(File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, InteropGenerator.HeaderRelativePath)));
        var api = model.Structs.Single(s => s.Name == "bnb_api");
        var nested = api.Slots.Single(s => s.Name == "quantize_absmax_nested");
        Assert.Equal(9, nested.Parameters.Count);
        Assert.Equal("float", nested.Parameters[5].Type.BaseName);
        var message = api.Slots.Single(s => s.Name == "last_error_message");
        Assert.Equal(new CType("char", 1), message.ReturnType);
        Assert.Empty(message.Parameters);
    }

    [Fact]
    public void Parser_rejects_a_malformed_struct_field_instead_of_dropping_it()
    {
        const string header = "typedef struct bnb_x { int32_t a; what is this; } bnb_x;";
        Assert.Throws<FormatException>(() => HeaderParser.Parse(header));
    }

    [Fact]
    public void Table_slots_are_pinned_in_header_order()
    {
        string[] expected =
        [
            "backend_get_info", "device_count", "device_get_info", "context_create", "context_destroy", "last_error_message",
            "set_log_callback", "get_code_table", "buffer_alloc", "buffer_free", "buffer_get_pointer", "buffer_map", "memory_copy",
            "paged_prefetch", "stream_create", "stream_destroy", "stream_synchronize", "context_set_stream", "quantize_blockwise",
            "dequantize_blockwise", "quantize_absmax_nested", "quantize_4bit", "dequantize_4bit", "weight_pack_size", "weight_pack",
            "weight_unpack", "gemv_4bit", "gemm_4bit", "int8_vectorwise_quant", "int8_vectorwise_dequant", "int8_linear_matmul",
            "int8_mm_dequant", "int8_double_quant", "optimizer_update_32bit", "optimizer_update_8bit_blockwise", "optimizer_unorm",
            "percentile_clipping", "pager_configure", "memory_stats", "buffer_map_access", "buffer_unmap",
        ];
        Assert.Equal(expected, BnbApi.SlotNames);
        Assert.Equal(16 + (8 * expected.Length), sizeof(BnbApi));
        BnbApi api = default;
        byte* b = (byte*)&api;
        Assert.Equal(0, (byte*)&api.AbiMajor - b);
        Assert.Equal(8, (byte*)&api.StructSize - b);
        Assert.Equal(16, (byte*)&api.BackendGetInfo - b);
        Assert.Equal(16 + (8 * 5), (byte*)&api.LastErrorMessage - b);
        Assert.Equal(16 + (8 * 18), (byte*)&api.QuantizeBlockwise - b);
        Assert.Equal(16 + (8 * 21), (byte*)&api.Quantize4bit - b);
        Assert.Equal(16 + (8 * 27), (byte*)&api.Gemm4bit - b);
        Assert.Equal(16 + (8 * 36), (byte*)&api.PercentileClipping - b);
        Assert.Equal(16 + (8 * 37), (byte*)&api.PagerConfigure - b);
        Assert.Equal(16 + (8 * 40), (byte*)&api.BufferUnmap - b);
    }

    [Fact]
    public void Struct_layouts_are_pinned()
    {
        Assert.Equal(80, sizeof(BnbTensor));
        BnbTensor t = default;
        Assert.Equal([0, 8, 12, 16, 48], Offsets(&t, (byte*)&t.Data, (byte*)&t.Dtype, (byte*)&t.Ndim, (byte*)t.Shape, (byte*)t.Stride));

        Assert.Equal(48, sizeof(BnbAbsmax));
        BnbAbsmax a = default;
        Assert.Equal([0, 4, 8, 16, 24, 32, 40], Offsets(&a, (byte*)&a.StructSize, (byte*)&a.Nested, (byte*)&a.Values, (byte*)&a.NestedAbsmax, (byte*)&a.NestedCode, (byte*)&a.NestedBlocksize, (byte*)&a.NestedOffset));

        Assert.Equal(72, sizeof(BnbBackendInfo));
        BnbBackendInfo i = default;
        Assert.Equal(
            [0, 4, 8, 12, 16, 24, 32, 40, 48, 52, 56, 60, 64, 68],
            Offsets(&i, (byte*)&i.StructSize, (byte*)&i.AbiMajor, (byte*)&i.AbiMinor, (byte*)&i.DeviceKind, (byte*)&i.Name, (byte*)&i.Description, (byte*)&i.Version, (byte*)&i.Ops, (byte*)&i.FloatDtypes, (byte*)&i.QuantTypes, (byte*)&i.WeightFormats, (byte*)&i.MemoryKinds, (byte*)&i.Optimizers, (byte*)&i.Reserved));

        Assert.Equal(176, sizeof(BnbDeviceInfo));
        BnbDeviceInfo d = default;
        Assert.Equal(
            [0, 4, 8, 12, 16, 144, 152, 160, 168, 172],
            Offsets(&d, (byte*)&d.StructSize, (byte*)&d.Index, (byte*)&d.Kind, (byte*)&d.ComputeUnits, d.Name, (byte*)&d.TotalMemory, (byte*)&d.FreeMemory, (byte*)&d.Features, (byte*)&d.ComputeCapability, (byte*)&d.WarpSize));

        Assert.Equal(16, sizeof(BnbContextOptions));
        BnbContextOptions o = default;
        Assert.Equal([0, 4, 8, 12], Offsets(&o, (byte*)&o.StructSize, (byte*)&o.Device, (byte*)&o.NumThreads, (byte*)&o.NonfinitePolicy));

        Assert.Equal(104, sizeof(BnbOptimizerParams));
        BnbOptimizerParams p = default;
        Assert.Equal(
            [0, 4, 8, 12, 16, 20, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96],
            Offsets(&p, (byte*)&p.StructSize, (byte*)&p.Kind, (byte*)&p.Step, (byte*)&p.Rounding, (byte*)&p.SkipZeros, (byte*)&p.Reserved, (byte*)&p.Lr, (byte*)&p.Beta1, (byte*)&p.Beta2, (byte*)&p.Beta3, (byte*)&p.Alpha, (byte*)&p.Eps, (byte*)&p.WeightDecay, (byte*)&p.GnormScale, (byte*)&p.MaxUnorm, (byte*)&p.ParamNorm));
    }

    [Fact]
    public void Paging_struct_layouts_are_pinned()
    {
        Assert.Equal(24, sizeof(BnbPagerConfig));
        BnbPagerConfig c = default;
        Assert.Equal([0, 4, 8, 16], Offsets(&c, (byte*)&c.StructSize, (byte*)&c.Reserved, (byte*)&c.BudgetBytes, (byte*)&c.SpillDirectory));

        Assert.Equal(96, sizeof(BnbMemoryStats));
        BnbMemoryStats m = default;
        Assert.Equal(
            [0, 4, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88],
            Offsets(&m, (byte*)&m.StructSize, (byte*)&m.Reserved, (byte*)&m.BudgetBytes, (byte*)&m.PagedBytes, (byte*)&m.ResidentBytes, (byte*)&m.PinnedBytes, (byte*)&m.PeakResidentBytes, (byte*)&m.EvictedBytes, (byte*)&m.WrittenBytes, (byte*)&m.LoadedBytes, (byte*)&m.Evictions, (byte*)&m.Loads, (byte*)&m.SpillFileBytes));
    }

    [Fact]
    public void Marshal_agrees_with_the_pinned_offsets()
    {
        Assert.Equal(16, System.Runtime.InteropServices.Marshal.OffsetOf<BnbTensor>(nameof(BnbTensor.Shape)));
        Assert.Equal(40, System.Runtime.InteropServices.Marshal.OffsetOf<BnbAbsmax>(nameof(BnbAbsmax.NestedOffset)));
        Assert.Equal(Unsafe.SizeOf<BnbDeviceInfo>(), System.Runtime.InteropServices.Marshal.SizeOf<BnbDeviceInfo>());
    }

    private static int[] Offsets<T>(T* start, params byte*[] fields)
        where T : unmanaged
    {
        var result = new int[fields.Length];
        for (int i = 0; i < fields.Length; i++)
        {
            result[i] = (int)(fields[i] - (byte*)start);
        }

        return result;
    }
}
