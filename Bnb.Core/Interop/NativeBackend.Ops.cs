using Bnb.Memory;
using Bnb.Quantization;

namespace Bnb.Interop;

/// <summary>Slot wrappers for the compute ops: pin, describe, call, check.</summary>
internal sealed unsafe partial class NativeBackend
{
    public void QuantizeBlockwise(BnbContextHandle ctx, TensorRef a, TensorRef code, long blocksize, int rounding, TensorRef outCodes, TensorRef outAbsmax)
    {
        RequireWritable(outCodes, nameof(outCodes));
        RequireWritable(outAbsmax, nameof(outAbsmax));
        BnbTensor ta, tc, tq, tm;
        fixed (byte* pa = a, pc = code, pq = outCodes, pm = outAbsmax)
        {
            Check(_api->QuantizeBlockwise(Handle(ctx), Desc(a, pa, &ta), Desc(code, pc, &tc), blocksize, rounding, Desc(outCodes, pq, &tq), Desc(outAbsmax, pm, &tm)), "quantize_blockwise");
        }
    }

    public void DequantizeBlockwise(BnbContextHandle ctx, TensorRef codes, in AbsmaxRef absmax, TensorRef code, long blocksize, TensorRef output)
    {
        RequireWritable(output, nameof(output));
        BnbTensor tq, tc, to, tv, tn, tk;
        TensorRef values = absmax.Values, nested = absmax.NestedAbsmax, nestedCode = absmax.NestedCode;
        fixed (byte* pq = codes, pc = code, po = output, pv = values, pn = nested, pk = nestedCode)
        {
            BnbAbsmax m = Absmax(absmax, Desc(values, pv, &tv), Desc(nested, pn, &tn), Desc(nestedCode, pk, &tk));
            Check(_api->DequantizeBlockwise(Handle(ctx), Desc(codes, pq, &tq), &m, Desc(code, pc, &tc), blocksize, Desc(output, po, &to)), "dequantize_blockwise");
        }
    }

    public float QuantizeAbsmaxNested(BnbContextHandle ctx, TensorRef absmax, TensorRef code, long nestedBlocksize, int rounding, float? offsetIn, TensorRef outCodes, TensorRef outNestedAbsmax)
    {
        RequireWritable(outCodes, nameof(outCodes));
        RequireWritable(outNestedAbsmax, nameof(outNestedAbsmax));
        BnbTensor ta, tc, tq, tn;
        float offsetValue = offsetIn.GetValueOrDefault();
        float result = 0;
        fixed (byte* pa = absmax, pc = code, pq = outCodes, pn = outNestedAbsmax)
        {
            Check(
                _api->QuantizeAbsmaxNested(Handle(ctx), Desc(absmax, pa, &ta), Desc(code, pc, &tc), nestedBlocksize, rounding, offsetIn.HasValue ? &offsetValue : null, Desc(outCodes, pq, &tq), Desc(outNestedAbsmax, pn, &tn), &result),
                "quantize_absmax_nested");
        }

        return result;
    }

    public void Quantize4Bit(BnbContextHandle ctx, TensorRef a, int quantType, long blocksize, TensorRef outPacked, TensorRef outAbsmax)
    {
        RequireWritable(outPacked, nameof(outPacked));
        RequireWritable(outAbsmax, nameof(outAbsmax));
        BnbTensor ta, tp, tm;
        fixed (byte* pa = a, pp = outPacked, pm = outAbsmax)
        {
            Check(_api->Quantize4bit(Handle(ctx), Desc(a, pa, &ta), quantType, blocksize, Desc(outPacked, pp, &tp), Desc(outAbsmax, pm, &tm)), "quantize_4bit");
        }
    }

    public void Dequantize4Bit(BnbContextHandle ctx, TensorRef packed, in AbsmaxRef absmax, int quantType, long blocksize, TensorRef output)
    {
        RequireWritable(output, nameof(output));
        BnbTensor tp, to, tv, tn, tk;
        TensorRef values = absmax.Values, nested = absmax.NestedAbsmax, nestedCode = absmax.NestedCode;
        fixed (byte* pp = packed, po = output, pv = values, pn = nested, pk = nestedCode)
        {
            BnbAbsmax m = Absmax(absmax, Desc(values, pv, &tv), Desc(nested, pn, &tn), Desc(nestedCode, pk, &tk));
            Check(_api->Dequantize4bit(Handle(ctx), Desc(packed, pp, &tp), &m, quantType, blocksize, Desc(output, po, &to)), "dequantize_4bit");
        }
    }

    public long WeightPackSize(BnbContextHandle ctx, int format, long n, long k, long blocksize)
    {
        nuint bytes = 0;
        Check(_api->WeightPackSize(Handle(ctx), format, n, k, blocksize, &bytes), "weight_pack_size");
        return checked((long)bytes);
    }

    public void WeightPack(BnbContextHandle ctx, int format, TensorRef packed, long n, long k, long blocksize, TensorRef output)
    {
        RequireWritable(output, nameof(output));
        BnbTensor tp, to;
        fixed (byte* pp = packed, po = output)
        {
            Check(_api->WeightPack(Handle(ctx), format, Desc(packed, pp, &tp), n, k, blocksize, Desc(output, po, &to)), "weight_pack");
        }
    }

    public void WeightUnpack(BnbContextHandle ctx, int format, TensorRef packed, long n, long k, long blocksize, TensorRef output)
    {
        RequireWritable(output, nameof(output));
        BnbTensor tp, to;
        fixed (byte* pp = packed, po = output)
        {
            Check(_api->WeightUnpack(Handle(ctx), format, Desc(packed, pp, &tp), n, k, blocksize, Desc(output, po, &to)), "weight_unpack");
        }
    }

    public void Gemm4Bit(BnbContextHandle ctx, bool gemv, TensorRef a, TensorRef w, int weightFormat, in AbsmaxRef absmax, int quantType, long blocksize, TensorRef bias, TensorRef output)
    {
        RequireWritable(output, nameof(output));
        BnbTensor ta, tw, tb, to, tv, tn, tk;
        TensorRef values = absmax.Values, nested = absmax.NestedAbsmax, nestedCode = absmax.NestedCode;
        fixed (byte* pa = a, pw = w, pb = bias, po = output, pv = values, pn = nested, pk = nestedCode)
        {
            BnbAbsmax m = Absmax(absmax, Desc(values, pv, &tv), Desc(nested, pn, &tn), Desc(nestedCode, pk, &tk));
            BnbTensor* da = Desc(a, pa, &ta), dw = Desc(w, pw, &tw), db = Desc(bias, pb, &tb), dout = Desc(output, po, &to);
            int status = gemv
                ? _api->Gemv4bit(Handle(ctx), da, dw, weightFormat, &m, quantType, blocksize, db, dout)
                : _api->Gemm4bit(Handle(ctx), da, dw, weightFormat, &m, quantType, blocksize, db, dout);
            Check(status, gemv ? "gemv_4bit" : "gemm_4bit");
        }
    }

    public long Int8VectorwiseQuant(BnbContextHandle ctx, TensorRef a, float threshold, TensorRef outCA, TensorRef outRowStats, TensorRef outOutlierCols)
    {
        RequireWritable(outCA, nameof(outCA));
        RequireWritable(outRowStats, nameof(outRowStats));
        RequireWritable(outOutlierCols, nameof(outOutlierCols));
        BnbTensor ta, tc, tr, to;
        long count = 0;
        fixed (byte* pa = a, pc = outCA, pr = outRowStats, po = outOutlierCols)
        {
            Check(_api->Int8VectorwiseQuant(Handle(ctx), Desc(a, pa, &ta), threshold, Desc(outCA, pc, &tc), Desc(outRowStats, pr, &tr), Desc(outOutlierCols, po, &to), &count), "int8_vectorwise_quant");
        }

        return count;
    }

    public void Int8VectorwiseDequant(BnbContextHandle ctx, TensorRef ca, TensorRef rowStats, TensorRef output)
    {
        RequireWritable(output, nameof(output));
        BnbTensor tc, tr, to;
        fixed (byte* pc = ca, pr = rowStats, po = output)
        {
            Check(_api->Int8VectorwiseDequant(Handle(ctx), Desc(ca, pc, &tc), Desc(rowStats, pr, &tr), Desc(output, po, &to)), "int8_vectorwise_dequant");
        }
    }

    public void Int8LinearMatmul(BnbContextHandle ctx, TensorRef a, TensorRef b, TensorRef output)
    {
        RequireWritable(output, nameof(output));
        BnbTensor ta, tb, to;
        fixed (byte* pa = a, pb = b, po = output)
        {
            Check(_api->Int8LinearMatmul(Handle(ctx), Desc(a, pa, &ta), Desc(b, pb, &tb), Desc(output, po, &to)), "int8_linear_matmul");
        }
    }

    public void Int8MmDequant(BnbContextHandle ctx, TensorRef c, TensorRef rowStats, TensorRef colStats, TensorRef bias, TensorRef output)
    {
        RequireWritable(output, nameof(output));
        BnbTensor tc, tr, tk, tb, to;
        fixed (byte* pc = c, pr = rowStats, pk = colStats, pb = bias, po = output)
        {
            Check(_api->Int8MmDequant(Handle(ctx), Desc(c, pc, &tc), Desc(rowStats, pr, &tr), Desc(colStats, pk, &tk), Desc(bias, pb, &tb), Desc(output, po, &to)), "int8_mm_dequant");
        }
    }

    public long Int8DoubleQuant(BnbContextHandle ctx, TensorRef a, float threshold, TensorRef outCA, TensorRef outCAt, TensorRef outRowStats, TensorRef outColStats, TensorRef outOutlierCols)
    {
        RequireWritable(outCA, nameof(outCA));
        RequireWritable(outCAt, nameof(outCAt));
        RequireWritable(outRowStats, nameof(outRowStats));
        RequireWritable(outColStats, nameof(outColStats));
        RequireWritable(outOutlierCols, nameof(outOutlierCols));
        BnbTensor ta, tc, tt, tr, tk, to;
        long count = 0;
        fixed (byte* pa = a, pc = outCA, pt = outCAt, pr = outRowStats, pk = outColStats, po = outOutlierCols)
        {
            Check(
                _api->Int8DoubleQuant(Handle(ctx), Desc(a, pa, &ta), threshold, Desc(outCA, pc, &tc), Desc(outCAt, pt, &tt), Desc(outRowStats, pr, &tr), Desc(outColStats, pk, &tk), Desc(outOutlierCols, po, &to), &count),
                "int8_double_quant");
        }

        return count;
    }

    public float OptimizerUpdate32Bit(BnbContextHandle ctx, in BnbOptimizerParams parameters, TensorRef p, TensorRef g, TensorRef state1, TensorRef state2)
    {
        RequireWritable(p, nameof(p));
        RequireWritable(state1, nameof(state1));
        RequireWritable(state2, nameof(state2));
        BnbTensor tp, tg, t1, t2;
        float unorm = 0;
        fixed (BnbOptimizerParams* pp = &parameters)
        fixed (byte* bp = p, bg = g, b1 = state1, b2 = state2)
        {
            Check(_api->OptimizerUpdate32bit(Handle(ctx), pp, Desc(p, bp, &tp), Desc(g, bg, &tg), Desc(state1, b1, &t1), Desc(state2, b2, &t2), &unorm), "optimizer_update_32bit");
        }

        return unorm;
    }

    public void OptimizerUpdate8BitBlockwise(
        BnbContextHandle ctx, in BnbOptimizerParams parameters, TensorRef p, TensorRef g, TensorRef state1, TensorRef state2, TensorRef absmax1, TensorRef absmax2, TensorRef qmap1, TensorRef qmap2)
    {
        RequireWritable(p, nameof(p));
        RequireWritable(state1, nameof(state1));
        RequireWritable(state2, nameof(state2));
        RequireWritable(absmax1, nameof(absmax1));
        RequireWritable(absmax2, nameof(absmax2));
        BnbTensor tp, tg, t1, t2, ta1, ta2, tq1, tq2;
        fixed (BnbOptimizerParams* pp = &parameters)
        fixed (byte* bp = p, bg = g, b1 = state1, b2 = state2, ba1 = absmax1, ba2 = absmax2, bq1 = qmap1, bq2 = qmap2)
        {
            Check(
                _api->OptimizerUpdate8bitBlockwise(
                    Handle(ctx), pp, Desc(p, bp, &tp), Desc(g, bg, &tg), Desc(state1, b1, &t1), Desc(state2, b2, &t2), Desc(absmax1, ba1, &ta1), Desc(absmax2, ba2, &ta2), Desc(qmap1, bq1, &tq1), Desc(qmap2, bq2, &tq2)),
                "optimizer_update_8bit_blockwise");
        }
    }

    public (double UpdateSq, double ParamSq) OptimizerUnorm(BnbContextHandle ctx, in BnbOptimizerParams parameters, TensorRef p, TensorRef g, TensorRef state1, TensorRef state2)
    {
        BnbTensor tp, tg, t1, t2;
        double update = 0, param = 0;
        fixed (BnbOptimizerParams* pp = &parameters)
        fixed (byte* bp = p, bg = g, b1 = state1, b2 = state2)
        {
            Check(_api->OptimizerUnorm(Handle(ctx), pp, Desc(p, bp, &tp), Desc(g, bg, &tg), Desc(state1, b1, &t1), Desc(state2, b2, &t2), &update, &param), "optimizer_unorm");
        }

        return (update, param);
    }

    public (float Gnorm, float Scale) PercentileClipping(BnbContextHandle ctx, TensorRef g, TensorRef history, int step, int percentile)
    {
        RequireWritable(history, nameof(history));
        BnbTensor tg, th;
        float gnorm = 0, scale = 0;
        fixed (byte* bg = g, bh = history)
        {
            Check(_api->PercentileClipping(Handle(ctx), Desc(g, bg, &tg), Desc(history, bh, &th), step, percentile, &gnorm, &scale), "percentile_clipping");
        }

        return (gnorm, scale);
    }

    private static nint Handle(BnbContextHandle ctx)
    {
        ObjectDisposedException.ThrowIf(ctx.IsClosed, ctx);
        return ctx.DangerousGetHandle();
    }

    private static BnbAbsmax Absmax(in AbsmaxRef absmax, BnbTensor* values, BnbTensor* nested, BnbTensor* nestedCode) => new()
    {
        StructSize = (uint)sizeof(BnbAbsmax),
        Nested = absmax.IsNested ? 1 : 0,
        Values = values,
        NestedAbsmax = nested,
        NestedCode = nestedCode,
        NestedBlocksize = absmax.NestedBlocksize,
        NestedOffset = absmax.NestedOffset,
    };
}
